"""``POST /api/v1/ingest/clusters/{clusterId}/nodes`` and ``…/queues``: a cluster agent
reports its nodes and its scheduler's queues with their quotas."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from fastapi.responses import Response

from gpufleet.api.responses import json_response
from gpufleet.api.routes.ingest import Report, ingest_route, outcome_body
from gpufleet.api.routing import OffLoopJsonRoute
from gpufleet.core.errors import Invalid
from gpufleet.schemas.ingest import MAX_CLOCK_SKEW
from gpufleet.schemas.inventory import (
    IngestNodeBatch,
    IngestNodeResult,
    IngestQueueBatch,
    IngestQueueResult,
)
from gpufleet.store.node_ingest import ingest_nodes
from gpufleet.store.queue_ingest import ingest_queues

router = APIRouter(prefix="/api/v1/ingest", tags=["Ingest"], route_class=OffLoopJsonRoute)


def _not_ahead(moment: datetime, now: datetime, field: str) -> None:
    """Refuse an observation further ahead of the server's clock than ``MAX_CLOCK_SKEW``:
    stored, it would make every genuine later report look stale."""
    if moment > now + MAX_CLOCK_SKEW:
        seconds = MAX_CLOCK_SKEW.total_seconds()
        raise Invalid(f"Invalid request body field {field!r}: more than {seconds:.0f}s ahead.")


@ingest_route(
    router,
    "nodes",
    body=IngestNodeBatch,
    result=IngestNodeResult,
    summary="Report nodes of a cluster.",
    description=(
        "Upsert nodes as a cluster agent observed them, mark deleted the ones listed in "
        "`deletedIds` and, with `fullSync`, every live node of the cluster missing from the "
        "batch. Reports older than the stored observation are counted as stale; ids of another "
        "cluster's nodes are not applied and are listed in `refused`."
    ),
)
def ingest_cluster_nodes(report: Report) -> Response:
    batch = report.parse(IngestNodeBatch, lambda b: len(b.nodes) + len(b.deletedIds), "nodes")
    for index, node in enumerate(batch.nodes):
        _not_ahead(node.observedAt, report.now, f"nodes.{index}.observedAt")
    outcome = report.apply(
        lambda: ingest_nodes(
            report.conn,
            report.cluster_id,
            [node.model_dump() for node in batch.nodes],
            deleted_ids=[str(i) for i in batch.deletedIds],
            full_sync=batch.fullSync,
            label_key=batch.nodePoolLabelKey,
            now=report.now,
        ),
    )
    return json_response(outcome_body(outcome, sorted(outcome.refused)))


@ingest_route(
    router,
    "queues",
    body=IngestQueueBatch,
    result=IngestQueueResult,
    summary="Report the scheduler queues of a cluster, with their quotas.",
    description=(
        "The batch is every queue of the cluster as observed at `observedAt` (KAI Scheduler "
        "queues, Kueue ClusterQueues and LocalQueues, or the agent's quota file); queues of "
        "the cluster not in it and last observed earlier are removed. A queue that names a "
        "project or department of another cluster is not applied and is listed in `refused`."
    ),
)
def ingest_cluster_queues(report: Report) -> Response:
    batch = report.parse(IngestQueueBatch, lambda b: len(b.queues), "queues")
    _not_ahead(batch.observedAt, report.now, "observedAt")
    queues = [queue.model_dump() for queue in batch.queues]
    outcome = report.apply(
        lambda: ingest_queues(
            report.conn, report.cluster_id, queues, observed_at=batch.observedAt, now=report.now
        ),
    )
    return json_response(
        {
            "accepted": outcome.accepted,
            "stale": outcome.stale,
            "removed": outcome.removed,
            "refused": list(outcome.refused),
        }
    )
