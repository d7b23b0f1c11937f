"""``/api/v1/workloads/{workloadId}/history``: the phase transitions of a workload."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from gpufleet.api.authorization import ReadScope
from gpufleet.api.deps import Db, Now
from gpufleet.api.responses import json_response
from gpufleet.api.routes.workloads import WorkloadIdParam, get_workload_or_404
from gpufleet.query.listing import MAX_LIMIT, MAX_OFFSET
from gpufleet.schemas.errors import error_responses
from gpufleet.store.history import list_transitions

router = APIRouter(prefix="/api/v1/workloads", tags=["Workloads"])


class PhaseTransition(BaseModel):
    phase: str
    message: str | None
    time: str = Field(description="When the workload entered the phase (RFC 3339, UTC).")


class PhaseHistory(BaseModel):
    next: int | None = Field(None, description="Offset of the next page; absent on the last.")
    records: list[PhaseTransition]


@router.get(
    "/{workloadId}/history",
    summary="Get the phase history of a workload.",
    description="The phase transitions of a workload, newest first, paged.",
    operation_id="get_workload_history",
    response_model=PhaseHistory,
    response_model_exclude_none=True,
    responses=error_responses(400, 401, 403, 404, 500, 503),
)
def get_workload_history(
    scope: ReadScope,
    conn: Db,
    now: Now,
    workloadId: WorkloadIdParam,
    offset: Annotated[
        int, Query(ge=0, le=MAX_OFFSET, description="The offset of the first record returned.")
    ] = 0,
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description="The maximum number of records to return.")
    ] = 50,
) -> Response:
    workload = get_workload_or_404(conn, workloadId, now, scope)
    records, next_offset = list_transitions(conn, workload["id"], offset=offset, limit=limit)
    body: dict = {"records": records}
    if next_offset is not None:
        body = {"next": next_offset, "records": records}
    return json_response(body)
