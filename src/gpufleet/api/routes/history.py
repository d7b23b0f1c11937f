"""``/api/v1/workloads/{workloadId}/history`` and ``/events``: what happened to a workload."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from gpufleet.api.authorization import ReadScope
from gpufleet.api.deps import Db, Now
from gpufleet.api.parameters import LimitParam, OffsetParam, SortOrderParam
from gpufleet.api.responses import paged_response
from gpufleet.api.routes.workloads import WorkloadIdParam, get_workload_or_404
from gpufleet.api.routing import OffLoopJsonRoute
from gpufleet.schemas.enums import SortOrder
from gpufleet.schemas.errors import error_responses
from gpufleet.schemas.events import EventList, HistoryList
from gpufleet.store.events import list_events
from gpufleet.store.history import list_history

router = APIRouter(prefix="/api/v1/workloads", tags=["Events"], route_class=OffLoopJsonRoute)


@router.get(
    "/{workloadId}/history",
    summary="Get the workload history.",
    description=(
        "The phase changes of a workload and the Kubernetes events of it and the objects below "
        "it, interleaved, newest first."
    ),
    operation_id="get_workload_history",
    response_model=HistoryList,
    response_model_exclude_none=True,
    responses=error_responses(400, 401, 403, 404, 500, 503),
)
def get_workload_history(
    scope: ReadScope,
    conn: Db,
    now: Now,
    workloadId: WorkloadIdParam,
    offset: OffsetParam = 0,
    limit: LimitParam = 50,
) -> Response:
    workload = get_workload_or_404(conn, workloadId, now, scope)
    records, next_offset = list_history(conn, workload["id"], offset=offset, limit=limit)
    return paged_response("records", records, next_offset)


@router.get(
    "/{workloadId}/events",
    summary="Get the workload events.",
    description=(
        "The Kubernetes events of a workload and of the objects below it (pods, pod groups, "
        "jobs), repeats of one event coalesced, by time."
    ),
    operation_id="get_workload_events",
    response_model=EventList,
    response_model_exclude_none=True,
    responses=error_responses(400, 401, 403, 404, 500, 503),
)
def get_workload_events(
    scope: ReadScope,
    conn: Db,
    now: Now,
    workloadId: WorkloadIdParam,
    offset: OffsetParam = 0,
    limit: LimitParam = 50,
    sortOrder: SortOrderParam = SortOrder.DESC,
) -> Response:
    workload = get_workload_or_404(conn, workloadId, now, scope)
    events, next_offset = list_events(
        conn,
        workload["id"],
        descending=sortOrder is SortOrder.DESC,
        offset=offset,
        limit=limit,
    )
    return paged_response("events", events, next_offset)
