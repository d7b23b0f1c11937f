"""The embedded metrics backend: samples kept in the workload store's own database."""

from __future__ import annotations

import functools
import logging
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import partial
from itertools import chain, groupby, repeat
from operator import itemgetter

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from gpufleet.core.metric_values import IdleGpus, PodTarget, SampleWindow, WorkloadTarget
from gpufleet.core.times import to_ms
from gpufleet.metrics.backend import (
    IdleRule,
    Measurement,
    MetricFailure,
    MetricResult,
    histogram_points,
)
from gpufleet.metrics.histograms import HistogramError, interval_percentiles
from gpufleet.metrics.types import (
    PERCENTILES,
    POD_METRIC_TYPES,
    UNANSWERABLE_POD_TYPES,
    AnyMetricType,
    MetricKind,
    MetricTypeInfo,
    PodMetricType,
    WorkloadMetricType,
    format_le,
    format_values,
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
        infos = [metric_info(t) for t in types]
        gauges = [info for info in infos if info.kind in _GAUGES]
        answered: dict[AnyMetricType, MetricResult] = {}
        try:
            with self._engine.connect() as conn:
                if gauges:
                    answered.update(_gauges(conn, source, owner_id, gauges, window))
                for info in infos:
                    if info.type not in answered:
                        answered[info.type] = self._one_type(conn, source, owner_id, info, window)
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
            log.warning("metrics store unavailable: %s", type(exc).__name__)
            failure = MetricFailure("the metrics store is unavailable", unreachable=True)
            for t in types:
                answered.setdefault(t, MetricResult(t, failure=failure))
        return [answered[t] for t in types]

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
        """A counter, histogram or percentiles type (gauges are read together)."""
        rows = samples.increase_per_interval(
            conn,
            owner_id,
            info.stored_type.value,
            window,
            source,
            at_rate=info.kind is MetricKind.COUNTER,
        )
        match info.kind:
            case MetricKind.COUNTER:
                return MetricResult(info.type, measurements=interval_measurements(rows, window))
            case MetricKind.HISTOGRAM:
                buckets = _buckets(rows, window)
                # Every count of the answer formatted by one map; each point takes its own from
                # the one iterator (zip stops at the point's last key without taking another).
                texts = iter(format_values(chain.from_iterable(map(_COUNTS, buckets))))
                points = map(dict, map(zip, map(_KEYS, buckets), repeat(texts)))
                histogram = histogram_points(map(_STAMP, buckets), points)
                return MetricResult(info.type, histogram=histogram)
            case MetricKind.PERCENTILES:
                buckets = _buckets(rows, window, with_bounds=True)
                figures = interval_percentiles(map(_BOUNDS, buckets), map(_COUNTS, buckets))
                kept = zip(map(_STAMP, buckets), figures, strict=True)
                stamps = [ts for ts, values in kept if values is not None]
                # Every percentile of the answer formatted by one map, then cut in threes.
                texts = format_values(chain.from_iterable(v for v in figures if v is not None))
                triples = zip(*[iter(texts)] * len(PERCENTILES), strict=True)
                points = map(dict, map(_PERCENTILE_NAMES, triples))
                return MetricResult(info.type, histogram=histogram_points(stamps, points))
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


_GAUGES = (MetricKind.GAUGE, MetricKind.PER_GPU)


def _gauges(
    conn: Connection,
    source: SampleSource,
    owner_id: str,
    gauges: Sequence[MetricTypeInfo],
    window: SampleWindow,
) -> dict[AnyMetricType, MetricResult]:
    """Every gauge type asked, from one grouped statement; a failed statement fails them all."""
    stored = [info.stored_type.value for info in gauges]
    try:
        with conn.begin():
            rows = samples.means_per_interval(conn, owner_id, stored, window, source)
    except sa.exc.DBAPIError as exc:
        if isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError):
            raise
        log.warning("gauge metrics failed: %s", type(exc).__name__)
        failure = MetricFailure("the query failed")
        return {info.type: MetricResult(info.type, failure=failure) for info in gauges}
    return {
        info.type: MetricResult(
            info.type, measurements=interval_measurements(rows[info.stored_type.value], window)
        )
        for info in gauges
    }


