"""The metric types of the reference contract (23 of workloads, 31 of pods, 30 of nodes), with
how each is stored and read.

Every backend (embedded samples, Prometheus) serves the same kinds the same way:

* ``GAUGE``: one series per workload, a window's value is the mean of its samples.
* ``PER_GPU``: like a gauge but one series per GPU, labelled ``{"gpu": "<index>"}``.
* ``COUNTER``: a monotonically increasing total; a window's value is its increase in the window.
* ``HISTOGRAM``: cumulative bucket counters keyed by ``le``; a window's value is each bucket's
  increase, so the data of one timestamp is cumulative across buckets.
* ``PERCENTILES``: p50/p90/p99 interpolated from the window's buckets of a source histogram.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from operator import methodcaller


class WorkloadMetricType(StrEnum):
    GPU_UTILIZATION = "GPU_UTILIZATION"
    GPU_MEMORY_USAGE_BYTES = "GPU_MEMORY_USAGE_BYTES"
    GPU_MEMORY_REQUEST_BYTES = "GPU_MEMORY_REQUEST_BYTES"
    CPU_USAGE_CORES = "CPU_USAGE_CORES"
    CPU_REQUEST_CORES = "CPU_REQUEST_CORES"
    CPU_LIMIT_CORES = "CPU_LIMIT_CORES"
    CPU_MEMORY_USAGE_BYTES = "CPU_MEMORY_USAGE_BYTES"
    CPU_MEMORY_REQUEST_BYTES = "CPU_MEMORY_REQUEST_BYTES"
    CPU_MEMORY_LIMIT_BYTES = "CPU_MEMORY_LIMIT_BYTES"
    POD_COUNT = "POD_COUNT"
    RUNNING_POD_COUNT = "RUNNING_POD_COUNT"
    GPU_ALLOCATION = "GPU_ALLOCATION"
    NIM_NUM_REQUESTS_RUNNING = "NIM_NUM_REQUESTS_RUNNING"
    NIM_NUM_REQUESTS_WAITING = "NIM_NUM_REQUESTS_WAITING"
    NIM_NUM_REQUEST_MAX = "NIM_NUM_REQUEST_MAX"
    NIM_REQUEST_SUCCESS_TOTAL = "NIM_REQUEST_SUCCESS_TOTAL"
    NIM_REQUEST_FAILURE_TOTAL = "NIM_REQUEST_FAILURE_TOTAL"
    NIM_GPU_CACHE_USAGE_PERC = "NIM_GPU_CACHE_USAGE_PERC"
    NIM_TIME_TO_FIRST_TOKEN_SECONDS = "NIM_TIME_TO_FIRST_TOKEN_SECONDS"
    NIM_E2E_REQUEST_LATENCY_SECONDS = "NIM_E2E_REQUEST_LATENCY_SECONDS"
    NIM_TIME_TO_FIRST_TOKEN_SECONDS_PERCENTILES = "NIM_TIME_TO_FIRST_TOKEN_SECONDS_PERCENTILES"
    NIM_E2E_REQUEST_LATENCY_SECONDS_PERCENTILES = "NIM_E2E_REQUEST_LATENCY_SECONDS_PERCENTILES"
    NVLINK_BANDWIDTH_TOTAL = "NVLINK_BANDWIDTH_TOTAL"


class MetricKind(StrEnum):
    GAUGE = "gauge"
    PER_GPU = "per-gpu gauge"
    COUNTER = "counter"
    HISTOGRAM = "histogram"
    PERCENTILES = "percentiles"


class PodMetricType(StrEnum):
    GPU_UTILIZATION_PER_GPU = "GPU_UTILIZATION_PER_GPU"
    GPU_UTILIZATION = "GPU_UTILIZATION"
    GPU_MEMORY_USAGE_BYTES_PER_GPU = "GPU_MEMORY_USAGE_BYTES_PER_GPU"
    GPU_MEMORY_USAGE_BYTES = "GPU_MEMORY_USAGE_BYTES"
    CPU_USAGE_CORES = "CPU_USAGE_CORES"
    CPU_MEMORY_USAGE_BYTES = "CPU_MEMORY_USAGE_BYTES"
    GPU_GRAPHICS_ENGINE_ACTIVITY_PER_GPU = "GPU_GRAPHICS_ENGINE_ACTIVITY_PER_GPU"
    GPU_SM_ACTIVITY_PER_GPU = "GPU_SM_ACTIVITY_PER_GPU"
    GPU_SM_OCCUPANCY_PER_GPU = "GPU_SM_OCCUPANCY_PER_GPU"
    GPU_TENSOR_ACTIVITY_PER_GPU = "GPU_TENSOR_ACTIVITY_PER_GPU"
    GPU_FP64_ENGINE_ACTIVITY_PER_GPU = "GPU_FP64_ENGINE_ACTIVITY_PER_GPU"
    GPU_FP32_ENGINE_ACTIVITY_PER_GPU = "GPU_FP32_ENGINE_ACTIVITY_PER_GPU"
    GPU_FP16_ENGINE_ACTIVITY_PER_GPU = "GPU_FP16_ENGINE_ACTIVITY_PER_GPU"
    GPU_MEMORY_BANDWIDTH_UTILIZATION_PER_GPU = "GPU_MEMORY_BANDWIDTH_UTILIZATION_PER_GPU"
    GPU_NVLINK_TRANSMITTED_BANDWIDTH_PER_GPU = "GPU_NVLINK_TRANSMITTED_BANDWIDTH_PER_GPU"
    GPU_NVLINK_RECEIVED_BANDWIDTH_PER_GPU = "GPU_NVLINK_RECEIVED_BANDWIDTH_PER_GPU"
    GPU_PCIE_TRANSMITTED_BANDWIDTH_PER_GPU = "GPU_PCIE_TRANSMITTED_BANDWIDTH_PER_GPU"
    GPU_PCIE_RECEIVED_BANDWIDTH_PER_GPU = "GPU_PCIE_RECEIVED_BANDWIDTH_PER_GPU"
    GPU_SWAP_MEMORY_BYTES_PER_GPU = "GPU_SWAP_MEMORY_BYTES_PER_GPU"
    NIM_NUM_REQUESTS_RUNNING = "NIM_NUM_REQUESTS_RUNNING"
    NIM_NUM_REQUESTS_WAITING = "NIM_NUM_REQUESTS_WAITING"
    NIM_NUM_REQUEST_MAX = "NIM_NUM_REQUEST_MAX"
    NIM_REQUEST_SUCCESS_TOTAL = "NIM_REQUEST_SUCCESS_TOTAL"
    NIM_REQUEST_FAILURE_TOTAL = "NIM_REQUEST_FAILURE_TOTAL"
    NIM_GPU_CACHE_USAGE_PERC = "NIM_GPU_CACHE_USAGE_PERC"
    NIM_TIME_TO_FIRST_TOKEN_SECONDS = "NIM_TIME_TO_FIRST_TOKEN_SECONDS"
    NIM_E2E_REQUEST_LATENCY_SECONDS = "NIM_E2E_REQUEST_LATENCY_SECONDS"
    NIM_TIME_TO_FIRST_TOKEN_SECONDS_PERCENTILES = "NIM_TIME_TO_FIRST_TOKEN_SECONDS_PERCENTILES"
    NIM_E2E_REQUEST_LATENCY_SECONDS_PERCENTILES = "NIM_E2E_REQUEST_LATENCY_SECONDS_PERCENTILES"
    NVLINK_BANDWIDTH_TOTAL = "NVLINK_BANDWIDTH_TOTAL"
    NVLINK_BANDWIDTH_TOTAL_PER_GPU = "NVLINK_BANDWIDTH_TOTAL_PER_GPU"


class NodeMetricType(StrEnum):
    GPU_UTILIZATION_PER_GPU = "GPU_UTILIZATION_PER_GPU"
    GPU_UTILIZATION = "GPU_UTILIZATION"
    GPU_MEMORY_UTILIZATION_PER_GPU = "GPU_MEMORY_UTILIZATION_PER_GPU"
    GPU_MEMORY_UTILIZATION = "GPU_MEMORY_UTILIZATION"
    GPU_MEMORY_USAGE_BYTES_PER_GPU = "GPU_MEMORY_USAGE_BYTES_PER_GPU"
    GPU_MEMORY_USAGE_BYTES = "GPU_MEMORY_USAGE_BYTES"
    GPU_ALLOCATION_PER_GPU = "GPU_ALLOCATION_PER_GPU"
    GPU_MEMORY_ALLOCATION_BYTES_PER_GPU = "GPU_MEMORY_ALLOCATION_BYTES_PER_GPU"
    GPU_IDLE_TIME_SECONDS_PER_GPU = "GPU_IDLE_TIME_SECONDS_PER_GPU"
    CPU_USAGE_CORES = "CPU_USAGE_CORES"
    CPU_UTILIZATION = "CPU_UTILIZATION"
    CPU_MEMORY_USAGE_BYTES = "CPU_MEMORY_USAGE_BYTES"
    CPU_MEMORY_UTILIZATION = "CPU_MEMORY_UTILIZATION"
    GPU_OOMKILL_BURST_COUNT_PER_GPU = "GPU_OOMKILL_BURST_COUNT_PER_GPU"
    GPU_OOMKILL_IDLE_COUNT_PER_GPU = "GPU_OOMKILL_IDLE_COUNT_PER_GPU"
    GPU_OOMKILL_SWAP_OUT_OF_RAM_COUNT_PER_GPU = "GPU_OOMKILL_SWAP_OUT_OF_RAM_COUNT_PER_GPU"
    GPU_GRAPHICS_ENGINE_ACTIVITY_PER_GPU = "GPU_GRAPHICS_ENGINE_ACTIVITY_PER_GPU"
    GPU_SM_ACTIVITY_PER_GPU = "GPU_SM_ACTIVITY_PER_GPU"
    GPU_SM_OCCUPANCY_PER_GPU = "GPU_SM_OCCUPANCY_PER_GPU"
    GPU_TENSOR_ACTIVITY_PER_GPU = "GPU_TENSOR_ACTIVITY_PER_GPU"
    GPU_FP64_ENGINE_ACTIVITY_PER_GPU = "GPU_FP64_ENGINE_ACTIVITY_PER_GPU"
    GPU_FP32_ENGINE_ACTIVITY_PER_GPU = "GPU_FP32_ENGINE_ACTIVITY_PER_GPU"
    GPU_FP16_ENGINE_ACTIVITY_PER_GPU = "GPU_FP16_ENGINE_ACTIVITY_PER_GPU"
    GPU_MEMORY_BANDWIDTH_UTILIZATION_PER_GPU = "GPU_MEMORY_BANDWIDTH_UTILIZATION_PER_GPU"
    GPU_NVLINK_TRANSMITTED_BANDWIDTH_PER_GPU = "GPU_NVLINK_TRANSMITTED_BANDWIDTH_PER_GPU"
    GPU_NVLINK_RECEIVED_BANDWIDTH_PER_GPU = "GPU_NVLINK_RECEIVED_BANDWIDTH_PER_GPU"
    GPU_PCIE_TRANSMITTED_BANDWIDTH_PER_GPU = "GPU_PCIE_TRANSMITTED_BANDWIDTH_PER_GPU"
    GPU_PCIE_RECEIVED_BANDWIDTH_PER_GPU = "GPU_PCIE_RECEIVED_BANDWIDTH_PER_GPU"
    NVLINK_BANDWIDTH_TOTAL = "NVLINK_BANDWIDTH_TOTAL"
    NVLINK_BANDWIDTH_TOTAL_PER_GPU = "NVLINK_BANDWIDTH_TOTAL_PER_GPU"


# Any kind of type; the enums share some values, so a lookup must use the right table.
AnyMetricType = WorkloadMetricType | PodMetricType | NodeMetricType


@dataclass(frozen=True, slots=True)
class MetricTypeInfo:
    type: AnyMetricType
    kind: MetricKind
    unit: str
    description: str
    # For PERCENTILES: the histogram whose buckets they are computed from.
    source: AnyMetricType | None = None

    @property
    def is_histogram_shaped(self) -> bool:
        """Returned in ``histogram`` rather than ``measurements``."""
        return self.kind in (MetricKind.HISTOGRAM, MetricKind.PERCENTILES)

    @property
    def stored_type(self) -> AnyMetricType:
        """The type whose samples hold this type's data."""
        return self.source or self.type

    @property
    def ingestible(self) -> bool:
        return self.kind is not MetricKind.PERCENTILES


