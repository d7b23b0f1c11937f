"""``POST /api/v1/ingest/clusters/{clusterId}/events``: a cluster agent pushes Kubernetes events
of its workloads, in batches, repeats already coalesced."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from fastapi.responses import Response

from gpufleet.api.responses import json_response
from gpufleet.api.routes.ingest import Report, ingest_route
from gpufleet.api.routing import OffLoopJsonRoute
from gpufleet.core.errors import Invalid
from gpufleet.schemas.events import IngestEventBatch, IngestEventResult
from gpufleet.schemas.ingest import MAX_CLOCK_SKEW
from gpufleet.store.events import record_events

router = APIRouter(prefix="/api/v1/ingest", tags=["Ingest"], route_class=OffLoopJsonRoute)


def _events_in_time(batch: IngestEventBatch, now: datetime) -> IngestEventBatch:
    """The batch, unless an event was created further ahead of the server's clock than
    ``MAX_CLOCK_SKEW``."""
    for index, event in enumerate(batch.events):
        if event.createdAt > now + MAX_CLOCK_SKEW:
            raise Invalid(f"Invalid event at index {index}: createdAt is in the future.")
    return batch


@ingest_route(
    router,
    "events",
    body=IngestEventBatch,
    result=IngestEventResult,
    summary="Report Kubernetes events of a cluster's workloads.",
    description=(
        "Each event names the workload it belongs to and carries the latest time and count of "
        "its repeats. An event is written only when its workload is a workload of this cluster "
        "and the report is not older than the stored one; the others are counted as ignored."
    ),
)
def ingest_cluster_events(report: Report) -> Response:
    batch = report.parse(IngestEventBatch, lambda b: len(b.events), "events")
    events = [event.model_dump() for event in _events_in_time(batch, report.now).events]
    accepted = report.apply(lambda: record_events(report.conn, report.cluster_id, events))
    return json_response({"accepted": accepted, "ignored": len(events) - accepted})
