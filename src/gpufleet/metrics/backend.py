"""The ``MetricsBackend`` protocol and the data that crosses it.

The API layer validates a request, builds a ``WorkloadTarget`` and a ``SampleWindow`` (value
types in ``core.metric_values``, which the store shares) and asks
a backend for one ``MetricResult`` per requested type; it never knows whether the numbers came
from the embedded samples table or from Prometheus. Values cross as the wire's decimal strings
(``metrics.types.format_value``): a backend that reads them as text, as Prometheus sends them,
passes most through unchanged instead of parsing and formatting each.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import NamedTuple, Protocol, runtime_checkable

from gpufleet.core.metric_values import IdleGpus, PodTarget, SampleWindow, WorkloadTarget
from gpufleet.metrics.types import AnyMetricType, PodMetricType, WorkloadMetricType


@dataclass(frozen=True, slots=True)
class Measurement:
    """One series of a type: labels (None for the workload total) and its points as two
    columns of equal length, epoch milliseconds and the values' wire strings
    (``format_value``). Columns, not an object per point: answers hold thousands of points."""

    labels: Mapping[str, str] | None
    timestamps_ms: Sequence[int]
    values: Sequence[str]


class HistogramPoint(NamedTuple):
    """One timestamp of a histogram (``le`` key -> cumulative count) or of percentiles
    (``p50``/``p90``/``p99`` -> seconds), values as the wire's strings, keys in order.
    A tuple: an answer holds one per timestamp, a frozen dataclass costs several times more."""

    timestamp_ms: int
    data: Mapping[str, str]


_NEW_POINT = partial(tuple.__new__, HistogramPoint)


def histogram_points(
    timestamps: Iterable[int], data: Iterable[Mapping[str, str]]
) -> tuple[HistogramPoint, ...]:
    """The points of two columns of equal length. Made in C: a named tuple's own constructor
    is a Python function, one call per point."""
    return tuple(map(_NEW_POINT, zip(timestamps, data, strict=True)))


@dataclass(frozen=True, slots=True)
class MetricFailure:
    message: str
    # True when the metrics store could not be reached at all (503 if every type fails so).
    unreachable: bool = False


@dataclass(frozen=True, slots=True)
class MetricResult:
    """The answer for one requested type: series, histogram points, or a failure.

    A type with no data in the range is a success with no measurements and no points.
    ``warnings`` mark data that may be incomplete (the store answered only in part); the
    data is returned and the response is a partial success.
    """

    type: AnyMetricType
    measurements: tuple[Measurement, ...] = ()
    histogram: tuple[HistogramPoint, ...] = ()
    failure: MetricFailure | None = None
    warnings: tuple[str, ...] = ()

    @property
    def failed(self) -> bool:
        return self.failure is not None


@dataclass(frozen=True, slots=True)
class IdleRule:
    threshold_percent: float
    window_seconds: int


@runtime_checkable
class MetricsBackend(Protocol):
    """Where workload metrics come from. Implementations are thread-safe and synchronous."""

    name: str
    # The pod metric types it can answer; asking for another is a 400 naming this backend.
    pod_metric_types: frozenset[PodMetricType]

    def workload_metrics(
        self,
        target: WorkloadTarget,
        types: Sequence[WorkloadMetricType],
        window: SampleWindow,
    ) -> list[MetricResult]:
        """One result per requested type, in the requested order.

        A failure of one type is reported in its result, never raised, so the others still
        return (the route answers 207).
        """
        ...

    def pod_metrics(
        self,
        target: PodTarget,
        types: Sequence[PodMetricType],
        window: SampleWindow,
    ) -> list[MetricResult]:
        """As ``workload_metrics``, for one pod and types among ``pod_metric_types``."""
        ...

    def idle_gpus(
        self, targets: Sequence[WorkloadTarget], now: datetime, rule: IdleRule
    ) -> dict[str, IdleGpus]:
        """Idle GPUs of each target with utilisation data, keyed by workload id.

        A target missing from the answer has no utilisation data in the window.
        """
        ...

    def close(self) -> None:
        """Release connections; called once when the server stops."""
        ...
