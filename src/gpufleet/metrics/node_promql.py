"""PromQL for every node metric type Prometheus can answer, and the node metrics it serves.

Placeholders: ``${gpus}`` selects the node's dcgm-exporter series (by its node label,
``Hostname`` by default), ``${node}`` its cAdvisor and kube-state-metrics series (``node``),
``${gpu}`` is the GPU index label, ``${assigned}`` the matcher of DCGM series attributed to a
pod, ``${w}`` the rate window and ``${blank}`` DCGM's "no value" threshold.

dcgm-exporter repeats a GPU's series for each pod it attributes the GPU to, so every per-GPU
figure is first averaged by GPU (the device's one reading), and node totals add those up.
Utilisations are percent; DCGM's profiling ratios (0-1) are scaled to percent like
``GPU_UTILIZATION``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from string import Template

from gpufleet.core.metric_values import NodeTarget, SampleWindow
from gpufleet.metrics.backend import Measurement, MetricFailure, MetricResult
from gpufleet.metrics.cluster_promql import SeriesFailed, range_query
from gpufleet.metrics.prometheus import QueryGrid
from gpufleet.metrics.prometheus_api import PrometheusClient, QueryAnswer, columns
from gpufleet.metrics.promql import MIB, gpu_placeholders, on_the_wire, quote
from gpufleet.metrics.types import MetricKind, NodeMetricType, metric_info
from gpufleet.settings import Settings

log = logging.getLogger("gpufleet.metrics.prometheus")
N = NodeMetricType


def _by_gpu(field: str) -> str:
    return f"avg by (${{gpu}}) ({field}{{${{gpus}}}} < ${{blank}})"


def _total(field: str) -> str:
    return f"sum({_by_gpu(field)})"


_CONTAINERS = '${node}, container!="", container!="POD"'
_CPU = f"sum(rate(container_cpu_usage_seconds_total{{{_CONTAINERS}}}[${{w}}]))"
_MEMORY = f"sum(container_memory_working_set_bytes{{{_CONTAINERS}}})"
# 1 for a GPU dcgm-exporter attributes to a pod, 0 for one it attributes to none.
_ALLOCATED = (
    "(max by (${gpu}) (DCGM_FI_DEV_GPU_UTIL{${gpus}, ${assigned}} < ${blank}) * 0 + 1)"
    " or (max by (${gpu}) (DCGM_FI_DEV_GPU_UTIL{${gpus}} < ${blank}) * 0)"
)
_FB = "DCGM_FI_DEV_FB_USED"
_FB_ALL = f"({_by_gpu(_FB)} + {_by_gpu('DCGM_FI_DEV_FB_FREE')})"
_PROFILING = {
    N.GPU_GRAPHICS_ENGINE_ACTIVITY_PER_GPU: "DCGM_FI_PROF_GR_ENGINE_ACTIVE",
    N.GPU_SM_ACTIVITY_PER_GPU: "DCGM_FI_PROF_SM_ACTIVE",
    N.GPU_SM_OCCUPANCY_PER_GPU: "DCGM_FI_PROF_SM_OCCUPANCY",
    N.GPU_TENSOR_ACTIVITY_PER_GPU: "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE",
    N.GPU_FP64_ENGINE_ACTIVITY_PER_GPU: "DCGM_FI_PROF_PIPE_FP64_ACTIVE",
    N.GPU_FP32_ENGINE_ACTIVITY_PER_GPU: "DCGM_FI_PROF_PIPE_FP32_ACTIVE",
    N.GPU_FP16_ENGINE_ACTIVITY_PER_GPU: "DCGM_FI_PROF_PIPE_FP16_ACTIVE",
    N.GPU_MEMORY_BANDWIDTH_UTILIZATION_PER_GPU: "DCGM_FI_PROF_DRAM_ACTIVE",
}
_BYTE_RATES = {
    N.GPU_NVLINK_TRANSMITTED_BANDWIDTH_PER_GPU: "DCGM_FI_PROF_NVLINK_TX_BYTES",
    N.GPU_NVLINK_RECEIVED_BANDWIDTH_PER_GPU: "DCGM_FI_PROF_NVLINK_RX_BYTES",
    N.GPU_PCIE_TRANSMITTED_BANDWIDTH_PER_GPU: "DCGM_FI_PROF_PCIE_TX_BYTES",
    N.GPU_PCIE_RECEIVED_BANDWIDTH_PER_GPU: "DCGM_FI_PROF_PCIE_RX_BYTES",
}
_NVLINK = ("DCGM_FI_PROF_NVLINK_TX_BYTES", "DCGM_FI_PROF_NVLINK_RX_BYTES")


def _capacity(resource: str) -> str:
    return f'sum(kube_node_status_capacity{{${{node}}, resource="{resource}"}})'


NODE_QUERIES: dict[NodeMetricType, str] = {
    N.GPU_UTILIZATION_PER_GPU: _by_gpu("DCGM_FI_DEV_GPU_UTIL"),
    N.GPU_UTILIZATION: "avg(" + _by_gpu("DCGM_FI_DEV_GPU_UTIL") + ")",
    N.GPU_MEMORY_USAGE_BYTES_PER_GPU: f"{_by_gpu(_FB)} * {MIB}",
    N.GPU_MEMORY_USAGE_BYTES: f"{_total(_FB)} * {MIB}",
    N.GPU_MEMORY_UTILIZATION_PER_GPU: f"{_by_gpu(_FB)} / {_FB_ALL} * 100",
    N.GPU_MEMORY_UTILIZATION: f"{_total(_FB)} / sum({_FB_ALL}) * 100",
    N.GPU_ALLOCATION_PER_GPU: _ALLOCATED,
    N.GPU_MEMORY_ALLOCATION_BYTES_PER_GPU: f"{_FB_ALL} * {MIB} * on (${{gpu}}) ({_ALLOCATED})",
    N.CPU_USAGE_CORES: _CPU,
    N.CPU_UTILIZATION: f"{_CPU} / {_capacity('cpu')} * 100",
    N.CPU_MEMORY_USAGE_BYTES: _MEMORY,
    N.CPU_MEMORY_UTILIZATION: f"{_MEMORY} / {_capacity('memory')} * 100",
    **{t: f"{_by_gpu(field)} * 100" for t, field in _PROFILING.items()},
    **{t: _by_gpu(field) for t, field in _BYTE_RATES.items()},
    N.NVLINK_BANDWIDTH_TOTAL_PER_GPU: " + ".join(_by_gpu(f) for f in _NVLINK),
    N.NVLINK_BANDWIDTH_TOTAL: " + ".join(_total(f) for f in _NVLINK),
}


class PrometheusNodeMetrics:
    """A node's metrics by PromQL range queries, one per type, run concurrently."""

    name = "prometheus"
    node_metric_types = frozenset(NODE_QUERIES)

    def __init__(self, settings: Settings, *, max_concurrency: int = 4) -> None:
        self._client = PrometheusClient(settings, max_connections=max_concurrency * 2)
        self._settings = settings
        self._pool = ThreadPoolExecutor(max_concurrency, thread_name_prefix="prometheus-nodes")

    def query_for(self, metric_type: NodeMetricType, node: NodeTarget, step_ms: int) -> str:
        """The PromQL sent for one type of one node at a step."""
        s = self._settings
        values = {
            "gpus": f"{s.prometheus_gpu_node_label}={quote(node.name)}",
            "node": f"{s.prometheus_node_label}={quote(node.name)}",
            "assigned": f'{s.prometheus_gpu_pod_label}!=""',
            **gpu_placeholders(s, step_ms),
        }
        return on_the_wire(Template(NODE_QUERIES[metric_type]).substitute(values))

    def node_metrics(
        self, target: NodeTarget, types: Sequence[NodeMetricType], window: SampleWindow
    ) -> list[MetricResult]:
        grid = QueryGrid.for_window(window)
        return list(self._pool.map(lambda t: self._one_type(target, t, grid), types))

    def _one_type(
        self, node: NodeTarget, metric_type: NodeMetricType, grid: QueryGrid
    ) -> MetricResult:
        query = self.query_for(metric_type, node, grid.step_ms)
        try:
            answer = range_query(self._client, query, grid, f"{metric_type.value} of {node.id}")
            return self._result(metric_type, answer)
        except SeriesFailed as exc:
            failure = MetricFailure(str(exc), unreachable=exc.unreachable)
            return MetricResult(metric_type, failure=failure)
        except (TypeError, ValueError):
            log.error("Prometheus sent a malformed answer for %s: %s", metric_type.value, query)
            return MetricResult(
                metric_type, failure=MetricFailure("the Prometheus answer was malformed")
            )

    def _result(self, metric_type: NodeMetricType, answer: QueryAnswer) -> MetricResult:
        gpu = self._settings.prometheus_gpu_label
        per_gpu = metric_info(metric_type).kind is MetricKind.PER_GPU
        series = sorted(answer.series, key=lambda s: _gpu_order(s.labels.get(gpu, "")))
        measurements = tuple(
            Measurement({"gpu": s.labels.get(gpu, "")} if per_gpu else None, *columns(s))
            for s in series
        )
        return MetricResult(metric_type, measurements=measurements, warnings=tuple(answer.warnings))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._client.close()


def _gpu_order(value: str) -> tuple[int, float | str]:
    return (0, int(value)) if value.isdigit() else (1, value)
