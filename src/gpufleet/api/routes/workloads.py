"""``/api/v1/workloads``: list, count and get."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response
from sqlalchemy.engine import Connection

from gpufleet.api.authorization import ReadScope
from gpufleet.api.concurrency import ExpensiveRead
from gpufleet.api.deps import Db, Now
from gpufleet.api.parameters import (
    DeletedParam,
    LimitParam,
    OptionalOffsetParam,
    SearchParam,
    SortOrderParam,
    parse_uuid,
    sort_field_enum,
)
from gpufleet.api.responses import json_response
from gpufleet.api.routing import OffLoopJsonRoute
from gpufleet.core.errors import NotFound
from gpufleet.query.fields import WORKLOAD_FIELDS
from gpufleet.query.listing import build_page, build_selection
from gpufleet.query.scope import WorkloadScope
from gpufleet.schemas.enums import SortOrder
from gpufleet.schemas.errors import error_responses
from gpufleet.schemas.workloads import WorkloadCount, WorkloadDetailed, WorkloadList
from gpufleet.store import workloads as workload_store

router = APIRouter(prefix="/api/v1/workloads", tags=["Workloads"], route_class=OffLoopJsonRoute)

WorkloadSortField = sort_field_enum("WorkloadSortField", WORKLOAD_FIELDS)

FILTER_DESCRIPTION = (
    "Filter results by a parameter. Use the format field-name operator value. Operators are "
    "`==` Equals, `!=` Not equals, `<=` Less than or equal, `>=` Greater than or equal, `=@` "
    "contains, `!@` Does not contain, `=^` Starts with and `=$` Ends with. Dates are in ISO 8601 "
    "timestamp format and available for operators `==`, `!=`, `<=` and `>=`. Several terms may be "
    "given comma-separated or as repeated parameters; they are AND-ed."
)
FilterParam = Annotated[
    list[str] | None,
    Query(
        description=FILTER_DESCRIPTION,
        examples=["name!=some-workload-name", "allocatedGPU>=2", "createdAt>=2021-01-01T00:00:00Z"],
    ),
]
# Our extension (docs/filtering.md): not in the reference, so left out of the OpenAPI document.
CursorParam = Annotated[str | None, Query(include_in_schema=False)]
NEXT_CURSOR_HEADER = "Gpufleet-Next-Cursor"
WorkloadIdParam = Annotated[
    str,
    Path(
        description="The  Universally Unique Identifier (UUID) of the workload.",
        json_schema_extra={"format": "uuid"},
    ),
]


def get_workload_or_404(conn: Connection, workload_id: str, now, scope: WorkloadScope) -> dict:
    """The guard every route taking a workload id goes through.

    A workload outside the caller's scope is reported exactly like one that does not exist.
    """
    workload = workload_store.get_workload(conn, parse_uuid("workloadId", workload_id), now, scope)
    if workload is None:
        raise NotFound(f"Workload {workload_id} not found.")
    return workload


@router.get(
    "",
    summary="List workloads.",
    description="Retrieve a list of active workloads with details.",
    operation_id="get_workloads",
    response_model=WorkloadList,
    response_model_exclude_none=True,
    responses=error_responses(400, 401, 403, 500, 503),
)
def get_workloads(
    _slot: ExpensiveRead,
    scope: ReadScope,
    conn: Db,
    now: Now,
    deleted: DeletedParam = None,
    offset: OptionalOffsetParam = None,
    limit: LimitParam = 50,
    sortOrder: SortOrderParam = SortOrder.ASC,
    sortBy: Annotated[
        WorkloadSortField | None, Query(description="Sort results by a parameter.")
    ] = None,
    filterBy: FilterParam = None,
    search: SearchParam = None,
    cursor: CursorParam = None,
) -> Response:
    selection = build_selection(
        now=now, filter_by=filterBy, search=search, deleted=deleted, scope=scope
    )
    page = build_page(
        selection,
        sort_by=sortBy.value if sortBy else None,
        sort_order=sortOrder.value,
        offset=offset,
        limit=limit,
        cursor=cursor,
    )
    listed = workload_store.list_workloads(conn, page)
    head = b"{" if listed.next_offset is None else b'{"next":%d,' % listed.next_offset
    body = head + b'"workloads":[' + b",".join(listed.items) + b"]}"
    headers = {NEXT_CURSOR_HEADER: listed.next_cursor} if listed.next_cursor else None
    return Response(body, media_type="application/json", headers=headers)


@router.get(
    "/count",
    summary="Count workloads.",
    description="Retrieve the number of workloads.",
    operation_id="count_workloads",
    response_model=WorkloadCount,
    responses=error_responses(400, 401, 403, 500, 503),
)
def count_workloads(
    _slot: ExpensiveRead,
    scope: ReadScope,
    conn: Db,
    now: Now,
    deleted: DeletedParam = None,
    filterBy: FilterParam = None,
    search: SearchParam = None,
) -> Response:
    selection = build_selection(
        now=now, filter_by=filterBy, search=search, deleted=deleted, scope=scope
    )
    return json_response({"count": workload_store.count_workloads(conn, selection)})


@router.get(
    "/{workloadId}",
    summary="Get a workload.",
    description="Retrieve workload data using a `workloadId`.",
    operation_id="get_workload",
    response_model=WorkloadDetailed,
    response_model_exclude_none=True,
    responses=error_responses(400, 401, 403, 404, 500, 503),
)
def get_workload(scope: ReadScope, conn: Db, now: Now, workloadId: WorkloadIdParam) -> Response:
    return json_response(get_workload_or_404(conn, workloadId, now, scope))
