"""PromQL for every pod metric type Prometheus can answer, in one table.

The placeholders are those of ``promql`` (``${pods}`` and ``${gpu_pods}`` select the one pod).
Types a pod shares with workloads (CPU, the NIM/vLLM types, NVLink in total) reuse the
workload templates unchanged; the rest read dcgm-exporter per GPU. DCGM's profiling fields
(``DCGM_FI_PROF_*``) are ratios of time active, 0-1, and are answered in percent like
``GPU_UTILIZATION``; its byte counters are already rates (bytes per second).
"""

from __future__ import annotations

from gpufleet.metrics.promql import MIB, QUERIES, Inference
from gpufleet.metrics.types import PodMetricType, WorkloadMetricType

P = PodMetricType


def _per_gpu(field: str, scale: str = "") -> str:
    return f"avg by (${{gpu}}) ({field}{{${{gpu_pods}}}} < ${{blank}}){scale}"


def _bytes_per_gpu(field: str) -> str:
    return f"sum by (${{gpu}}) ({field}{{${{gpu_pods}}}} < ${{blank}})"


_PROFILING_FIELDS = {
    P.GPU_GRAPHICS_ENGINE_ACTIVITY_PER_GPU: "DCGM_FI_PROF_GR_ENGINE_ACTIVE",
    P.GPU_SM_ACTIVITY_PER_GPU: "DCGM_FI_PROF_SM_ACTIVE",
    P.GPU_SM_OCCUPANCY_PER_GPU: "DCGM_FI_PROF_SM_OCCUPANCY",
    P.GPU_TENSOR_ACTIVITY_PER_GPU: "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE",
    P.GPU_FP64_ENGINE_ACTIVITY_PER_GPU: "DCGM_FI_PROF_PIPE_FP64_ACTIVE",
    P.GPU_FP32_ENGINE_ACTIVITY_PER_GPU: "DCGM_FI_PROF_PIPE_FP32_ACTIVE",
    P.GPU_FP16_ENGINE_ACTIVITY_PER_GPU: "DCGM_FI_PROF_PIPE_FP16_ACTIVE",
    P.GPU_MEMORY_BANDWIDTH_UTILIZATION_PER_GPU: "DCGM_FI_PROF_DRAM_ACTIVE",
}
_BYTE_RATE_FIELDS = {
    P.GPU_NVLINK_TRANSMITTED_BANDWIDTH_PER_GPU: "DCGM_FI_PROF_NVLINK_TX_BYTES",
    P.GPU_NVLINK_RECEIVED_BANDWIDTH_PER_GPU: "DCGM_FI_PROF_NVLINK_RX_BYTES",
    P.GPU_PCIE_TRANSMITTED_BANDWIDTH_PER_GPU: "DCGM_FI_PROF_PCIE_TX_BYTES",
    P.GPU_PCIE_RECEIVED_BANDWIDTH_PER_GPU: "DCGM_FI_PROF_PCIE_RX_BYTES",
}
_SHARED = (
    P.CPU_USAGE_CORES,
    P.CPU_MEMORY_USAGE_BYTES,
    *(t for t in P if t.name.startswith("NIM_")),
    P.NVLINK_BANDWIDTH_TOTAL,
)

POD_QUERIES: dict[PodMetricType, str | Inference] = {
    P.GPU_UTILIZATION_PER_GPU: QUERIES[WorkloadMetricType.GPU_UTILIZATION],
    P.GPU_UTILIZATION: "avg(DCGM_FI_DEV_GPU_UTIL{${gpu_pods}} < ${blank})",
    P.GPU_MEMORY_USAGE_BYTES_PER_GPU: QUERIES[WorkloadMetricType.GPU_MEMORY_USAGE_BYTES],
    P.GPU_MEMORY_USAGE_BYTES: f"sum(DCGM_FI_DEV_FB_USED{{${{gpu_pods}}}} < ${{blank}}) * {MIB}",
    **{t: _per_gpu(field, " * 100") for t, field in _PROFILING_FIELDS.items()},
    **{t: _bytes_per_gpu(field) for t, field in _BYTE_RATE_FIELDS.items()},
    P.NVLINK_BANDWIDTH_TOTAL_PER_GPU: (
        _bytes_per_gpu("DCGM_FI_PROF_NVLINK_TX_BYTES")
        + " + "
        + _bytes_per_gpu("DCGM_FI_PROF_NVLINK_RX_BYTES")
    ),
    **{t: QUERIES[WorkloadMetricType(t.value)] for t in _SHARED},
}
