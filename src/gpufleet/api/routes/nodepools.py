"""``/api/v1/node-pools`` (+ ``/count``, ``/{nodepoolId}``): the node pools of the clusters the
caller may read something in."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from gpufleet.api.authorization import ReadScope
from gpufleet.api.deps import Db
from gpufleet.api.parameters import (
    LimitParam,
    OptionalOffsetParam,
    SortOrderParam,
)
from gpufleet.api.responses import json_response
from gpufleet.api.routes.workloads import FILTER_DESCRIPTION
from gpufleet.api.routing import OffLoopJsonRoute
from gpufleet.core.errors import NotFound
from gpufleet.core.node_fields import NODEPOOL_FIELDS
from gpufleet.query.org_units import build_org_unit_page, build_org_unit_selection
from gpufleet.schemas.enums import SortOrder
from gpufleet.schemas.errors import error_responses
from gpufleet.schemas.nodes import Count, Nodepool, NodepoolList
from gpufleet.store.nodepools import count_nodepools, get_nodepool, list_nodepools

router = APIRouter(prefix="/api/v1/node-pools", tags=["NodePools"], route_class=OffLoopJsonRoute)

NodepoolSortField = StrEnum("NodepoolSortField", {name: name for name in NODEPOOL_FIELDS})
NodepoolFilterParam = Annotated[
    list[str] | None,
    Query(
        description=FILTER_DESCRIPTION + " Fields: " + ", ".join(NODEPOOL_FIELDS) + ".",
        examples=["name!=some-name"],
    ),
]


@router.get(
    "",
    summary="Get node pools.",
    description="The node pools of the clusters the caller may read something in.",
    operation_id="get_nodepools",
    response_model=NodepoolList,
    responses=error_responses(400, 401, 403, 503),
)
def get_nodepools(
    scope: ReadScope,
    conn: Db,
    filterBy: NodepoolFilterParam = None,
    sortBy: Annotated[NodepoolSortField | None, Query(description="Sort results by.")] = None,
    sortOrder: SortOrderParam = SortOrder.ASC,
    offset: OptionalOffsetParam = None,
    limit: LimitParam = 50,
) -> Response:
    selection = build_org_unit_selection(NODEPOOL_FIELDS, filter_by=filterBy, scope=scope)
    page = build_org_unit_page(
        NODEPOOL_FIELDS,
        selection,
        sort_by=sortBy.value if sortBy else None,
        sort_order=sortOrder.value,
        offset=offset,
        limit=limit,
    )
    return json_response({"nodepools": list_nodepools(conn, page)})


@router.get(
    "/count",
    summary="Count node pools.",
    operation_id="count_nodepools",
    response_model=Count,
    responses=error_responses(400, 401, 403, 503),
)
def count_nodepools_route(
    scope: ReadScope, conn: Db, filterBy: NodepoolFilterParam = None
) -> Response:
    selection = build_org_unit_selection(NODEPOOL_FIELDS, filter_by=filterBy, scope=scope)
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