def interval_measurements(
    rows: Iterable[tuple[str, int, float]], window: SampleWindow
) -> tuple[Measurement, ...]:
    """Rows of ``(series, interval, value)``, intervals increasing within a series, as one
    measurement per series, GPUs in order. Each column is cut out in C (``map``, ``groupby``):
    answers hold thousands of rows."""
    starts = _interval_starts(window)
    # Stable: a series' intervals keep their order.
    ordered = sorted(rows, key=_SERIES)
    measurements = []
    for key, of_series in groupby(ordered, key=_SERIES):
        points = list(of_series)
        timestamps = list(map(starts.__getitem__, map(_INTERVAL, points)))
        values = format_values(map(_VALUE, points))
        measurements.append(Measurement(samples.series_labels(key), timestamps, values))
    return tuple(sorted(measurements, key=_series_order))


_SERIES, _INTERVAL, _VALUE = itemgetter(0), itemgetter(1), itemgetter(2)
# A bucket point of _buckets: (timestamp, keys, counts[, bounds]).
_STAMP, _KEYS, _COUNTS, _BOUNDS = itemgetter(0), itemgetter(1), itemgetter(2), itemgetter(3)
_PERCENTILE_NAMES = partial(zip, [name for name, _ in PERCENTILES], strict=True)


@functools.lru_cache(maxsize=64)
def _interval_starts(window: SampleWindow) -> tuple[int, ...]:
    """The timestamp of each interval of a window, computed once for all of its series."""
    return tuple(window.timestamp_ms(index) for index in range(window.count))


def _series_order(measurement: Measurement) -> tuple[int, float | str]:
    labels = measurement.labels or {}
    value = next(iter(labels.values()), "")
    return (0, int(value)) if value.isdigit() else (1, value)


def _buckets(rows: Sequence, window: SampleWindow, *, with_bounds: bool = False) -> list[tuple]:
    """Each interval's buckets as ``(timestamp, keys, counts)`` by increasing bound, and the
    bounds too ``with_bounds``.

    Rows come series by series, intervals increasing. When every bucket has a row in every
    interval (the rule), each series is one column and an interval's counts are cut across
    the columns in C; otherwise the buckets are gathered interval by interval."""
    columns = []  # (bound, intervals, values) of each series
    for series, of_series in groupby(rows, key=_SERIES):
        points = list(of_series)
        bound = parse_le(series.partition("=")[2])
        columns.append((bound, list(map(_INTERVAL, points)), list(map(_VALUE, points))))
    columns.sort(key=_SERIES)  # by bound
    ordered = [bound for bound, _, _ in columns]
    if not columns or len(set(ordered)) < len(columns):
        return _gathered_buckets(rows, window, with_bounds=with_bounds)
    intervals = columns[0][1]
    if any(of_series != intervals for _, of_series, _ in columns):
        return _gathered_buckets(rows, window, with_bounds=with_bounds)
    names = list(map(format_le, ordered))
    stamps = map(_interval_starts(window).__getitem__, intervals)
    counts = map(list, zip(*(values for _, _, values in columns), strict=True))
    if with_bounds:
        return list(zip(stamps, repeat(names), counts, repeat(ordered)))
    return list(zip(stamps, repeat(names), counts))


def _gathered_buckets(
    rows: Sequence, window: SampleWindow, *, with_bounds: bool = False
) -> list[tuple]:
    """``_buckets`` interval by interval, for buckets missing from some intervals."""
    bounds: dict[str, float] = {}  # a histogram has a handful of series: each parsed once
    by_interval: dict[int, dict[float, float]] = defaultdict(dict)
    for series, interval, value in rows:
        bound = bounds.get(series)
        if bound is None:
            bound = bounds[series] = parse_le(series.partition("=")[2])
        by_interval[interval][bound] = value
    keys = {bound: format_le(bound) for bound in bounds.values()}
    starts = _interval_starts(window)
    answer = []
    for interval, buckets in sorted(by_interval.items()):
        ordered = sorted(buckets)
        point = (
            starts[interval],
            [keys[bound] for bound in ordered],
            [buckets[bound] for bound in ordered],
        )
        answer.append((*point, ordered) if with_bounds else point)
    return answer
