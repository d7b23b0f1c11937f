"""A metrics backend that times and counts every call of the one it wraps."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime

from gpufleet.api.server_metrics import ServerMetrics
from gpufleet.metrics.backend import (
    IdleGpus,
    IdleRule,
    MetricResult,
    MetricsBackend,
    PodMetricType,
    PodTarget,
    SampleWindow,
    WorkloadMetricType,
    WorkloadTarget,
)


class ObservedBackend:
    """``MetricsBackend`` around ``inner``: latency per call, failures by cause."""

    def __init__(self, inner: MetricsBackend, metrics: ServerMetrics) -> None:
        self.inner = inner
        self.name = inner.name
        self.pod_metric_types = inner.pod_metric_types
        self._seconds = metrics.backend_seconds
        self._errors = metrics.backend_errors

    def workload_metrics(
        self,
        target: WorkloadTarget,
        types: Sequence[WorkloadMetricType],
        window: SampleWindow,
    ) -> list[MetricResult]:
        """The inner answer; each failed type counts as one error."""
        results = self._timed(
            "workload_metrics", self.inner.workload_metrics, target, types, window
        )
        self._count_failures("workload_metrics", results)
        return results

    def pod_metrics(
        self, target: PodTarget, types: Sequence[PodMetricType], window: SampleWindow
    ) -> list[MetricResult]:
        """The inner answer; each failed type counts as one error."""
        results = self._timed("pod_metrics", self.inner.pod_metrics, target, types, window)
        self._count_failures("pod_metrics", results)
        return results

    def _count_failures(self, operation: str, results: Sequence[MetricResult]) -> None:
        for result in results:
            if result.failure is not None:
                cause = "unreachable" if result.failure.unreachable else "query"
                self._errors.labels(self.name, operation, cause).inc()

    def idle_gpus(
        self, targets: Sequence[WorkloadTarget], now: datetime, rule: IdleRule
    ) -> dict[str, IdleGpus]:
        """The inner answer, timed."""
        return self._timed("idle_gpus", self.inner.idle_gpus, targets, now, rule)

    def close(self) -> None:
        self.inner.close()

    def _timed(self, operation: str, call, *args):
        started = time.perf_counter()
        try:
            return call(*args)
        except Exception:
            self._errors.labels(self.name, operation, "exception").inc()
            raise
        finally:
            self._seconds.labels(self.name, operation).observe(time.perf_counter() - started)
