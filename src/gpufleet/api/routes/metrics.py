"""``GET /api/v1/workloads/{workloadId}/metrics``: time series of one workload."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from gpufleet.api.authorization import ReadScope
from gpufleet.api.concurrency import ExpensiveRead
from gpufleet.api.csv_responses import csv_response, wants_csv
from gpufleet.api.deps import Db, Now, State
from gpufleet.api.responses import json_response
from gpufleet.api.routes.workloads import WorkloadIdParam, get_workload_or_404
from gpufleet.api.routing import OffLoopJsonRoute
from gpufleet.core.errors import NotFound, Unavailable, UpstreamFailed
from gpufleet.core.metric_values import SampleWindow
from gpufleet.core.times import format_rfc3339, from_ms
from gpufleet.metrics.backend import Measurement, MetricResult, MetricsBackend
from gpufleet.metrics.types import WorkloadMetricType, metric_info
from gpufleet.query.choices import by_value, parse_choices
from gpufleet.query.errors import QueryError
from gpufleet.query.filters import parse_timestamp
from gpufleet.schemas.errors import error_responses
from gpufleet.schemas.metrics import MetricsCompositeResponse
from gpufleet.store.metric_targets import workload_target

router = APIRouter(prefix="/api/v1/workloads", tags=["Workloads"], route_class=OffLoopJsonRoute)

DEFAULT_SAMPLES = 20
MAX_SAMPLES = 1000
# Each point stands for at least this long an interval, so timestamps never collide.
MIN_INTERVAL_MS = 1000


MetricTypesParam = Annotated[
    list[str], Query(description="Specify which data to request (comma-separated).")
]


def metric_types_param(types: type[StrEnum], description: str) -> Any:
    """The ``metricType`` query parameter of a path answering ``types``, with their enum listed."""
    items = {"type": "string", "enum": [t.value for t in types]}
    return Annotated[list[str], Query(description=description, json_schema_extra={"items": items})]


StartParam = Annotated[str, Query(description="Start of the range, ISO 8601.")]
EndParam = Annotated[str, Query(description="End of the range, ISO 8601.")]
SamplesParam = Annotated[
    int | None,
    Query(ge=0, le=MAX_SAMPLES, description="Points per type; 0 or absent means 20."),
]


# 200 (JSON or CSV), 207 with the failed types, and the errors of every metrics path.
METRICS_RESPONSES = {
    200: {"content": {"text/csv": {}}},
    207: {"model": MetricsCompositeResponse, "description": "Partial success."},
    **error_responses(400, 401, 403, 404, 500, 503),
}


def get_metrics_backend(request: Request) -> MetricsBackend:
    return request.app.state.observed_backend


MetricEnum = TypeVar("MetricEnum", bound=StrEnum)


def parse_metric_types(
    values: Sequence[str] | None,
    enum: type[MetricEnum] = WorkloadMetricType,
    what: str = "workload",
) -> list[MetricEnum]:
    """The requested types (comma-separated or repeated), each once, in the order first asked."""
    unknown = f"is not a {what} metric type"
    types = parse_choices("metricType", values, by_value(enum), unknown=unknown)
    if not types:
        raise QueryError("metricType", "at least one metric type is required")
    return list(types)


def refuse_unanswerable(types: Sequence[StrEnum], answerable: frozenset, backend: str) -> None:
    """A 400 naming the requested types the backend has no source for, and the backend."""
    unanswerable = [t.value for t in types if t not in answerable]
    if unanswerable:
        raise QueryError(
            "metricType",
            f"{', '.join(unanswerable)} cannot be answered by the {backend} metrics backend",
        )


def parse_window(start: str, end: str, samples: int | None, max_range_days: int) -> SampleWindow:
    """The sampling window of a request; numberOfSamples 0 or absent means the default 20."""
    begin = parse_timestamp(start, parameter="start")
    finish = parse_timestamp(end, parameter="end")
    if finish <= begin:
        raise QueryError("end", "must be after start")
    if finish - begin > timedelta(days=max_range_days):
        raise QueryError("end", f"the range from start may be at most {max_range_days} days")
    count = samples or DEFAULT_SAMPLES
    window = SampleWindow.between(begin, finish, count)
    if window.span_ms < count * MIN_INTERVAL_MS:
        raise QueryError(
            "numberOfSamples", f"{count} samples need a range of at least {count} seconds"
        )
    return window


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
    state: State,
    scope: ReadScope,
    conn: Db,
    now: Now,
    workloadId: WorkloadIdParam,
    metricType: MetricTypesParam,
    start: StartParam,
    end: EndParam,
    numberOfSamples: SamplesParam = None,
) -> Response:
    types = parse_metric_types(metricType)
    window = parse_window(start, end, numberOfSamples, state.settings.metrics_max_range_days)
    workload = get_workload_or_404(conn, workloadId, now, scope)
    target = workload_target(conn, workload["id"])
    conn.rollback()  # the backend may take a while; hold no transaction open meanwhile
    if target is None:  # deleted between the two reads
        raise NotFound(f"Workload {workloadId} not found.")
    backend = get_metrics_backend(request)
    results = backend.workload_metrics(target, types, window)
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
