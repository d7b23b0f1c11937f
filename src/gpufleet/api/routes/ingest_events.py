"""``POST /api/v1/ingest/clusters/{clusterId}/events``: a cluster agent pushes Kubernetes events
of its workloads, in batches, repeats already coalesced."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from gpufleet.api.deps import Db, Now, State
from gpufleet.api.responses import json_response
from gpufleet.api.routes.ingest import apply_report, ingesting_cluster, parse_batch, read_body
from gpufleet.api.routing import OffLoopJsonRoute
from gpufleet.core.errors import Invalid, TooLarge
from gpufleet.schemas.errors import error_responses
from gpufleet.schemas.events import IngestEventBatch, IngestEventResult
from gpufleet.schemas.ingest import MAX_CLOCK_SKEW
from gpufleet.schemas.inline import json_request_body
from gpufleet.store.events import record_events

router = APIRouter(prefix="/api/v1/ingest", tags=["Ingest"], route_class=OffLoopJsonRoute)


def parse_event_batch(raw: bytes, *, max_items: int, now) -> IngestEventBatch:
    """Parse and check a whole request body before anything is written."""
    batch = parse_batch(raw, IngestEventBatch)
    if len(batch.events) > max_items:
        raise TooLarge(f"Batch of {len(batch.events)} events exceeds the limit of {max_items}.")
    for index, event in enumerate(batch.events):
        if event.createdAt > now + MAX_CLOCK_SKEW:
            raise Invalid(f"Invalid event at index {index}: createdAt is in the future.")
    return batch


@router.post(
    "/clusters/{clusterId}/events",
    summary="Report Kubernetes events of a cluster's workloads.",
    description=(
        "Each event names the workload it belongs to and carries the latest time and count of "
        "its repeats. An event is written only when its workload is a workload of this cluster "
        "and the report is not older than the stored one; the others are counted as ignored."
    ),
    operation_id="ingest_cluster_events",
    response_model=IngestEventResult,
    responses=error_responses(400, 401, 403, 413, 500, 503),
    openapi_extra=json_request_body(IngestEventBatch),
)
def ingest_cluster_events(
    cluster_id: Annotated[str, Depends(ingesting_cluster)],
    state: State,
    conn: Db,
    now: Now,
    raw: Annotated[bytes, Depends(read_body)],
) -> Response:
    batch = parse_event_batch(raw, max_items=state.settings.ingest_max_batch_items, now=now)
    events = [event.model_dump() for event in batch.events]
    accepted = apply_report(conn, cluster_id, now, lambda: record_events(conn, cluster_id, events))
    return json_response({"accepted": accepted, "ignored": len(events) - accepted})
