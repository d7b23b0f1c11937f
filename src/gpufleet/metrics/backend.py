"""The ``MetricsBackend`` protocol and the data that crosses it.

The API layer validates a request, builds a ``WorkloadTarget`` and a ``SampleWindow`` and asks
a backend for one ``MetricResult`` per requested type; it never knows whether the numbers came
from the embedded samples table or from Prometheus. Values are plain floats here; formatting
to the wire's strings happens in the route.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple, Protocol, runtime_checkable

from gpufleet.metrics.types import WorkloadMetricType


def to_ms(moment: datetime) -> int:
    """Epoch milliseconds of an aware datetime."""
    return int(moment.timestamp() * 1000)


def from_ms(epoch_ms: int) -> datetime:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)


@dataclass(frozen=True, slots=True)
class SampleWindow:
    """``count`` evenly spaced points over ``[start, end)``.

    Point ``i`` stands for the interval ``[t_i, t_i+1)`` where
    ``t_i = start + floor(i * span / count)`` (milliseconds); the intervals tile the range
    exactly, so a sample belongs to interval ``floor((ts - start) * count / span)``.
    """

    start_ms: int
    end_ms: int
    count: int

    def __post_init__(self) -> None:
        if self.end_ms <= self.start_ms:
            raise ValueError("end must be after start")
        if self.count < 1:
            raise ValueError("count must be at least 1")

    @classmethod
    def between(cls, start: datetime, end: datetime, count: int) -> SampleWindow:
        return cls(to_ms(start), to_ms(end), count)

    @property
    def span_ms(self) -> int:
        return self.end_ms - self.start_ms

    def timestamp_ms(self, index: int) -> int:
        return self.start_ms + index * self.span_ms // self.count

    def timestamps_ms(self) -> list[int]:
        return [self.timestamp_ms(i) for i in range(self.count)]

    def index_of(self, ts_ms: int) -> int | None:
        """The interval a sample at ``ts_ms`` belongs to, None outside the range."""
        if not self.start_ms <= ts_ms < self.end_ms:
            return None
        return (ts_ms - self.start_ms) * self.count // self.span_ms

    @property
    def step_ms(self) -> float:
        """The average interval length (exact when the span divides evenly)."""
        return self.span_ms / self.count


@dataclass(frozen=True, slots=True)
class WorkloadTarget:
    """What a backend needs to find a workload's series."""

    id: str
    cluster_id: str
    namespace: str
    name: str
    pod_names: tuple[str, ...] = ()
    allocated_gpus: float = 0.0
    phase: str = ""


class Point(NamedTuple):
    # A tuple, not a dataclass: responses build thousands of these per request.
    timestamp_ms: int
    value: float


@dataclass(frozen=True, slots=True)
class Measurement:
    """One series of a type: labels (None for the workload total) and its points."""

    labels: Mapping[str, str] | None
    points: tuple[Point, ...]


@dataclass(frozen=True, slots=True)
class HistogramPoint:
    """One timestamp of a histogram (``le`` key -> cumulative count) or of percentiles
    (``p50``/``p90``/``p99`` -> seconds)."""

    timestamp_ms: int
    data: Mapping[str, float]


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

    type: WorkloadMetricType
    measurements: tuple[Measurement, ...] = ()
    histogram: tuple[HistogramPoint, ...] = ()
    failure: MetricFailure | None = None
    warnings: tuple[str, ...] = ()

    @property
    def failed(self) -> bool:
        return self.failure is not None


@dataclass(frozen=True, slots=True)
class IdleGpus:
    """How many of a workload's allocated GPUs are idle."""

    idle_gpus: int
    idle_allocated_gpus: float


@dataclass(frozen=True, slots=True)
class IdleRule:
    threshold_percent: float
    window_seconds: int


@runtime_checkable
class MetricsBackend(Protocol):
    """Where workload metrics come from. Implementations are thread-safe and synchronous."""

    name: str

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


@dataclass(slots=True)
class StaticMetricsBackend:
    """A backend answering from fixed results, for tests of the API layer.

    ``results`` maps a type to the result returned for it; unknown types are empty successes.
    """

    results: dict[WorkloadMetricType, MetricResult] = field(default_factory=dict)
    idle: dict[str, IdleGpus] = field(default_factory=dict)
    name: str = "static"

    def workload_metrics(self, target, types, window):
        return [self.results.get(t, MetricResult(type=t)) for t in types]

    def idle_gpus(self, targets, now, rule):
        wanted = {t.id for t in targets}
        return {k: v for k, v in self.idle.items() if k in wanted}

    def close(self) -> None:
        return None
