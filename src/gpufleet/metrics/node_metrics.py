"""Metrics of one node over time (``GET /api/v1/nodes/{nodeId}/metrics``), on either backend.

The embedded backend reads the samples of the pods bound to the node (see
``store.node_samples``): a GPU type from the ``gpu=<index>`` series of the pod type of the same
name, the CPU types from the pods' totals added up; utilisations divide by the node's capacity.
The Prometheus backend reads dcgm-exporter, cAdvisor and kube-state-metrics series selected by
the node's name (``metrics.node_promql``). Types a backend has no source for are refused by the
route with a 400 naming the backend.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from gpufleet.core.metric_values import NodeTarget, SampleWindow
from gpufleet.metrics.backend import MetricFailure, MetricResult, MetricsBackend
from gpufleet.metrics.embedded import interval_measurements
from gpufleet.metrics.node_promql import PrometheusNodeMetrics
from gpufleet.metrics.prometheus import PrometheusBackend
from gpufleet.metrics.types import NodeMetricType, PodMetricType
from gpufleet.settings import Settings
from gpufleet.store.metric_samples import IntervalValue
from gpufleet.store.node_samples import node_gpu_means, node_pod_sums

log = logging.getLogger("gpufleet.metrics")
N = NodeMetricType


class NodeMetrics(Protocol):
    """Where a node's metrics come from; thread-safe and synchronous like ``MetricsBackend``."""

    name: str
    node_metric_types: frozenset[NodeMetricType]

    def node_metrics(
        self, target: NodeTarget, types: Sequence[NodeMetricType], window: SampleWindow
    ) -> list[MetricResult]:
        """One result per requested type, in order; a failed type is reported, not raised."""
        ...

    def close(self) -> None: ...


class Reading(Enum):
    PER_GPU = "each GPU"
    ALL_GPUS = "the node's GPUs added up"
    PODS = "the node's pods added up"


@dataclass(frozen=True, slots=True)
class Derivation:
    """How the embedded backend answers a node type from its pods' samples."""

    source: PodMetricType
    reading: Reading
    # The capacity a share divides by, None for a plain amount; the share is times ``scale``.
    capacity: Callable[[NodeTarget], float | None] | None = None
    scale: float = 100.0


def _gpu_memory(node: NodeTarget) -> float | None:
    return node.gpu_memory_bytes


def _all_gpu_memory(node: NodeTarget) -> float | None:
    return node.gpu_memory_bytes * node.gpu_count if node.gpu_memory_bytes else None


def _gpus(node: NodeTarget) -> float | None:
    return node.gpu_count


def _cores(node: NodeTarget) -> float | None:
    return node.cpu_cores


def _memory(node: NodeTarget) -> float | None:
    return node.memory_bytes


_P = PodMetricType
# Per-GPU node types whose pod type of the same name is read as it is.
_SAME_PER_GPU = tuple(t for t in N if t.name.endswith("_PER_GPU") and t.value in _P.__members__)
EMBEDDED_DERIVATIONS: dict[NodeMetricType, Derivation] = {
    **{t: Derivation(_P(t.value), Reading.PER_GPU) for t in _SAME_PER_GPU},
    # A GPU no pod reports on holds no work: the node's utilisation counts it as idle.
    N.GPU_UTILIZATION: Derivation(_P.GPU_UTILIZATION_PER_GPU, Reading.ALL_GPUS, _gpus, 1.0),
    N.GPU_MEMORY_USAGE_BYTES: Derivation(_P.GPU_MEMORY_USAGE_BYTES_PER_GPU, Reading.ALL_GPUS),
    N.GPU_MEMORY_UTILIZATION_PER_GPU: Derivation(
        _P.GPU_MEMORY_USAGE_BYTES_PER_GPU, Reading.PER_GPU, _gpu_memory
    ),
    N.GPU_MEMORY_UTILIZATION: Derivation(
        _P.GPU_MEMORY_USAGE_BYTES_PER_GPU, Reading.ALL_GPUS, _all_gpu_memory
    ),
    N.NVLINK_BANDWIDTH_TOTAL: Derivation(_P.NVLINK_BANDWIDTH_TOTAL_PER_GPU, Reading.ALL_GPUS),
    N.CPU_USAGE_CORES: Derivation(_P.CPU_USAGE_CORES, Reading.PODS),
    N.CPU_UTILIZATION: Derivation(_P.CPU_USAGE_CORES, Reading.PODS, _cores),
    N.CPU_MEMORY_USAGE_BYTES: Derivation(_P.CPU_MEMORY_USAGE_BYTES, Reading.PODS),
    N.CPU_MEMORY_UTILIZATION: Derivation(_P.CPU_MEMORY_USAGE_BYTES, Reading.PODS, _memory),
}
del _P


class EmbeddedNodeMetrics:
    """A node's metrics from the samples its pods pushed into the embedded store."""

    name = "embedded"
    node_metric_types = frozenset(EMBEDDED_DERIVATIONS)

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def node_metrics(
        self, target: NodeTarget, types: Sequence[NodeMetricType], window: SampleWindow
    ) -> list[MetricResult]:
        try:
            with self._engine.connect() as conn:
                return [self._one_type(conn, target, t, window) for t in types]
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
            log.warning("metrics store unavailable: %s", type(exc).__name__)
            failure = MetricFailure("the metrics store is unavailable", unreachable=True)
            return [MetricResult(t, failure=failure) for t in types]

    def _one_type(
        self, conn: Connection, node: NodeTarget, metric_type: NodeMetricType, window: SampleWindow
    ) -> MetricResult:
        derivation = EMBEDDED_DERIVATIONS[metric_type]
        source = derivation.source.value
        if derivation.reading is Reading.PODS:
            rows = node_pod_sums(conn, node, source, window)
        else:
            rows = node_gpu_means(conn, node, source, window)
        if derivation.reading is Reading.ALL_GPUS:
            rows = _added_up(rows)
        if derivation.capacity is not None:
            capacity = derivation.capacity(node)
            if not capacity:
                return MetricResult(metric_type)  # no capacity known: nothing to divide by
            share = derivation.scale / capacity
            rows = [IntervalValue(r.series, r.interval, r.value * share) for r in rows]
        return MetricResult(metric_type, measurements=interval_measurements(rows, window))

    def close(self) -> None:
        return None


def _added_up(rows: Sequence[IntervalValue]) -> list[IntervalValue]:
    totals: dict[int, float] = defaultdict(float)
    for row in rows:
        totals[row.interval] += row.value
    return [IntervalValue("", interval, totals[interval]) for interval in sorted(totals)]


def node_metrics_for(settings: Settings, engine: Engine, backend: MetricsBackend) -> NodeMetrics:
    """The node metrics of the backend the server uses: Prometheus or the embedded store."""
    if isinstance(getattr(backend, "inner", backend), PrometheusBackend):
        return PrometheusNodeMetrics(settings)
    return EmbeddedNodeMetrics(engine)
