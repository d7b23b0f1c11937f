"""``POST /api/v1/ingest/clusters/{clusterId}/nodes`` and ``…/queues``: a cluster agent
reports its nodes and its scheduler's queues with their quotas."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from gpufleet.api.deps import Db, Now, State
from gpufleet.api.responses import json_response
from gpufleet.api.routes.ingest import apply_report, ingesting_cluster, parse_batch, read_body
from gpufleet.api.routing import OffLoopJsonRoute
from gpufleet.core.errors import Invalid, TooLarge
from gpufleet.schemas.errors import error_responses
from gpufleet.schemas.ingest import MAX_CLOCK_SKEW
from gpufleet.schemas.inline import json_request_body
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


@router.post(
    "/clusters/{clusterId}/nodes",
    summary="Report nodes of a cluster.",
    description=(
        "Upsert nodes as a cluster agent observed them, mark deleted the ones listed in "
        "`deletedIds` and, with `fullSync`, every live node of the cluster missing from the "
        "batch. Reports older than the stored observation are counted as stale; ids of another "
        "cluster's nodes are not applied and are listed in `refused`."
    ),
    operation_id="ingest_cluster_nodes",
    response_model=IngestNodeResult,
    responses=error_responses(400, 401, 403, 413, 500, 503),
    openapi_extra=json_request_body(IngestNodeBatch),
)
def ingest_cluster_nodes(
    cluster_id: Annotated[str, Depends(ingesting_cluster)],
    state: State,
    conn: Db,
    now: Now,
    raw: Annotated[bytes, Depends(read_body)],
) -> Response:
    batch = parse_batch(raw, IngestNodeBatch)
    limit = state.settings.ingest_max_batch_items
    if len(batch.nodes) + len(batch.deletedIds) > limit:
        raise TooLarge(f"Batch of {len(batch.nodes)} nodes exceeds the limit of {limit}.")
    for index, node in enumerate(batch.nodes):
        _not_ahead(node.observedAt, now, f"nodes.{index}.observedAt")
    outcome = apply_report(
        conn,
        cluster_id,
        now,
        lambda: ingest_nodes(
            conn,
            cluster_id,
            [node.model_dump() for node in batch.nodes],
            deleted_ids=[str(i) for i in batch.deletedIds],
            full_sync=batch.fullSync,
            label_key=batch.nodePoolLabelKey,
            now=now,
        ),
    )
    return json_response(
        {
            "accepted": outcome.accepted,
            "stale": outcome.stale,
            "deleted": outcome.deleted,
            "refused": sorted(outcome.refused),
        }
    )


@router.post(
    "/clusters/{clusterId}/queues",
    summary="Report the scheduler queues of a cluster, with their quotas.",
    description=(
        "The batch is every queue of the cluster as observed at `observedAt` (KAI Scheduler "
        "queues, Kueue ClusterQueues and LocalQueues, or the agent's quota file); queues of "
        "the cluster not in it and last observed earlier are removed. A queue that names a "
        "project or department of another cluster is not applied and is listed in `refused`."
    ),
    operation_id="ingest_cluster_queues",
    response_model=IngestQueueResult,
    responses=error_responses(400, 401, 403, 413, 500, 503),
    openapi_extra=json_request_body(IngestQueueBatch),
)
def ingest_cluster_queues(
    cluster_id: Annotated[str, Depends(ingesting_cluster)],
    state: State,
    conn: Db,
    now: Now,
    raw: Annotated[bytes, Depends(read_body)],
) -> Response:
    batch = parse_batch(raw, IngestQueueBatch)
    limit = state.settings.ingest_max_batch_items
    if len(batch.queues) > limit:
        raise TooLarge(f"Batch of {len(batch.queues)} queues exceeds the limit of {limit}.")
    _not_ahead(batch.observedAt, now, "observedAt")
    queues = [queue.model_dump() for queue in batch.queues]
    outcome = apply_report(
        conn,
        cluster_id,
        now,
        lambda: ingest_queues(conn, cluster_id, queues, observed_at=batch.observedAt, now=now),
    )
    return json_response(
        {
            "accepted": outcome.accepted,
            "stale": outcome.stale,
            "removed": outcome.removed,
            "refused": list(outcome.refused),
        }
    )
