"""``GET /api/v1/workloads/{workloadId}/metrics``: time series of one workload."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from gpufleet.api.admission import hand_back
from gpufleet.api.authorization import ReadScope
from gpufleet.api.concurrency import ExpensiveRead
from gpufleet.api.csv_responses import csv_response, wants_csv
from gpufleet.api.deps import Db
from gpufleet.api.metric_parameters import MetricTypesParam, metrics_query
from gpufleet.api.parameters import parse_uuid
from gpufleet.api.routes.workloads import WorkloadIdParam
from gpufleet.api.routing import OffLoopJsonRoute
from gpufleet.core.errors import NotFound, Unavailable, UpstreamFailed
from gpufleet.core.times import format_rfc3339, from_ms
from gpufleet.metrics.backend import HistogramPoint, Measurement, MetricResult, MetricsBackend
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


_NEXT_POINT = ',{"value":"'


@functools.lru_cache(maxsize=8192)
def _point_tail(ts_ms: int) -> str:
    """What follows a point's value in the wire's JSON, up to the next point's value."""
    return f'","timestamp":"{_timestamp(ts_ms)}"}}{_NEXT_POINT}'


# What a JSON string must escape; wire values (decimal strings) and timestamps never hold it.
_NEEDS_ESCAPE = re.compile(r'["\\\x00-\x1f]')


class _PointWriter:
    """The ``values`` arrays of one answer written as JSON text straight from the columns, no
    object per point: the same bytes ``orjson`` writes for ``measurement_values``. The series
    of one answer share their timestamps, so each point's timestamp text is looked up once,
    and a series is written by one ``join`` of its values interleaved with those texts."""

    def __init__(self) -> None:
        self._timestamps: Sequence[int] | None = None
        self._tails: list[str] = []

    def measurement(self, measurement: Measurement) -> str:
        values, timestamps = measurement.values, measurement.timestamps_ms
        if len(values) != len(timestamps):
            raise ValueError("a measurement's columns differ in length")
        if not values:
            return "[]"
        if _NEEDS_ESCAPE.search("".join(values)):
            return orjson.dumps(measurement_values(measurement)).decode()
        if timestamps != self._timestamps:
            self._timestamps, self._tails = timestamps, list(map(_point_tail, timestamps))
        texts = self._tails * 2  # value, tail, value, tail ...
        texts[::2] = values
        texts[1::2] = self._tails
        texts[-1] = texts[-1].removesuffix(_NEXT_POINT)  # the last point closes the array
        return '[{"value":"' + "".join(texts) + "]"

    @staticmethod
    def histogram(points: Sequence[HistogramPoint]) -> str:
        # A point's data is a small mapping: orjson writes the points faster than text joins.
        return orjson.dumps(histogram_values(points)).decode()


def histogram_values(points: Sequence[HistogramPoint]) -> list[dict]:
    """Histogram points as the wire's objects."""
    return [{"timestamp": _timestamp(ts), "data": data} for ts, data in points]


def metrics_json(results: Sequence[MetricResult], *, histogram: bool = True) -> bytes:
    """``orjson.dumps(metrics_body(results))``, byte for byte (without ``histogram``, the
    body without its ``histogram`` key), written without the objects of every point."""
    writer = _PointWriter()
    measurements: list[str] = []
    histograms: list[str] = []
    for result in results:
        info = metric_info(result.type)
        kind = orjson.dumps(result.type.value).decode()
        if result.failed:
            measurements.append(f'{{"type":{kind},"labels":null,"values":null}}')
        elif info.is_histogram_shaped:
            values = writer.histogram(result.histogram)
            histograms.append(f'{{"type":{kind},"values":{values}}}')
        elif not result.measurements:
            measurements.append(f'{{"type":{kind},"labels":null,"values":[]}}')
        else:
            for series in result.measurements:
                labels = orjson.dumps(dict(series.labels)).decode() if series.labels else "null"
                values = writer.measurement(series)
                measurements.append(f'{{"type":{kind},"labels":{labels},"values":{values}}}')
    body = '{"measurements":[' + ",".join(measurements) + "]"
    if histogram:
        body += ',"histogram":[' + ",".join(histograms) + "]"
    return (body + "}").encode()


def metrics_body(results: Sequence[MetricResult]) -> dict:
    measurements: list[dict] = []
    histogram: list[dict] = []
    for result in results:
        info = metric_info(result.type)
        if result.failed:
            # A failed type is listed with null values; an empty one has [] (see docs/metrics.md).
            measurements.append({"type": result.type.value, "labels": None, "values": None})
        elif info.is_histogram_shaped:
            values = histogram_values(result.histogram)
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
    workloadId: WorkloadIdParam,
    query: WorkloadMetricsQuery,
) -> Response:
    # Outside the caller's scope is reported exactly like unknown (get_workload_or_404).
    target = workload_target(conn, parse_uuid("workloadId", workloadId), scope)
    hand_back(conn)  # the backend may take a while, and may take a connection of its own
    if target is None:
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
    partial = [r for r in results if r.warnings and not r.failed]
    if failures or partial:
        detail = "; ".join(
            [f"{r.type.value}: {r.failure.message}" for r in failures]
            + [f"{r.type.value}: incomplete ({r.warnings[0][:200]})" for r in partial]
        )
        response = _json(metrics_json(results, histogram=histogram), status_code=207)
        # Headers are latin-1; upstream warnings may hold anything.
        response.headers["X-Gpufleet-Metric-Failures"] = (
            detail[:1000].encode("ascii", "replace").decode()
        )
        return response
    if wants_csv(request):
        return metrics_csv(metrics_body(results))
    return _json(metrics_json(results, histogram=histogram))


def _json(content: bytes, status_code: int = 200) -> Response:
    return Response(content, status_code=status_code, media_type="application/json")