PERCENTILES: tuple[tuple[str, float], ...] = (("p50", 0.5), ("p90", 0.9), ("p99", 0.99))

_M = WorkloadMetricType
_K = MetricKind

METRIC_TYPES: dict[WorkloadMetricType, MetricTypeInfo] = {
    info.type: info
    for info in (
        MetricTypeInfo(_M.GPU_UTILIZATION, _K.PER_GPU, "percent", "GPU compute utilisation"),
        MetricTypeInfo(_M.GPU_MEMORY_USAGE_BYTES, _K.PER_GPU, "bytes", "GPU memory used"),
        MetricTypeInfo(_M.GPU_MEMORY_REQUEST_BYTES, _K.GAUGE, "bytes", "GPU memory requested"),
        MetricTypeInfo(_M.CPU_USAGE_CORES, _K.GAUGE, "cores", "CPU cores in use"),
        MetricTypeInfo(_M.CPU_REQUEST_CORES, _K.GAUGE, "cores", "CPU cores requested"),
        MetricTypeInfo(_M.CPU_LIMIT_CORES, _K.GAUGE, "cores", "CPU core limit"),
        MetricTypeInfo(_M.CPU_MEMORY_USAGE_BYTES, _K.GAUGE, "bytes", "CPU memory in use"),
        MetricTypeInfo(_M.CPU_MEMORY_REQUEST_BYTES, _K.GAUGE, "bytes", "CPU memory requested"),
        MetricTypeInfo(_M.CPU_MEMORY_LIMIT_BYTES, _K.GAUGE, "bytes", "CPU memory limit"),
        MetricTypeInfo(_M.POD_COUNT, _K.GAUGE, "pods", "pods of the workload"),
        MetricTypeInfo(_M.RUNNING_POD_COUNT, _K.GAUGE, "pods", "pods in phase Running"),
        MetricTypeInfo(_M.GPU_ALLOCATION, _K.GAUGE, "GPUs", "GPUs allocated (fractional)"),
        MetricTypeInfo(_M.NIM_NUM_REQUESTS_RUNNING, _K.GAUGE, "requests", "requests running"),
        MetricTypeInfo(_M.NIM_NUM_REQUESTS_WAITING, _K.GAUGE, "requests", "requests waiting"),
        MetricTypeInfo(_M.NIM_NUM_REQUEST_MAX, _K.GAUGE, "requests", "concurrent request cap"),
        MetricTypeInfo(_M.NIM_REQUEST_SUCCESS_TOTAL, _K.COUNTER, "requests", "successful requests"),
        MetricTypeInfo(_M.NIM_REQUEST_FAILURE_TOTAL, _K.COUNTER, "requests", "failed requests"),
        MetricTypeInfo(_M.NIM_GPU_CACHE_USAGE_PERC, _K.GAUGE, "fraction 0-1", "KV cache usage"),
        MetricTypeInfo(
            _M.NIM_TIME_TO_FIRST_TOKEN_SECONDS, _K.HISTOGRAM, "seconds", "time to first token"
        ),
        MetricTypeInfo(
            _M.NIM_E2E_REQUEST_LATENCY_SECONDS, _K.HISTOGRAM, "seconds", "end-to-end latency"
        ),
        MetricTypeInfo(
            _M.NIM_TIME_TO_FIRST_TOKEN_SECONDS_PERCENTILES,
            _K.PERCENTILES,
            "seconds",
            "time to first token p50/p90/p99",
            source=_M.NIM_TIME_TO_FIRST_TOKEN_SECONDS,
        ),
        MetricTypeInfo(
            _M.NIM_E2E_REQUEST_LATENCY_SECONDS_PERCENTILES,
            _K.PERCENTILES,
            "seconds",
            "end-to-end latency p50/p90/p99",
            source=_M.NIM_E2E_REQUEST_LATENCY_SECONDS,
        ),
        MetricTypeInfo(_M.NVLINK_BANDWIDTH_TOTAL, _K.GAUGE, "bytes per second", "NVLink traffic"),
    )
}


