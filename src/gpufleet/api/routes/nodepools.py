"""``/api/v1/node-pools`` (+ ``/count``, ``/{nodepoolId}``): the node pools of the clusters the
caller may read something in."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import Response

from gpufleet.api.authorization import ReadScope
from gpufleet.api.catalogue_parameters import catalogue_listing
from gpufleet.api.deps import Db
from gpufleet.api.responses import json_response
from gpufleet.api.routing import OffLoopJsonRoute
from gpufleet.core.errors import NotFound
from gpufleet.core.node_fields import NODEPOOL_FIELDS
from gpufleet.schemas.errors import error_responses
from gpufleet.schemas.nodes import Count, Nodepool, NodepoolList
from gpufleet.store.nodepools import count_nodepools, get_nodepool, list_nodepools

router = APIRouter(prefix="/api/v1/node-pools", tags=["NodePools"], route_class=OffLoopJsonRoute)

Nodepools = catalogue_listing("Nodepool", NODEPOOL_FIELDS, search=False)


@router.get(
    "",
    summary="Get node pools.",
    description="The node pools of the clusters the caller may read something in.",
    operation_id="get_nodepools",
    response_model=NodepoolList,
    responses=error_responses(400, 401, 403, 503),
)
def get_nodepools(conn: Db, page: Nodepools.Page) -> Response:
    return json_response({"nodepools": list_nodepools(conn, page)})


@router.get(
    "/count",
    summary="Count node pools.",
    operation_id="count_nodepools",
    response_model=Count,
    responses=error_responses(400, 401, 403, 503),
)
def count_nodepools_route(conn: Db, selection: Nodepools.Selection) -> Response:
    return json_response({"count": count_nodepools(conn, selection)})


@router.get(
    "/{nodepoolId}",
    summary="Get a node pool.",
    operation_id="get_nodepool",
    response_model=Nodepool,
    responses=error_responses(400, 401, 403, 404, 500, 503),
)
def get_nodepool_route(
    scope: ReadScope,
    conn: Db,
    nodepoolId: Annotated[str, Path(description="The node pool id.", max_length=64)],
) -> Response:
    pool = get_nodepool(conn, nodepoolId, scope)
    if pool is None:
        raise NotFound(f"Node pool {nodepoolId} not found.")
    return json_response(pool)
