"""``GET /api/v1/workloads/{workloadId}/metrics``: time series of one workload."""

from __future__ import annotations

import functools
from collections.abc import Sequence

from fastapi import APIRouter, Request
from fastapi.responses import Response

from gpufleet.api.admission import hand_back
from gpufleet.api.authorization import ReadScope
from gpufleet.api.concurrency import ExpensiveRead
from gpufleet.api.csv_responses import csv_response, wants_csv
from gpufleet.api.deps import Db, Now
from gpufleet.api.metric_parameters import MetricTypesParam, metrics_query
from gpufleet.api.responses import json_response
from gpufleet.api.routes.workloads import WorkloadIdParam, get_workload_or_404
from gpufleet.api.routing import OffLoopJsonRoute
from gpufleet.core.errors import NotFound, Unavailable, UpstreamFailed
from gpufleet.core.times import format_rfc3339, from_ms
from gpufleet.metrics.backend import Measurement, MetricResult, MetricsBackend
from gpufleet.metrics.types import WorkloadMetricType, metric_info
from gpufleet.schemas.errors import error_responses
from gpufleet.schemas.metrics import MetricsCompositeResponse
from gpufleet.store.metric_targets import workload_target

router = APIRouter(prefix="/api/v1/workloads", tags=["Workloads"], route_class=OffLoopJsonRoute)

# 200 (JSON or CSV), 207 with the failed types, and the errors of every metrics path.
METRICS_RESPONSES = {
    200: {"content": {"text/csv": {}}},
    207: {"model": MetricsCompositeResponse, "description": "Partial success."},
    **error_responses(400, 401, 403, 404, 500, 503),
}


def get_metrics_backend(request: Request) -> MetricsBackend:
    return request.app.state.observed_backend


WorkloadMetricsQuery = metrics_query(MetricTypesParam, WorkloadMetricType, "workload")


# The series of one request share their timestamps; formatting each once matters at 1,000 points.
@functools.lru_cache(maxsize=8192)
def _timestamp(ts_ms: int) -> str:
    return format_rfc3339(from_ms(ts_ms))


def measurement_values(measurement: Measurement) -> list[dict[str, str]]:
    """A measurement's points as the wire's ``MeasurementValue`` objects."""
    timestamps = map(_timestamp, measurement.timestamps_ms)
    return [
        {"value": value, "timestamp": timestamp}
        for value, timestamp in zip(measurement.values, timestamps, strict=True)
    ]


def metrics_body(results: Sequence[MetricResult]) -> dict:
    measurements: list[dict] = []
    histogram: list[dict] = []
    for result in results:
        info = metric_info(result.type)
        if result.failed:
            # A failed type is listed with null values; an empty one has [] (see docs/metrics.md).
            measurements.append({"type": result.type.value, "labels": None, "values": None})
        elif info.is_histogram_shaped:
            values = [{"timestamp": _timestamp(ts), "data": data} for ts, data in result.histogram]
            histogram.append({"type": result.type.value, "values": values})
        elif not result.measurements:
            measurements.append({"type": result.type.value, "labels": None, "values": []})
        else:
            for series in result.measurements:
                labels = dict(series.labels) if series.labels else None
                values = measurement_values(series)
                measurements.append({"type": result.type.value, "labels": labels, "values": values})
    return {"measurements": measurements, "histogram": histogram}


def metrics_csv(body: dict) -> Response:
    rows: list[list[str]] = []
    for item in body["measurements"]:
        series = ",".join(f"{k}={v}" for k, v in (item["labels"] or {}).items())
        rows.extend([item["type"], series, v["timestamp"], v["value"]] for v in item["values"])
    for item in body.get("histogram", ()):
        for value in item["values"]:
            rows.extend(
                [item["type"], key, value["timestamp"], count]
                for key, count in value["data"].items()
            )
    return csv_response(["type", "series", "timestamp", "value"], rows)


@router.get(
    "/{workloadId}/metrics",
    summary="Get workload metrics data.",
    description=(
        "Retrieves workloads data metrics from the metrics database. Each type returns "
        "numberOfSamples evenly spaced points over [start, end); see docs/metrics.md."
    ),
    operation_id="get_workload_metrics",
    response_model=MetricsCompositeResponse,
    responses=METRICS_RESPONSES,
)
def get_workload_metrics(
    _slot: ExpensiveRead,
    request: Request,
    scope: ReadScope,
    conn: Db,
    now: Now,
    workloadId: WorkloadIdParam,
    query: WorkloadMetricsQuery,
) -> Response:
    workload = get_workload_or_404(conn, workloadId, now, scope)
    target = workload_target(conn, workload["id"])
    hand_back(conn)  # the backend may take a while, and may take a connection of its own
    if target is None:  # deleted between the two reads
        raise NotFound(f"Workload {workloadId} not found.")
    backend = get_metrics_backend(request)
    results = backend.workload_metrics(target, query.types, query.window)
    return metric_results_response(request, backend.name, results)


def metric_results_response(
    request: Request, backend: str, results: Sequence[MetricResult], *, histogram: bool = True
) -> Response:
    """200 (JSON or CSV), 207 with the failures in a header, or the error of a total failure.

    Without ``histogram`` the body is the reference ``MetricsResponse`` (measurements only).
    """
    failures = [r for r in results if r.failed]
    if failures and len(failures) == len(results):
        unreachable = [r.failure for r in failures if r.failure.unreachable]
        if unreachable:
            raise Unavailable(
                f"The metrics backend ({backend}) is unavailable: "
                f"{unreachable[0].message}; please try again shortly.",
            )
        raise UpstreamFailed(f"Every metrics query to the {backend} backend failed.")
    body = metrics_body(results)
    if not histogram:
        del body["histogram"]
    partial = [r for r in results if r.warnings and not r.failed]
    if failures or partial:
        detail = "; ".join(
            [f"{r.type.value}: {r.failure.message}" for r in failures]
            + [f"{r.type.value}: incomplete ({r.warnings[0][:200]})" for r in partial]
        )
        response = json_response(body, status_code=207)
        # Headers are latin-1; upstream warnings may hold anything.
        response.headers["X-Gpufleet-Metric-Failures"] = (
            detail[:1000].encode("ascii", "replace").decode()
        )
        return response
    if wants_csv(request):
        return metrics_csv(body)
    return json_response(body)