def _pod_type(name: str, kind: MetricKind, unit: str, description: str) -> MetricTypeInfo:
    return MetricTypeInfo(PodMetricType(name), kind, unit, description)


def _shared(info: MetricTypeInfo) -> MetricTypeInfo:
    """A workload type's pod counterpart: same name, kind and unit, for one pod."""
    source = PodMetricType(info.source.value) if info.source else None
    pod_type = PodMetricType(info.type.value)
    return MetricTypeInfo(pod_type, info.kind, info.unit, info.description, source)


_P = PodMetricType

POD_METRIC_TYPES: dict[PodMetricType, MetricTypeInfo] = {
    info.type: info
    for info in (
        _pod_type("GPU_UTILIZATION_PER_GPU", _K.PER_GPU, "percent", "GPU compute utilisation"),
        _pod_type("GPU_UTILIZATION", _K.GAUGE, "percent", "mean utilisation of the pod's GPUs"),
        _pod_type("GPU_MEMORY_USAGE_BYTES_PER_GPU", _K.PER_GPU, "bytes", "GPU memory used"),
        _pod_type("GPU_MEMORY_USAGE_BYTES", _K.GAUGE, "bytes", "GPU memory used, all GPUs"),
        _shared(METRIC_TYPES[_M.CPU_USAGE_CORES]),
        _shared(METRIC_TYPES[_M.CPU_MEMORY_USAGE_BYTES]),
        _pod_type("GPU_GRAPHICS_ENGINE_ACTIVITY_PER_GPU", _K.PER_GPU, "percent", "graphics engine"),
        _pod_type("GPU_SM_ACTIVITY_PER_GPU", _K.PER_GPU, "percent", "SM activity"),
        _pod_type("GPU_SM_OCCUPANCY_PER_GPU", _K.PER_GPU, "percent", "SM warp occupancy"),
        _pod_type("GPU_TENSOR_ACTIVITY_PER_GPU", _K.PER_GPU, "percent", "tensor pipe activity"),
        _pod_type("GPU_FP64_ENGINE_ACTIVITY_PER_GPU", _K.PER_GPU, "percent", "FP64 pipe activity"),
        _pod_type("GPU_FP32_ENGINE_ACTIVITY_PER_GPU", _K.PER_GPU, "percent", "FP32 pipe activity"),
        _pod_type("GPU_FP16_ENGINE_ACTIVITY_PER_GPU", _K.PER_GPU, "percent", "FP16 pipe activity"),
        _pod_type(
            "GPU_MEMORY_BANDWIDTH_UTILIZATION_PER_GPU", _K.PER_GPU, "percent", "DRAM activity"
        ),
        _pod_type(
            "GPU_NVLINK_TRANSMITTED_BANDWIDTH_PER_GPU", _K.PER_GPU, "bytes per second", "NVLink tx"
        ),
        _pod_type(
            "GPU_NVLINK_RECEIVED_BANDWIDTH_PER_GPU", _K.PER_GPU, "bytes per second", "NVLink rx"
        ),
        _pod_type(
            "GPU_PCIE_TRANSMITTED_BANDWIDTH_PER_GPU", _K.PER_GPU, "bytes per second", "PCIe tx"
        ),
        _pod_type("GPU_PCIE_RECEIVED_BANDWIDTH_PER_GPU", _K.PER_GPU, "bytes per second", "PCIe rx"),
        _pod_type("GPU_SWAP_MEMORY_BYTES_PER_GPU", _K.PER_GPU, "bytes", "GPU memory swapped out"),
        *(_shared(info) for info in METRIC_TYPES.values() if info.type.name.startswith("NIM_")),
        _shared(METRIC_TYPES[_M.NVLINK_BANDWIDTH_TOTAL]),
        _pod_type("NVLINK_BANDWIDTH_TOTAL_PER_GPU", _K.PER_GPU, "bytes per second", "NVLink tx+rx"),
    )
}
# GPU memory swap is a feature of Run:ai's own scheduler; no exporter gpufleet reads reports it.
UNANSWERABLE_POD_TYPES = frozenset({_P.GPU_SWAP_MEMORY_BYTES_PER_GPU})
del _M, _K, _P


