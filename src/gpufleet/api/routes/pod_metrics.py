"""``GET /api/v1/workloads/{workloadId}/pods/{podId}/metrics``: time series of one pod.

Sampled, formatted and failed exactly as workload metrics; a type the configured backend has
no source for is a 400 naming it and the backend (see docs/workload-details.md).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from gpufleet.api.admission import hand_back
from gpufleet.api.authorization import ReadScope
from gpufleet.api.concurrency import ExpensiveRead
from gpufleet.api.deps import Db, Now
from gpufleet.api.metric_parameters import metric_types_param, metrics_query
from gpufleet.api.routes.metrics import (
    METRICS_RESPONSES,
    get_metrics_backend,
    metric_results_response,
)
from gpufleet.api.routes.workloads import WorkloadIdParam, get_workload_or_404
from gpufleet.api.routing import OffLoopJsonRoute
from gpufleet.core.errors import NotFound
from gpufleet.metrics.types import PodMetricType
from gpufleet.query.choices import canonical_uuid
from gpufleet.schemas.metrics import MetricsCompositeResponse
from gpufleet.store.metric_targets import pod_target

router = APIRouter(prefix="/api/v1/workloads", tags=["Pods"], route_class=OffLoopJsonRoute)


_TYPES_DESCRIPTION = "Specify which metric data to request (comma-separated or repeated)."
PodMetricsQuery = metrics_query(
    metric_types_param(PodMetricType, _TYPES_DESCRIPTION), PodMetricType, "pod",
    source=get_metrics_backend, answers=lambda serving: serving.pod_metric_types,
)  # fmt: skip
PodIdParam = Annotated[
    str, Path(description="The requested pod id.", json_schema_extra={"format": "uuid"})
]


@router.get(
    "/{workloadId}/pods/{podId}/metrics",
    summary="Get pod metrics data.",
    description=(
        "Retrieve pod's metrics data. Each type returns numberOfSamples evenly spaced points "
        "over [start, end); see docs/workload-details.md for the types each backend answers."
    ),
    operation_id="get_workload_pod_metrics",
    response_model=MetricsCompositeResponse,
    responses=METRICS_RESPONSES,
)
def get_workload_pod_metrics(
    _slot: ExpensiveRead,
    request: Request,
    scope: ReadScope,
    conn: Db,
    now: Now,
    workloadId: WorkloadIdParam,
    podId: PodIdParam,
    query: PodMetricsQuery,
) -> Response:
    backend = get_metrics_backend(request)
    pod_id = canonical_uuid("podId", podId)
    workload = get_workload_or_404(conn, workloadId, now, scope)
    target = pod_target(conn, workload["id"], pod_id)
    hand_back(conn)  # the backend may take a while, and may take a connection of its own
    if target is None:
        raise NotFound(f"Pod {podId} of workload {workloadId} not found.")
    results = backend.pod_metrics(target, query.types, query.window)
    return metric_results_response(request, backend.name, results)
