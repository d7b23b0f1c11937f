"""A metrics backend answering from fixed results, for tests of the API layer."""

from __future__ import annotations

from dataclasses import dataclass, field

from gpufleet.core.metric_values import IdleGpus
from gpufleet.metrics.backend import MetricResult
from gpufleet.metrics.types import POD_METRIC_TYPES, AnyMetricType


@dataclass(slots=True)
class StaticMetricsBackend:
    """A backend answering from fixed results, for tests of the API layer.

    ``results`` maps a type to the result returned for it; unknown types are empty successes.
    """

    results: dict[AnyMetricType, MetricResult] = field(default_factory=dict)
    idle: dict[str, IdleGpus] = field(default_factory=dict)
    name: str = "static"
    pod_metric_types: frozenset = frozenset(POD_METRIC_TYPES)

    def workload_metrics(self, target, types, window):
        return [self.results.get(t, MetricResult(type=t)) for t in types]

    def pod_metrics(self, target, types, window):
        return [self.results.get(t, MetricResult(type=t)) for t in types]

    def idle_gpus(self, targets, now, rule):
        wanted = {t.id for t in targets}
        return {k: v for k, v in self.idle.items() if k in wanted}

    def close(self) -> None:
        return None
