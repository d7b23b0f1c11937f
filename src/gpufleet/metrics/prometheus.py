"""The Prometheus metrics backend: workload metrics answered by PromQL (see docs/prometheus.md).

For a request of ``count`` samples over ``[start, end)`` the step is ``ceil(span / count)``
milliseconds (at least a second); the last point is ``end`` rounded down to a multiple of the
step and the first lies ``count - 1`` steps before it, so Prometheus evaluates exactly ``count``
timestamps, all multiples of the step (which keeps query-frontend caches and Prometheus itself
in agreement). Each point is the value Prometheus evaluates at its timestamp: gauges as sampled
there, rates and per-step counts over the window that ends there.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from gpufleet.core.metric_values import (
    HourlyUtilisation,
    IdleGpus,
    PodTarget,
    SampleWindow,
    WorkloadTarget,
)
from gpufleet.core.times import to_ms
from gpufleet.metrics.backend import (
    HistogramPoint,
    IdleRule,
    Measurement,
    MetricFailure,
    MetricResult,
    histogram_points,
)
from gpufleet.metrics.pod_promql import POD_QUERIES
from gpufleet.metrics.prometheus_api import (
    PrometheusClient,
    PrometheusQueryError,
    PrometheusUnavailable,
    QueryAnswer,
    Series,
    columns,
    point_pairs,
)
from gpufleet.metrics.promql import (
    QUERIES,
    Inference,
    LabelNames,
    idle_queries,
    rate_window_ms,
    scrape_interval_ms,
    usage_queries,
    workload_query,
)
from gpufleet.metrics.types import (
    AnyMetricType,
    MetricKind,
    PodMetricType,
    WorkloadMetricType,
    format_le,
    metric_info,
    parse_le,
)
from gpufleet.settings import Settings

log = logging.getLogger("gpufleet.metrics.prometheus")

MIN_STEP_MS = 1000
# Pods per idle-GPU query; keeps each selector a reasonable size.
IDLE_CHUNK = 300


@dataclass(frozen=True, slots=True)
class QueryGrid:
    """The evaluation timestamps of one request: ``count`` multiples of ``step_ms``."""

    first_ms: int
    last_ms: int
    step_ms: int

    @classmethod
    def for_window(cls, window: SampleWindow) -> QueryGrid:
        step = max(MIN_STEP_MS, -(-window.span_ms // window.count))
        last = window.end_ms // step * step
        return cls(last - (window.count - 1) * step, last, step)


def _labels(settings: Settings) -> LabelNames:
    return LabelNames(
        namespace=settings.prometheus_namespace_label,
        pod=settings.prometheus_pod_label,
        gpu_namespace=settings.prometheus_gpu_namespace_label,
        gpu_pod=settings.prometheus_gpu_pod_label,
        gpu=settings.prometheus_gpu_label,
    )


class PrometheusBackend:
    """Answers workload metrics with one PromQL range query per type, run concurrently."""

    name = "prometheus"
    pod_metric_types = frozenset(POD_QUERIES)

    def __init__(
        self,
        settings: Settings,
        *,
        queries: dict[WorkloadMetricType, str | Inference] | None = None,
        max_concurrency: int = 8,
    ) -> None:
        self._client = PrometheusClient(settings, max_connections=max_concurrency * 2)
        self._labels = _labels(settings)
        self._names = settings.prometheus_inference_metrics
        self._scrape_ms = scrape_interval_ms(settings)
        self._queries = queries or QUERIES
        self._pool = ThreadPoolExecutor(max_concurrency, thread_name_prefix="prometheus")

    def rate_window_ms(self, step_ms: int) -> int:
        """``max(step, 4 x scrape interval)``: every window holds several samples."""
        return rate_window_ms(step_ms, self._scrape_ms)

    def query_for(
        self, metric_type: AnyMetricType, target: WorkloadTarget | PodTarget, step_ms: int
    ) -> str:
        """The PromQL sent for one type of one workload (or one pod) at a step."""
        pod_target = isinstance(target, PodTarget)
        return workload_query(
            metric_type,
            namespace=target.namespace,
            pod_names=(target.name,) if pod_target else target.pod_names,
            labels=self._labels,
            step_ms=step_ms,
            rate_window_ms=self.rate_window_ms(step_ms),
            names=self._names,
            templates=POD_QUERIES if pod_target else self._queries,
        )

    def workload_metrics(
        self,
        target: WorkloadTarget,
        types: Sequence[WorkloadMetricType],
        window: SampleWindow,
    ) -> list[MetricResult]:
        if not target.pod_names:
            # No pod reported yet: nothing in Prometheus can belong to the workload.
            return [MetricResult(t) for t in types]
        grid = QueryGrid.for_window(window)
        return list(self._pool.map(lambda t: self._one_type(target, t, grid), types))

    def pod_metrics(
        self, target: PodTarget, types: Sequence[PodMetricType], window: SampleWindow
    ) -> list[MetricResult]:
        grid = QueryGrid.for_window(window)
        return list(self._pool.map(lambda t: self._one_type(target, t, grid), types))

    def _one_type(
        self, target: WorkloadTarget | PodTarget, metric_type: AnyMetricType, grid: QueryGrid
    ) -> MetricResult:
        query = self.query_for(metric_type, target, grid.step_ms)
        try:
            answer = self._client.query_range(query, grid.first_ms, grid.last_ms, grid.step_ms)
        except PrometheusUnavailable as exc:
            log.warning("%s for %s: %s", metric_type.value, target.id, exc)
            return MetricResult(metric_type, failure=MetricFailure(str(exc), unreachable=True))
        except PrometheusQueryError as exc:
            # The query names namespaces and pods: it goes to the log, never to the client.
            log.error("Prometheus query for %s failed (%s): %s", metric_type.value, exc, query)
            return MetricResult(metric_type, failure=MetricFailure("the Prometheus query failed"))
        try:
            return _result(metric_type, answer, self._labels.gpu)
        except (TypeError, ValueError):
            log.error("Prometheus sent a malformed answer for %s: %s", metric_type.value, query)
            return MetricResult(
                metric_type, failure=MetricFailure("the Prometheus answer was malformed")
            )

    def idle_gpus(
        self, targets: Sequence[WorkloadTarget], now: datetime, rule: IdleRule
    ) -> dict[str, IdleGpus]:
        owner: dict[tuple[str, str], WorkloadTarget] = {
            (t.namespace, pod): t for t in targets for pod in t.pod_names
        }
        peaks: dict[tuple[str, str, str], float] = {}
        reported: set[tuple[str, str, str]] = set()
        for pods_by_namespace in _pod_chunks(owner):
            peak_query, since_query = idle_queries(
                pods_by_namespace, self._labels, rule.window_seconds * 1000, self._scrape_ms
            )
            for series in self._client.query(peak_query, to_ms(now)).series:
                for _, peak in point_pairs(series):
                    peaks[self._gpu_key(series)] = peak
            for series in self._client.query(since_query, to_ms(now)).series:
                reported.add(self._gpu_key(series))
        gpus_of: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
        for key in peaks:
            target = owner.get(key[:2])
            if target is not None:
                gpus_of[target.id].append(key)
        by_id = {t.id: t for t in targets}
        answer: dict[str, IdleGpus] = {}
        for workload_id, gpus in gpus_of.items():
            idle = sum(1 for g in gpus if g in reported and peaks[g] <= rule.threshold_percent)
            # Each reported GPU carries an equal share of the allocation (fractions included).
            share = by_id[workload_id].allocated_gpus / len(gpus)
            answer[workload_id] = IdleGpus(idle, round(share * idle, 4))
        return answer

    def hourly_utilisation(
        self, targets: Sequence[WorkloadTarget], hour_ms: int, end_ms: int, rule: IdleRule
    ) -> dict[str, HourlyUtilisation]:
        """Each target's mean GPU utilisation over [hour, end) and its idle share (the GPUs'
        figures averaged); targets without DCGM series in the hour are left out."""
        owner = {(t.namespace, pod): t.id for t in targets for pod in t.pod_names}
        means: dict[str, list[float]] = defaultdict(list)
        shares: dict[str, list[float]] = defaultdict(list)
        at = end_ms - 1
        for pods_by_namespace in _pod_chunks(owner):
            mean_query, idle_query = usage_queries(
                pods_by_namespace,
                self._labels,
                range_ms=end_ms - hour_ms,
                window_ms=rule.window_seconds * 1000,
                resolution_ms=self._scrape_ms,
                threshold_percent=rule.threshold_percent,
            )
            for query, into in ((mean_query, means), (idle_query, shares)):
                for series in self._client.query(query, at).series:
                    workload_id = owner.get(self._gpu_key(series)[:2])
                    for _, value in point_pairs(series):
                        if workload_id is not None:
                            into[workload_id].append(value)
        return {
            workload_id: HourlyUtilisation(
                sum(values) / len(values),
                sum(shares[workload_id]) / len(shares[workload_id]) if shares[workload_id] else 0.0,
            )
            for workload_id, values in means.items()
        }

    def _gpu_key(self, series: Series) -> tuple[str, str, str]:
        labels = series.labels
        return (
            labels.get(self._labels.gpu_namespace, ""),
            labels.get(self._labels.gpu_pod, ""),
            labels.get(self._labels.gpu, ""),
        )

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._client.close()


def _result(metric_type: AnyMetricType, answer: QueryAnswer, gpu_label: str) -> MetricResult:
    info = metric_info(metric_type)
    warnings = tuple(answer.warnings)
    match info.kind:
        case MetricKind.HISTOGRAM:
            histogram = _pivot(answer.series, "le", _bucket_key)
            return MetricResult(metric_type, histogram=histogram, warnings=warnings)
        case MetricKind.PERCENTILES:
            histogram = _pivot(answer.series, "quantile", str)
            return MetricResult(metric_type, histogram=histogram, warnings=warnings)
        case MetricKind.PER_GPU:
            ordered = sorted(answer.series, key=lambda s: _gpu_order(s.labels.get(gpu_label, "")))
            measurements = tuple(
                Measurement({"gpu": s.labels.get(gpu_label, "")}, *columns(s)) for s in ordered
            )
        case _:
            measurements = tuple(Measurement(None, *columns(s)) for s in answer.series)
    return MetricResult(metric_type, measurements=measurements, warnings=warnings)


def _bucket_key(le: str) -> str:
    return format_le(parse_le(le))


def _gpu_order(value: str) -> tuple[int, float | str]:
    return (0, int(value)) if value.isdigit() else (1, value)


def _pivot(series: Sequence[Series], label: str, key) -> tuple[HistogramPoint, ...]:
    """One point per timestamp with data for every series, keyed by ``label``'s value, the
    keys in order. A timestamp where any value is NaN or infinite is left out.

    Built column by column: the keys are ordered once, and the series of one answer share
    their timestamps unless some value was left out.
    """
    if not series:
        return ()
    named = sorted(
        ((key(s.labels.get(label, "")), columns(s)) for s in series),
        key=lambda item: _data_order(item[0]),
    )
    names = [name for name, _ in named]
    times = [stamps for _, (stamps, _) in named]
    common = times[0]
    if times.count(common) == len(times):
        values = [texts for _, (_, texts) in named]
    else:
        common = sorted(set(common).intersection(*times[1:]))
        at = [dict(zip(t, v, strict=True)) for _, (t, v) in named]
        values = [list(map(one.__getitem__, common)) for one in at]
    rows = map(dict, map(partial(zip, names), zip(*values, strict=True)))
    return histogram_points(common, rows)


def _data_order(key: str) -> tuple[int, float | str]:
    try:
        return (0, parse_le(key))
    except ValueError:
        return (1, key)


def _pod_chunks(pods: Iterable[tuple[str, str]]) -> Iterator[dict[str, list[str]]]:
    """The (namespace, pod) pairs in order, ``IDLE_CHUNK`` at a time (one query each), each
    chunk's pod names by namespace."""
    keys = sorted(pods)
    for offset in range(0, len(keys), IDLE_CHUNK):
        chunk: dict[str, list[str]] = defaultdict(list)
        for namespace, pod in keys[offset : offset + IDLE_CHUNK]:
            chunk[namespace].append(pod)
        yield chunk
