"""``/api/v1/nodes`` (+ ``/count``, ``/telemetry``) and ``/api/v1/clusters/{clusterUuid}/nodes``
(+ ``/count``): the live nodes of the clusters the caller may read something in."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from gpufleet.api.authorization import ReadScope
from gpufleet.api.catalogue_parameters import catalogue_listing
from gpufleet.api.concurrency import ExpensiveRead
from gpufleet.api.csv_responses import wants_csv
from gpufleet.api.deps import Db, Now
from gpufleet.api.responses import json_response
from gpufleet.api.routes.clusters import ClusterUuidParam, get_cluster_or_404
from gpufleet.api.routes.telemetry import telemetry_body, telemetry_csv
from gpufleet.api.routing import OffLoopJsonRoute
from gpufleet.core.errors import NotFound
from gpufleet.core.node_fields import NODE_FIELDS
from gpufleet.query.choices import by_value, parse_group_by, parse_uuid_choice
from gpufleet.query.errors import QueryError
from gpufleet.query.org_units import build_org_unit_selection
from gpufleet.schemas.errors import error_responses
from gpufleet.schemas.nodes import Count, NodeList
from gpufleet.schemas.telemetry import TelemetryResponse
from gpufleet.store.clusters import visible_cluster
from gpufleet.store.node_telemetry import (
    NodeGroupBy,
    NodeTelemetryQuery,
    NodeTelemetryType,
    node_telemetry,
)
from gpufleet.store.nodes import count_nodes, list_nodes

router = APIRouter(prefix="/api/v1", tags=["Nodes"], route_class=OffLoopJsonRoute)

Nodes = catalogue_listing("Node", NODE_FIELDS, search=True)
MAX_GROUP_BY = 2


@router.get(
    "/nodes",
    summary="Get the nodes of every cluster.",
    description=(
        "The live nodes of the clusters the caller may read something in, sorted by name "
        "unless `sortBy` says otherwise."
    ),
    operation_id="get_tenant_nodes",
    response_model=NodeList,
    responses=error_responses(400, 401, 403, 404, 500, 503),
)
def get_tenant_nodes(conn: Db, page: Nodes.Page) -> Response:
    return json_response({"nodes": list_nodes(conn, page)})


@router.get(
    "/nodes/count",
    summary="Count the nodes of every cluster.",
    operation_id="count_tenant_nodes",
    response_model=Count,
    responses=error_responses(400, 401, 403, 500, 503),
)
def count_tenant_nodes(conn: Db, selection: Nodes.Selection) -> Response:
    return json_response({"count": count_nodes(conn, selection)})


@router.get(
    "/clusters/{clusterUuid}/nodes",
    summary="Get the nodes of a cluster.",
    description=(
        "The live nodes of one cluster. `nodeName` (deprecated) selects one node by name and "
        "cannot be combined with `filterBy`, `sortBy`, `offset`, `limit` or `search`."
    ),
    operation_id="get_nodes",
    response_model=NodeList,
    responses=error_responses(400, 401, 403, 404, 500, 503),
)
def get_nodes(
    request: Request,
    scope: ReadScope,
    conn: Db,
    clusterUuid: ClusterUuidParam,
    page: Nodes.Page,
    nodeName: Annotated[
        str | None, Query(description="Deprecated: use filterBy=name==…", max_length=253)
    ] = None,
) -> Response:
    cluster = get_cluster_or_404(conn, clusterUuid, scope)
    if nodeName is not None:
        combined = {"filterBy", "sortBy", "offset", "limit", "search"} & set(request.query_params)
        if combined:
            raise QueryError("nodeName", f"cannot be combined with {sorted(combined)[0]}")
        # Nothing else was given: the page is the default one, of this name only.
        named = build_org_unit_selection(NODE_FIELDS, filter_by=[f"name=={nodeName}"], scope=scope)
        page = replace(page, selection=named)
    return json_response({"nodes": list_nodes(conn, page, cluster.id)})


@router.get(
    "/clusters/{clusterUuid}/nodes/count",
    summary="Count the nodes of a cluster.",
    operation_id="count_nodes",
    response_model=Count,
    responses=error_responses(400, 401, 403, 404, 500, 503),
)
def count_cluster_nodes(
    scope: ReadScope, conn: Db, clusterUuid: ClusterUuidParam, selection: Nodes.Selection
) -> Response:
    cluster = get_cluster_or_404(conn, clusterUuid, scope)
    return json_response({"count": count_nodes(conn, selection, cluster.id)})


TELEMETRY_DESCRIPTION = (
    "Capacity, allocation and use of the live nodes as of the request, summed per group. "
    "A GPU node has GPUs; a ready node is Ready and not cordoned. A node's allocation is what "
    "the pods bound to it hold while not finished, and its free GPUs are its GPUs minus that "
    "allocation, so FREE_GPUS + ALLOCATED_GPUS = TOTAL_GPUS in every group. "
    "IDLE_ALLOCATED_GPUS is the allocated GPUs their workloads report idle; the USED_* types "
    "are the latest samples of the workloads on the node. FULLY_FREE_GPU_NODES counts ready GPU "
    "nodes with nothing allocated."
)


@router.get(
    "/nodes/telemetry",
    summary="Get the nodes telemetry.",
    description=TELEMETRY_DESCRIPTION,
    operation_id="get_node_telemetry",
    response_model=TelemetryResponse,
    response_model_exclude_none=True,
    responses={
        200: {"content": {"text/csv": {}}},
        **error_responses(400, 401, 403, 404, 500, 503),
    },
)
def get_node_telemetry(
    _slot: ExpensiveRead,
    request: Request,
    scope: ReadScope,
    conn: Db,
    now: Now,
    telemetryType: Annotated[
        NodeTelemetryType, Query(description="Specifies what data to request.")
    ],
    clusterId: Annotated[
        str | None,
        Query(description="Filter using the Universally Unique Identifier (UUID) of the cluster."),
    ] = None,
    nodepoolName: Annotated[
        str | None, Query(description="Filter using the nodepool.", max_length=253)
    ] = None,
    groupBy: Annotated[
        list[str] | None,
        Query(description="Group by ClusterId, Nodepool or Node (at most 2)."),
    ] = None,
) -> Response:
    group_by = parse_group_by(groupBy, by_value(NodeGroupBy), MAX_GROUP_BY)
    cluster_id = parse_uuid_choice("clusterId", clusterId)
    if cluster_id is not None and visible_cluster(conn, cluster_id, scope) is None:
        raise NotFound(f"Cluster {cluster_id} not found.")
    query = NodeTelemetryQuery(
        telemetryType, scope, group_by, cluster_id=cluster_id, nodepool=nodepoolName
    )
    body = telemetry_body(telemetryType, now, node_telemetry(conn, query, now))
    if wants_csv(request):
        return telemetry_csv(body, [g.value for g in group_by])
    return json_response(body)
