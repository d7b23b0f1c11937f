"""The embedded metrics backend: samples kept in the workload store's own database."""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from gpufleet.core.metric_values import IdleGpus, PodTarget, SampleWindow, WorkloadTarget
from gpufleet.core.times import to_ms
from gpufleet.metrics.backend import (
    HistogramPoint,
    IdleRule,
    Measurement,
    MetricFailure,
    MetricResult,
    Point,
)
from gpufleet.metrics.histograms import HistogramError, percentiles
from gpufleet.metrics.types import (
    POD_METRIC_TYPES,
    UNANSWERABLE_POD_TYPES,
    AnyMetricType,
    MetricKind,
    MetricTypeInfo,
    PodMetricType,
    WorkloadMetricType,
    format_le,
    metric_info,
    parse_le,
)
from gpufleet.store import metric_samples as samples
from gpufleet.store.metric_samples import POD_SAMPLES, WORKLOAD_SAMPLES, SampleSource

log = logging.getLogger("gpufleet.metrics")


class EmbeddedMetricsBackend:
    """Answers from the ``metric_samples`` table; every window is aggregated in SQL."""

    name = "embedded"
    # Every type a producer can push (see docs/metrics.md, ingest).
    pod_metric_types = frozenset(POD_METRIC_TYPES) - UNANSWERABLE_POD_TYPES

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def workload_metrics(
        self,
        target: WorkloadTarget,
        types: Sequence[WorkloadMetricType],
        window: SampleWindow,
    ) -> list[MetricResult]:
        return self._answer(WORKLOAD_SAMPLES, target.id, types, window)

    def pod_metrics(
        self, target: PodTarget, types: Sequence[PodMetricType], window: SampleWindow
    ) -> list[MetricResult]:
        return self._answer(POD_SAMPLES, target.id, types, window)

    def _answer(
        self,
        source: SampleSource,
        owner_id: str,
        types: Sequence[AnyMetricType],
        window: SampleWindow,
    ) -> list[MetricResult]:
        results: list[MetricResult] = []
        try:
            with self._engine.connect() as conn:
                for metric_type in types:
                    info = metric_info(metric_type)
                    results.append(self._one_type(conn, source, owner_id, info, window))
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
            log.warning("metrics store unavailable: %s", type(exc).__name__)
            failure = MetricFailure("the metrics store is unavailable", unreachable=True)
            answered = {r.type for r in results}
            results.extend(MetricResult(t, failure=failure) for t in types if t not in answered)
        return results

    def _one_type(
        self,
        conn: Connection,
        source: SampleSource,
        owner_id: str,
        info: MetricTypeInfo,
        window: SampleWindow,
    ) -> MetricResult:
        try:
            with conn.begin_nested() if conn.in_transaction() else conn.begin():
                return self._read(conn, source, owner_id, info, window)
        except HistogramError as exc:
            return MetricResult(info.type, failure=MetricFailure(str(exc)))
        except sa.exc.DBAPIError as exc:
            if isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError):
                raise
            log.warning("metric %s failed: %s", info.type, type(exc).__name__)
            return MetricResult(info.type, failure=MetricFailure("the query failed"))

    def _read(
        self,
        conn: Connection,
        source: SampleSource,
        owner_id: str,
        info: MetricTypeInfo,
        window: SampleWindow,
    ) -> MetricResult:
        stored = info.stored_type.value
        match info.kind:
            case MetricKind.GAUGE | MetricKind.PER_GPU:
                rows = samples.mean_per_interval(conn, owner_id, stored, window, source)
                return MetricResult(info.type, measurements=interval_measurements(rows, window))
            case MetricKind.COUNTER:
                rows = samples.increase_per_interval(conn, owner_id, stored, window, source)
                return MetricResult(info.type, measurements=interval_measurements(rows, window))
            case MetricKind.HISTOGRAM:
                rows = samples.increase_per_interval(conn, owner_id, stored, window, source)
                return MetricResult(info.type, histogram=_histogram(rows, window))
            case MetricKind.PERCENTILES:
                rows = samples.increase_per_interval(conn, owner_id, stored, window, source)
                points = []
                for point in _histogram(rows, window):
                    values = percentiles(point.data)
                    if values is not None:
                        points.append(HistogramPoint(point.timestamp_ms, values))
                return MetricResult(info.type, histogram=tuple(points))
        raise AssertionError(info.kind)  # pragma: no cover - the enum is exhaustive

    def idle_gpus(
        self, targets: Sequence[WorkloadTarget], now: datetime, rule: IdleRule
    ) -> dict[str, IdleGpus]:
        now_ms = to_ms(now)
        window_ms = rule.window_seconds * 1000
        by_id = {t.id: t for t in targets}
        with self._engine.connect() as conn:
            summaries = samples.utilisation_summaries(
                conn, list(by_id), now_ms, window_ms, WorkloadMetricType.GPU_UTILIZATION.value
            )
        per_workload: dict[str, list[samples.UtilisationSummary]] = defaultdict(list)
        for summary in summaries:
            per_workload[summary.workload_id].append(summary)
        answer: dict[str, IdleGpus] = {}
        for workload_id, series in per_workload.items():
            idle = [s for s in series if _stayed_idle(s, now_ms, window_ms, rule)]
            answer[workload_id] = _idle_figures(by_id[workload_id], series, idle)
        return answer

    def close(self) -> None:
        return None


def _stayed_idle(summary, now_ms: int, window_ms: int, rule: IdleRule) -> bool:
    """Reported through the whole window, and never above the threshold within it."""
    return (
        summary.recent_count > 0
        and summary.recent_max is not None
        and summary.recent_max <= rule.threshold_percent
        and summary.first_ts_ms <= now_ms - window_ms
    )


def _idle_figures(target: WorkloadTarget, series, idle) -> IdleGpus:
    per_gpu = [s for s in series if s.series]
    if per_gpu:
        # Each reported GPU carries an equal share of the allocation (fractions included).
        idle_count = sum(1 for s in idle if s.series)
        share = target.allocated_gpus / len(per_gpu)
        return IdleGpus(idle_count, round(share * idle_count, 4))
    if idle:
        # Only a workload total is reported: the whole allocation is idle or none of it.
        return IdleGpus(math.ceil(target.allocated_gpus), round(target.allocated_gpus, 4))
    return IdleGpus(0, 0.0)


def interval_measurements(rows, window: SampleWindow) -> tuple[Measurement, ...]:
    """Rows of ``(series, interval, value)`` as one measurement per series, GPUs in order."""
    by_series: dict[str, list[Point]] = defaultdict(list)
    for row in rows:
        by_series[row.series].append(Point(window.timestamp_ms(row.interval), row.value))
    return tuple(
        Measurement(samples.series_labels(key), tuple(points))
        for key, points in sorted(by_series.items(), key=lambda item: _series_order(item[0]))
    )


def _series_order(key: str) -> tuple[int, float | str]:
    _, _, value = key.partition("=")
    return (0, int(value)) if value.isdigit() else (1, key)


def _histogram(rows, window: SampleWindow) -> tuple[HistogramPoint, ...]:
    by_interval: dict[int, dict[float, float]] = defaultdict(dict)
    for row in rows:
        bound = parse_le(row.series.partition("=")[2])
        by_interval[row.interval][bound] = row.value
    return tuple(
        HistogramPoint(
            window.timestamp_ms(interval),
            {format_le(bound): count for bound, count in sorted(buckets.items())},
        )
        for interval, buckets in sorted(by_interval.items())
    )
