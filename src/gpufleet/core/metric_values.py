"""Values that cross between the metrics backends and the store, defined by neither.

The store aggregates samples into a ``SampleWindow`` and reads ``WorkloadTarget`` and
``PodTarget`` rows for the backends; the backends answer ``IdleGpus`` that the store writes back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gpufleet.core.times import to_ms


@dataclass(frozen=True, slots=True)
class SampleWindow:
    """``count`` evenly spaced points over ``[start, end)``.

    Point ``i`` stands for the interval ``[t_i, t_i+1)`` where
    ``t_i = start + floor(i * span / count)`` (milliseconds) and is stamped ``t_i+1``; the
    intervals tile the range exactly, so a sample belongs to interval
    ``floor((ts - start) * count / span)``.
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
        """Where point ``index`` is stamped: the end of its interval, as Prometheus stamps a
        window's value at the window's end (the last point is ``end``)."""
        return self.start_ms + (index + 1) * self.span_ms // self.count

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


@dataclass(frozen=True, slots=True)
class PodTarget:
    """What a backend needs to find one pod's series."""

    id: str
    workload_id: str
    cluster_id: str
    namespace: str
    name: str


@dataclass(frozen=True, slots=True)
class IdleGpus:
    """How many of a workload's allocated GPUs are idle."""

    idle_gpus: int
    idle_allocated_gpus: float


@dataclass(frozen=True, slots=True)
class HourlyUtilisation:
    """A workload's GPU utilisation over one hour, for the usage ledger: the mean in percent
    and the share of the time its GPUs were idle by the idle-GPU rule (0-1)."""

    mean_percent: float
    idle_share: float


@dataclass(frozen=True, slots=True)
class NodeTarget:
    """What a backend needs to find one node's series, and the capacity its shares divide by."""

    id: str
    cluster_id: str
    name: str
    gpu_count: int
    gpu_memory_bytes: int | None
    cpu_cores: float | None
    memory_bytes: int | None
