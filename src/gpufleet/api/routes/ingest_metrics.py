"""``POST /api/v1/ingest/metrics``: producers push batches of workload and pod metric samples.

A batch is all or nothing: the first sample that cannot be stored (unknown workload or type,
NaN, a far-future time, wrong labels) rejects it with 400 naming its index, and nothing of it
is written.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from gpufleet.api.authorization import CallerAccess
from gpufleet.api.deps import Db, Now, State
from gpufleet.api.responses import json_response
from gpufleet.api.routes.ingest import read_body
from gpufleet.api.routing import OffLoopJsonRoute, parse_json_body
from gpufleet.auth.access import Access
from gpufleet.core.errors import Forbidden, Invalid, TooLarge
from gpufleet.metrics.ingest import (
    SampleError,
    SampleRow,
    first_index_of,
    utilisation_spans,
    validate_samples,
)
from gpufleet.schemas.errors import error_responses
from gpufleet.schemas.inline import json_request_body
from gpufleet.schemas.metrics import IngestMetricsRequest, IngestMetricsResponse
from gpufleet.store.clusters import mark_reported
from gpufleet.store.metric_samples import write_samples
from gpufleet.store.metric_targets import workload_clusters
from gpufleet.store.pod_samples import pod_owners, write_pod_samples
from gpufleet.store.usage_utilisation import refresh_utilisation

router = APIRouter(prefix="/api/v1/ingest", tags=["Ingest"], route_class=OffLoopJsonRoute)


async def require_metrics_ingest(access: CallerAccess) -> Access:
    if not (access.ingest_everywhere or access.ingest_clusters):
        raise Forbidden("You do not have permission to ingest metrics.")
    return access


@router.post(
    "/metrics",
    summary="Push workload metric samples.",
    description=(
        "Store a batch of samples in the embedded metrics store. Gauges are pushed as read; "
        "counters and histogram buckets as running totals; per-GPU types carry "
        '`{"gpu": "<index>"}` and histogram types `{"le": "<upper bound>"}`. A sample with '
        "`podId` belongs to that pod of the workload and has a pod metric type."
    ),
    operation_id="ingest_metrics",
    response_model=IngestMetricsResponse,
    responses=error_responses(400, 401, 403, 413, 500, 503),
    openapi_extra=json_request_body(IngestMetricsRequest),
)
def ingest_metrics(
    access: Annotated[Access, Depends(require_metrics_ingest)],
    conn: Db,
    now: Now,
    state: State,
    raw: Annotated[bytes, Depends(read_body)],
):
    settings = state.settings
    body = parse_json_body(IngestMetricsRequest, raw)
    if len(body.samples) > settings.ingest_max_metric_samples:
        raise TooLarge(f"At most {settings.ingest_max_metric_samples} samples may be sent at once.")
    try:
        rows = validate_samples(body.samples, now, settings.metrics_retention_days)
    except SampleError as exc:
        raise Invalid(str(exc)) from None
    clusters = _check_owners(conn, access, body.samples, rows)
    # The checks above name the sample; the writes decide again, in their own statements.
    allowed = None if access.ingest_everywhere else access.ingest_clusters
    of_workloads = [row.as_row() for row in rows if row.pod_id is None]
    of_pods = [row.as_row() for row in rows if row.pod_id is not None]
    written = write_samples(conn, of_workloads, allowed) + write_pod_samples(conn, of_pods, allowed)
    if written != len(rows):
        conn.rollback()
        raise Invalid(
            "A workload or pod of this batch is not one of your clusters'; nothing was written."
        )
    if not settings.prometheus_url:
        # The usage ledger measures the hours these samples fall in (Prometheus has its own
        # task): the same transaction, so a stored sample is never left unmeasured.
        refresh_utilisation(
            conn,
            utilisation_spans(rows),
            threshold_percent=settings.idle_gpu_threshold_percent,
            window_ms=settings.idle_gpu_window_seconds * 1000,
        )
    conn.commit()
    for cluster_id in sorted(set(clusters.values())):
        mark_reported(conn, cluster_id, now)
    conn.commit()
    return json_response({"accepted": len(body.samples)})


def _check_owners(conn, access: Access, samples, rows: list[SampleRow]) -> dict[str, str]:
    """Every workload known and of the caller's clusters; every pod of its sample's workload.
    Returns the cluster of each workload.

    A workload of a cluster the caller may not ingest for is reported exactly like an unknown
    one, so an agent cannot probe other clusters' workload ids.
    """
    wanted = sorted({row.workload_id for row in rows})
    clusters = workload_clusters(conn, wanted)
    unknown = {w for w in wanted if w not in clusters or not access.may_ingest(clusters[w])}
    if unknown:
        index = first_index_of(samples, unknown)
        raise Invalid(str(SampleError(index, "workloadId", "no such workload")))
    pods = {row.pod_id: row.workload_id for row in rows if row.pod_id is not None}
    owners = pod_owners(conn, sorted(pods))
    strays = {pod for pod, workload in pods.items() if owners.get(pod, ("",))[0] != workload}
    if strays:
        index = first_index_of(samples, set(), strays)
        raise Invalid(str(SampleError(index, "podId", "no such pod of this workload")))
    return clusters
