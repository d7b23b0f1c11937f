"""``/api/v1/ingest``: cluster agents push what they see of their cluster."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Protocol, TypeVar

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
    deletion_times,
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


@dataclass(frozen=True, slots=True)
class ClusterReport:
    """One agent's report as its route receives it: the cluster it may report for, the raw
    body (read only after that check), the request's connection and "now", and the largest
    batch the settings allow, and the usage retention's horizon (the ledger accounts nothing
    older, whatever times the agent reports)."""

    cluster_id: str
    raw: bytes
    conn: Connection
    now: datetime
    max_items: int
    usage_since: datetime

    def parse(self, model: type[Batch], items: Callable[[Batch], int], what: str) -> Batch:
        """The body as ``model``, refused when ``items`` of it exceed the batch limit."""
        batch = parse_batch(self.raw, model)
        if items(batch) > self.max_items:
            raise TooLarge(f"Batch of {items(batch)} {what} exceeds the limit of {self.max_items}.")
        return batch

    def apply(self, write: Callable[[], R]) -> R:
        """``write`` in a transaction of its own, the cluster then marked as reported."""
        return apply_report(self.conn, self.cluster_id, self.now, write)


async def cluster_report(
    cluster_id: Annotated[str, Depends(ingesting_cluster)],
    state: State,
    conn: Db,
    now: Now,
    raw: Annotated[bytes, Depends(read_body)],
) -> ClusterReport:
    """What every ingest route takes, in this order: the access check before the body."""
    settings = state.settings
    horizon = now - timedelta(days=settings.usage_retention_days)
    return ClusterReport(cluster_id, raw, conn, now, settings.ingest_max_batch_items, horizon)


Report = Annotated[ClusterReport, Depends(cluster_report)]


def ingest_route(
    router: APIRouter,
    resource: str,
    *,
    body: type[BaseModel],
    result: type[BaseModel],
    summary: str,
    description: str,
) -> Callable[[Callable], Callable]:
    """``POST /clusters/{clusterId}/<resource>`` with the body and errors every ingest route has."""
    return router.post(
        f"/clusters/{{clusterId}}/{resource}",
        summary=summary,
        description=description,
        operation_id=f"ingest_cluster_{resource}",
        response_model=result,
        responses=error_responses(400, 401, 403, 413, 500, 503),
        openapi_extra=json_request_body(body),
    )


class UpsertCounts(Protocol):
    accepted: int
    stale: int
    deleted: int


def outcome_body(outcome: UpsertCounts, refused: list) -> dict:
    """The answer of an upsert report (workloads, nodes): its counts and its refusals."""
    return {
        "accepted": outcome.accepted,
        "stale": outcome.stale,
        "deleted": outcome.deleted,
        "refused": refused,
    }


def _item_count(raw: bytes) -> int:
    """How many records a refused batch carried (1 when it cannot even be read)."""
    try:
        body = orjson.loads(raw)
        items = sum(len(body.get(key) or []) for key in ("workloads", "deletedIds", "deletions"))
    except (orjson.JSONDecodeError, AttributeError, TypeError):
        return 1
    return max(items, 1)


@ingest_route(
    router,
    "workloads",
    body=IngestBatch,
    result=IngestResult,
    summary="Report workloads of a cluster.",
    description=(
        "Upsert workloads as a cluster agent observed them, soft-delete the ones listed in "
        "`deletions` (at the time each was observed) and `deletedIds` (at the request's time) "
        "and, with `fullSync`, every live workload of the cluster missing from the batch. "
        "Updates older than the stored observation are ignored and counted as stale. "
        "Items naming a workload, project or department of another cluster are not applied "
        "and are listed in `refused`."
    ),
)
def ingest_cluster_workloads(request: Request, report: Report) -> Response:
    # Counted by cluster only here, after the access guard: the labels stay bounded.
    metrics = request.app.state.server_metrics
    cluster_id, conn, now = report.cluster_id, report.conn, report.now
    try:
        batch = parse_ingest_batch(
            report.raw, cluster_id=cluster_id, max_items=report.max_items, now=now
        )
    except (Invalid, TooLarge):
        metrics.record_ingest(cluster_id, refused=_item_count(report.raw))
        raise
    outcome = report.apply(
        lambda: ingest_workloads(
            conn,
            cluster_id,
            [workload.model_dump() for workload in batch.workloads],
            deletions=deletion_times(batch, now),
            full_sync=batch.fullSync,
            cluster_name=batch.clusterName,
            now=now,
            usage_since=report.usage_since,
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
    return json_response(outcome_body(outcome, refused))


_REFUSED = {
    "id": "workload {} belongs to another cluster",
    "projectId": "project {} belongs to another cluster",
    "departmentId": "department {} belongs to another cluster",
}


def refusals(batch: IngestBatch, outcome: IngestOutcome) -> list[dict[str, object]]:
    """Every item of the batch that was refused, by its position, naming the field at fault."""
    found: list[dict[str, object]] = []
    if not (outcome.refused or outcome.refused_deletions):
        return found
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
    deleted = (
        ("deletedIds.{}", batch.deletedIds),
        ("deletions.{}.id", [deletion.id for deletion in batch.deletions]),
    )
    for field, ids in deleted:
        for index, workload_id in enumerate(map(str, ids)):
            if workload_id in outcome.refused_deletions:
                found.append(
                    {
                        "index": index,
                        "field": field.format(index),
                        "id": workload_id,
                        "message": _REFUSED["id"].format(workload_id),
                    }
                )
    return found
