"""``/api/v1/nodes`` (+ ``/count``, ``/telemetry``) and ``/api/v1/clusters/{clusterUuid}/nodes``
(+ ``/count``): the live nodes of the clusters the caller may read something in."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from gpufleet.api.authorization import ReadScope
from gpufleet.api.concurrency import ExpensiveRead
from gpufleet.api.csv_responses import wants_csv
from gpufleet.api.deps import Db, Now
from gpufleet.api.parameters import (
    LimitParam,
    OptionalOffsetParam,
    SearchParam,
    SortOrderParam,
    parse_uuid,
)
from gpufleet.api.responses import json_response
from gpufleet.api.routes.clusters import ClusterUuidParam, get_cluster_or_404
from gpufleet.api.routes.telemetry import telemetry_body, telemetry_csv
from gpufleet.api.routes.workloads import FILTER_DESCRIPTION
from gpufleet.api.routing import OffLoopJsonRoute
from gpufleet.core.errors import Invalid, NotFound
from gpufleet.core.node_fields import NODE_FIELDS
from gpufleet.query.errors import QueryError
from gpufleet.query.org_units import build_org_unit_page, build_org_unit_selection
from gpufleet.schemas.enums import SortOrder
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

NodeSortField = StrEnum("NodeSortField", {name: name for name in NODE_FIELDS})
NodeFilterParam = Annotated[
    list[str] | None,
    Query(
        description=FILTER_DESCRIPTION + " Fields: " + ", ".join(NODE_FIELDS) + ".",
        examples=["name!=some-name"],
    ),
]
NodeSortParam = Annotated[NodeSortField | None, Query(description="Sort results by.")]
MAX_GROUP_BY = 2


def _nodes(conn, scope, cluster_id: str | None, **parameters) -> Response:
    selection = build_org_unit_selection(
        NODE_FIELDS, filter_by=parameters["filter_by"], search=parameters["search"], scope=scope
    )
    sort_by = parameters["sort_by"]
    page = build_org_unit_page(
        NODE_FIELDS,
        selection,
        sort_by=sort_by.value if sort_by else None,
        sort_order=parameters["sort_order"].value,
        offset=parameters["offset"],
        limit=parameters["limit"],
    )
    return json_response({"nodes": list_nodes(conn, page, cluster_id)})


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
def get_tenant_nodes(
    scope: ReadScope,
    conn: Db,
    filterBy: NodeFilterParam = None,
    sortBy: NodeSortParam = None,
    sortOrder: SortOrderParam = SortOrder.ASC,
    offset: OptionalOffsetParam = None,
    limit: LimitParam = 50,
    search: SearchParam = None,
) -> Response:
    return _nodes(
        conn,
        scope,
        None,
        filter_by=filterBy,
        sort_by=sortBy,
        sort_order=sortOrder,
        offset=offset,
        limit=limit,
        search=search,
    )


@router.get(
    "/nodes/count",
    summary="Count the nodes of every cluster.",
    operation_id="count_tenant_nodes",
    response_model=Count,
    responses=error_responses(400, 401, 403, 500, 503),
)
def count_tenant_nodes(
    scope: ReadScope, conn: Db, filterBy: NodeFilterParam = None, search: SearchParam = None
) -> Response:
    selection = build_org_unit_selection(
        NODE_FIELDS, filter_by=filterBy, search=search, scope=scope
    )
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
    nodeName: Annotated[
        str | None, Query(description="Deprecated: use filterBy=name==…", max_length=253)
    ] = None,
    filterBy: NodeFilterParam = None,
    sortBy: NodeSortParam = None,
    sortOrder: SortOrderParam = SortOrder.ASC,
    offset: OptionalOffsetParam = None,
    limit: LimitParam = 50,
    search: SearchParam = None,
) -> Response:
    cluster = get_cluster_or_404(conn, clusterUuid, scope)
    if nodeName is not None:
        combined = {"filterBy", "sortBy", "offset", "limit", "search"} & set(request.query_params)
        if combined:
            raise QueryError("nodeName", f"cannot be combined with {sorted(combined)[0]}")
        filterBy = [f"name=={nodeName}"]
    return _nodes(
        conn,
        scope,
        cluster.id,
        filter_by=filterBy,
        sort_by=sortBy,
        sort_order=sortOrder,
        offset=offset,
        limit=limit,
        search=search,
    )


@router.get(
    "/clusters/{clusterUuid}/nodes/count",
    summary="Count the nodes of a cluster.",
    operation_id="count_nodes",
    response_model=Count,
    responses=error_responses(400, 401, 403, 404, 500, 503),
)
def count_cluster_nodes(
    scope: ReadScope,
    conn: Db,
    clusterUuid: ClusterUuidParam,
    filterBy: NodeFilterParam = None,
    search: SearchParam = None,
) -> Response:
    cluster = get_cluster_or_404(conn, clusterUuid, scope)
    selection = build_org_unit_selection(
        NODE_FIELDS, filter_by=filterBy, search=search, scope=scope
    )
    return json_response({"count": count_nodes(conn, selection, cluster.id)})


def parse_node_group_by(values: list[str] | None) -> tuple[NodeGroupBy, ...]:
    names = [piece.strip() for value in values or () for piece in value.split(",")]
    groups: list[NodeGroupBy] = []
    for name in filter(None, names):
        try:
            group = NodeGroupBy(name)
        except ValueError:
            allowed = ", ".join(g.value for g in NodeGroupBy)
            raise QueryError("groupBy", f"{name[:64]!r} is not one of {allowed}") from None
        if group in groups:
            raise QueryError("groupBy", f"{name!r} is given twice")
        groups.append(group)
    if len(groups) > MAX_GROUP_BY:
        raise QueryError("groupBy", f"at most {MAX_GROUP_BY} values are allowed")
    return tuple(groups)


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
    group_by = parse_node_group_by(groupBy)
    cluster_id = None
    if clusterId is not None:
        try:
            cluster_id = parse_uuid("clusterId", clusterId)
        except Invalid:
            raise QueryError("clusterId", f"{clusterId[:64]!r} is not a UUID") from None
        if visible_cluster(conn, cluster_id, scope) is None:
            raise NotFound(f"Cluster {cluster_id} not found.")
    query = NodeTelemetryQuery(
        telemetryType, scope, group_by, cluster_id=cluster_id, nodepool=nodepoolName
    )
    body = telemetry_body(telemetryType, now, node_telemetry(conn, query, now))
    if wants_csv(request):
        return telemetry_csv(body, [g.value for g in group_by])
    return json_response(body)
