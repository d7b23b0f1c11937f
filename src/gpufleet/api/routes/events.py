"""``GET /api/v1/events`` and ``/events/count``: the Kubernetes events of every workload.

A gpufleet extension (Run:ai lists events per workload only, ``routes.history``): an
administrator's one place for what happened across the fleet. An event is listed exactly
when its workload is visible to the caller, in the same SQL statement as the filters.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from gpufleet.api.authorization import ReadScope
from gpufleet.api.concurrency import ExpensiveRead
from gpufleet.api.deps import Db
from gpufleet.api.parameters import LimitParam, OffsetParam
from gpufleet.api.responses import json_response, paged_response
from gpufleet.api.routing import OffLoopJsonRoute
from gpufleet.query.events import EventSelection, build_event_page, build_event_selection
from gpufleet.schemas.errors import error_responses
from gpufleet.schemas.events import FleetEventCount, FleetEventList
from gpufleet.store.fleet_events import count_fleet_events, list_fleet_events

router = APIRouter(prefix="/api/v1/events", tags=["Events"], route_class=OffLoopJsonRoute)

SinceParam = Annotated[
    str | None,
    Query(description="Only events last seen at or after this time (ISO 8601; no zone is UTC)."),
]
UntilParam = Annotated[
    str | None,
    Query(description="Only events last seen before this time (ISO 8601; no zone is UTC)."),
]
TypeParam = Annotated[
    list[str] | None,
    Query(
        alias="type",
        description="Only events of these types (Normal, Warning), comma-separated or repeated.",
    ),
]
ClusterIdParam = Annotated[str | None, Query(description="Only events of this cluster (UUID).")]
ProjectIdParam = Annotated[
    str | None, Query(description="Only events of the workloads of this project (its id).")
]
ReasonParam = Annotated[
    str | None, Query(description="Only events with this reason (exactly).", examples=["BackOff"])
]
WorkloadIdParam = Annotated[str | None, Query(description="Only events of this workload (UUID).")]


async def _selection(
    scope: ReadScope,
    since: SinceParam = None,
    until: UntilParam = None,
    types: TypeParam = None,
    clusterId: ClusterIdParam = None,
    projectId: ProjectIdParam = None,
    reason: ReasonParam = None,
    workloadId: WorkloadIdParam = None,
) -> EventSelection:
    """The list's and the count's parameters, checked after the caller's access (a caller
    without it is refused before its parameters are)."""
    return build_event_selection(
        since=since,
        until=until,
        types=types,
        cluster_id=clusterId,
        project_id=projectId,
        reason=reason,
        workload_id=workloadId,
        scope=scope,
    )


Selection = Annotated[EventSelection, Depends(_selection)]


@router.get(
    "",
    summary="List the events of every workload (gpufleet extension).",
    description=(
        "A gpufleet extension. The Kubernetes events of the workloads the caller may read, "
        "repeats of one event coalesced, newest first (by their latest occurrence), each with "
        "its workload's id and name and its project. since, until, type, clusterId, projectId, "
        "reason and workloadId narrow the list (AND-ed); offset and limit page it, and "
        "/api/v1/events/count counts the same selection."
    ),
    operation_id="list_events",
    response_model=FleetEventList,
    response_model_exclude_none=True,
    responses=error_responses(400, 401, 403, 500, 503),
)
def list_events(
    _slot: ExpensiveRead,
    conn: Db,
    selection: Selection,
    offset: OffsetParam = 0,
    limit: LimitParam = 50,
) -> Response:
    page = build_event_page(selection, offset=offset, limit=limit)
    return paged_response("events", *list_fleet_events(conn, page))


@router.get(
    "/count",
    summary="Count the events of every workload (gpufleet extension).",
    description=(
        "A gpufleet extension. How many events /api/v1/events lists for the same parameters."
    ),
    operation_id="count_events",
    response_model=FleetEventCount,
    responses=error_responses(400, 401, 403, 500, 503),
)
def count_events(_slot: ExpensiveRead, conn: Db, selection: Selection) -> Response:
    return json_response({"count": count_fleet_events(conn, selection)})