def metric_info(metric_type: AnyMetricType) -> MetricTypeInfo:
    """How a type of any kind is stored and read."""
    if isinstance(metric_type, PodMetricType):
        return POD_METRIC_TYPES[metric_type]
    if isinstance(metric_type, NodeMetricType):
        # A node's types are all series of values: one per GPU, or the node's total.
        kind = MetricKind.PER_GPU if metric_type.name.endswith("_PER_GPU") else MetricKind.GAUGE
        return MetricTypeInfo(metric_type, kind, "", metric_type.value)
    return METRIC_TYPES[metric_type]


def format_le(bound: float) -> str:
    """A histogram bucket's upper bound as a key: ``"0.001"``, ``"1.0"``, ``"+Inf"``.

    Integral bounds keep one decimal, as Prometheus 3 normalises them, so keys from every
    producer and backend agree.
    """
    if bound == float("inf"):
        return "+Inf"
    if float(bound).is_integer():
        return f"{bound:.1f}"
    return repr(float(bound))


def parse_le(text: str) -> float:
    """The numeric upper bound of a ``le`` key; raises ValueError when it is not one."""
    bound = float(text)
    if bound != bound or bound == float("-inf"):
        raise ValueError(f"{text!r} is not a bucket upper bound")
    return bound


def format_value(value: float) -> str:
    """A number as the wire's string: rounded to 6 decimals, trailing zeros and a trailing
    point dropped (so integers have no fraction), never an exponent."""
    if value != value:
        return "NaN"
    # float() first: sums from the database arrive as int (or Decimal) when every term is whole.
    text = f"{float(value):.6f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


