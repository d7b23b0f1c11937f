"""``/api/v1/ingest``: cluster agents push what they see of their cluster."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, TypeVar

import orjson
from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError
from sqlalchemy.engine import Connection

from gpufleet.api.authorization import CallerAccess, require_ingest
from gpufleet.api.deps import Db, Now, State
from gpufleet.api.parameters import parse_uuid
from gpufleet.api.responses import json_response
from gpufleet.api.routing import OffLoopJsonRoute
from gpufleet.core.errors import Invalid, TooLarge
from gpufleet.schemas.errors import error_responses
from gpufleet.schemas.ingest import (
    IngestBatch,
    IngestResult,
    parse_ingest_batch,
)
from gpufleet.schemas.inline import json_request_body
from gpufleet.schemas.storable import load_json
from gpufleet.store.clusters import mark_reported
from gpufleet.store.ingest import IngestOutcome, ingest_workloads

router = APIRouter(prefix="/api/v1/ingest", tags=["Ingest"], route_class=OffLoopJsonRoute)
Batch = TypeVar("Batch", bound=BaseModel)
R = TypeVar("R")


async def read_body(request: Request) -> bytes:
    """The raw request body; ``RequestLimits`` bounds its size and read time.

    Declared after the access guard in a route's parameters, it is read only once the caller
    is known to be allowed: nobody else can make the server read an ingest-sized body.
    """
    return await request.body()


async def ingesting_cluster(
    access: CallerAccess,
    clusterId: Annotated[str, Path(description="The id (UUID) of the reporting cluster.")],
) -> str:
    """The path's cluster id, once the caller is known to be allowed to ingest for it."""
    cluster_id = parse_uuid("clusterId", clusterId)
    require_ingest(access, cluster_id)
    return cluster_id


def parse_batch(raw: bytes, model: type[Batch]) -> Batch:
    """A whole request body parsed and checked before anything is written, or ``Invalid``
    naming the first field that is wrong."""
    try:
        return model.model_validate(load_json(raw))
    except ValidationError as exc:
        first = exc.errors()[0]
        location = ".".join(str(part) for part in first.get("loc", ()))
        raise Invalid(f"Invalid request body field {location!r}: {first.get('msg')}") from None


def apply_report(conn: Connection, cluster_id: str, now: datetime, write: Callable[[], R]) -> R:
    """Run ``write`` (one cluster's report) in a transaction of its own, then note that the
    cluster reported. The access check before it read in an implicit transaction, which is
    ended first so the report starts from current data."""
    conn.commit()
    outcome = write()
    conn.commit()
    mark_reported(conn, cluster_id, now)
    conn.commit()
    return outcome


def _item_count(raw: bytes) -> int:
    """How many records a refused batch carried (1 when it cannot even be read)."""
    try:
        body = orjson.loads(raw)
        items = len(body.get("workloads") or []) + len(body.get("deletedIds") or [])
    except (orjson.JSONDecodeError, AttributeError, TypeError):
        return 1
    return max(items, 1)


@router.post(
    "/clusters/{clusterId}/workloads",
    summary="Report workloads of a cluster.",
    description=(
        "Upsert workloads as a cluster agent observed them, soft-delete the ones listed in "
        "`deletedIds` and, with `fullSync`, every live workload of the cluster missing from the "
        "batch. Updates older than the stored observation are ignored and counted as stale. "
        "Items naming a workload, project or department of another cluster are not applied "
        "and are listed in `refused`."
    ),
    operation_id="ingest_cluster_workloads",
    response_model=IngestResult,
    responses=error_responses(400, 401, 403, 413, 500, 503),
    openapi_extra=json_request_body(IngestBatch),
)
def ingest_cluster_workloads(
    request: Request,
    cluster_id: Annotated[str, Depends(ingesting_cluster)],
    state: State,
    conn: Db,
    now: Now,
    raw: Annotated[bytes, Depends(read_body)],
) -> Response:
    # Counted by cluster only here, after the access guard: the labels stay bounded.
    metrics = request.app.state.server_metrics
    try:
        batch = parse_ingest_batch(
            raw, cluster_id=cluster_id, max_items=state.settings.ingest_max_batch_items, now=now
        )
    except (Invalid, TooLarge):
        metrics.record_ingest(cluster_id, refused=_item_count(raw))
        raise
    outcome = apply_report(
        conn,
        cluster_id,
        now,
        lambda: ingest_workloads(
            conn,
            cluster_id,
            [workload.model_dump() for workload in batch.workloads],
            deleted_ids=[str(i) for i in batch.deletedIds],
            full_sync=batch.fullSync,
            cluster_name=batch.clusterName,
            now=now,
        ),
    )
    refused = refusals(batch, outcome)
    metrics.record_ingest(
        cluster_id,
        accepted=outcome.accepted,
        stale=outcome.stale,
        deleted=outcome.deleted,
        refused=len(refused),
    )
    return json_response(
        {
            "accepted": outcome.accepted,
            "stale": outcome.stale,
            "deleted": outcome.deleted,
            "refused": refused,
        }
    )


_REFUSED = {
    "id": "workload {} belongs to another cluster",
    "projectId": "project {} belongs to another cluster",
    "departmentId": "department {} belongs to another cluster",
}


def refusals(batch: IngestBatch, outcome: IngestOutcome) -> list[dict[str, object]]:
    """Every item of the batch that was refused, by its position, naming the field at fault."""
    found: list[dict[str, object]] = []
    for index, workload in enumerate(batch.workloads):
        name = outcome.refused.get(str(workload.id))
        if name is not None:
            value = workload.id if name == "id" else getattr(workload, name)
            found.append(
                {
                    "index": index,
                    "field": f"workloads.{index}.{name}",
                    "id": str(workload.id),
                    "message": _REFUSED[name].format(value),
                }
            )
    for index, workload_id in enumerate(map(str, batch.deletedIds)):
        if workload_id in outcome.refused_deletions:
            found.append(
                {
                    "index": index,
                    "field": f"deletedIds.{index}",
                    "id": workload_id,
                    "message": _REFUSED["id"].format(workload_id),
                }
            )
    return found