_SIX_DECIMALS = "%.6f".__mod__
_STRIP_ZEROS = methodcaller("rstrip", "0")
_STRIP_POINT = methodcaller("rstrip", ".")
# A decimal string format_value writes unchanged: a whole number of at most 15 digits ("0"
# unsigned), or at most 6 decimals (no trailing zero) after at most 9 digits, so the float it
# parses to is nearer to it than the rounding could move; no exponent.
_WIRE_NUMBER = r"0|-?[1-9][0-9]{0,14}|-?(?:0|[1-9][0-9]{0,8})\.[0-9]{0,5}[1-9]"
# Lines of such numbers: a thousand values are checked by one match, in C (a match over many
# thousands of lines costs more per line than several matches of a thousand).
_WIRE_LINES = re.compile(f"(?:(?:{_WIRE_NUMBER})\n)*(?:{_WIRE_NUMBER})")
_LINES_PER_MATCH = 1000


def format_values(values: Iterable[float]) -> list[str]:
    """``format_value`` of each finite value; a metrics answer formats thousands, so the
    iteration runs in C (``map``), not as a Python call per value."""
    texts = list(map(_STRIP_POINT, map(_STRIP_ZEROS, map(_SIX_DECIMALS, values))))
    if "-0" in texts:
        texts = ["0" if text == "-0" else text for text in texts]
    return texts


def wire_decimals(texts: list[str]) -> list[str]:
    """Finite decimal strings written by another system (Prometheus' sample values) in the
    wire's form: as ``format_value`` of their numbers. Whole numbers and short decimals (what
    the Prometheus backend asks Prometheus to send, ``promql.on_the_wire``) are already in it
    and come back as they are. Raises ValueError for anything but finite numbers."""
    if all(map(_in_wire_form, _chunks(texts, _LINES_PER_MATCH))):
        return texts
    numbers = list(map(float, texts))
    if not all(map(math.isfinite, numbers)):
        raise ValueError("a value is not a finite number")
    return format_values(numbers)


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    return (items[start : start + size] for start in range(0, len(items), size))


def _in_wire_form(texts: list[str]) -> bool:
    lines = "\n".join(texts)
    # A text holding a line break of its own is no number (float() refuses it afterwards).
    return lines.count("\n") == len(texts) - 1 and _WIRE_LINES.fullmatch(lines) is not None
