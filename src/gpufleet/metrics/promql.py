"""PromQL for every workload metric type, in one table.

Each entry is a template whose ``${...}`` placeholders are filled per request:

* ``${pods}`` / ``${gpu_pods}``: label matchers selecting the workload's pods on
  kube-state-metrics, cAdvisor and inference series / on DCGM series (their label names differ
  when Prometheus scrapes dcgm-exporter without ``honorLabels``);
* ``${ns}``, ``${pod}``, ``${gpu}``: label names, for ``by``/``on`` clauses;
* ``${live}``: the workload's pods that are Pending or Running (value 1), so requests and
  limits of finished pods do not count;
* ``${w}``: the rate window, ``max(step, 4 x scrape interval)``;
* ``${step}``: the step in seconds, turning a per-second rate into a count per point;
* ``${blank}``: DCGM's "no value" sentinel threshold.

Inference types have a NIM (unprefixed) and a vLLM (``vllm:``) form; ``both`` joins them with
``or``, so a workload's NIM series are read and its vLLM series fill in where there are none.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from string import Template
from typing import Literal

from gpufleet.metrics.types import PERCENTILES, AnyMetricType, WorkloadMetricType
from gpufleet.settings import Settings

M = WorkloadMetricType

# DCGM marks unsupported or missing fields with huge values (int64 blanks from
# 0x7ffffffffffffff0, fp64 blanks from 2**47); no real reading comes near them.
DCGM_BLANK_THRESHOLD = "140737488355328"
# DCGM reports framebuffer memory in MiB.
MIB = "1048576"

InferenceNames = Literal["nim", "vllm", "both"]


@dataclass(frozen=True, slots=True)
class Inference:
    """The two spellings of one inference query."""

    nim: str
    vllm: str


def _percentiles(bucket: str) -> str:
    """p50/p90/p99 of a histogram as one query, each quantile labelled ``quantile="pNN"``."""
    return " or ".join(
        f"label_replace(histogram_quantile({q}, sum by (le) (rate({bucket}{{${{pods}}}}[${{w}}]))),"
        f' "quantile", "{name}", "", "")'
        for name, q in PERCENTILES
    )


def _requests(kind: str, resource: str) -> str:
    """Requests or limits of the workload's live containers for one resource."""
    return (
        f"sum(kube_pod_container_resource_{kind}{{${{pods}}, resource={resource}}}"
        " * on (${ns}, ${pod}) group_left () ${live})"
    )


_CONTAINERS = '${pods}, container!="", container!="POD"'

QUERIES: dict[WorkloadMetricType, str | Inference] = {
    M.GPU_UTILIZATION: "avg by (${gpu}) (DCGM_FI_DEV_GPU_UTIL{${gpu_pods}} < ${blank})",
    M.GPU_MEMORY_USAGE_BYTES: (
        f"sum by (${{gpu}}) (DCGM_FI_DEV_FB_USED{{${{gpu_pods}}}} < ${{blank}}) * {MIB}"
    ),
    # Without a GPU-memory request exporter, a pod requests the whole memory of its GPUs.
    M.GPU_MEMORY_REQUEST_BYTES: (
        "sum((DCGM_FI_DEV_FB_USED{${gpu_pods}} < ${blank})"
        f" + (DCGM_FI_DEV_FB_FREE{{${{gpu_pods}}}} < ${{blank}})) * {MIB}"
    ),
    M.CPU_USAGE_CORES: f"sum(rate(container_cpu_usage_seconds_total{{{_CONTAINERS}}}[${{w}}]))",
    M.CPU_REQUEST_CORES: _requests("requests", '"cpu"'),
    M.CPU_LIMIT_CORES: _requests("limits", '"cpu"'),
    M.CPU_MEMORY_USAGE_BYTES: f"sum(container_memory_working_set_bytes{{{_CONTAINERS}}})",
    M.CPU_MEMORY_REQUEST_BYTES: _requests("requests", '"memory"'),
    M.CPU_MEMORY_LIMIT_BYTES: _requests("limits", '"memory"'),
    M.POD_COUNT: "sum(kube_pod_status_phase{${pods}})",
    M.RUNNING_POD_COUNT: 'sum(kube_pod_status_phase{${pods}, phase="Running"})',
    # Whole GPUs of bound (node set), live pods.
    M.GPU_ALLOCATION: _requests("requests", '"nvidia_com_gpu", node!=""'),
    M.NIM_NUM_REQUESTS_RUNNING: Inference(
        "sum(num_requests_running{${pods}})", "sum(vllm:num_requests_running{${pods}})"
    ),
    M.NIM_NUM_REQUESTS_WAITING: Inference(
        "sum(num_requests_waiting{${pods}})", "sum(vllm:num_requests_waiting{${pods}})"
    ),
    # vLLM has no counterpart; both spellings read the NIM gauge.
    M.NIM_NUM_REQUEST_MAX: Inference(
        "sum(num_request_max{${pods}})", "sum(num_request_max{${pods}})"
    ),
    M.NIM_REQUEST_SUCCESS_TOTAL: Inference(
        "sum(rate(request_success_total{${pods}}[${w}])) * ${step}",
        'sum(rate(vllm:request_success_total{${pods}, finished_reason=~"stop|length"}[${w}]))'
        " * ${step}",
    ),
    M.NIM_REQUEST_FAILURE_TOTAL: Inference(
        "sum(rate(request_failure_total{${pods}}[${w}])) * ${step}",
        'sum(rate(vllm:request_success_total{${pods}, finished_reason!~"stop|length"}[${w}]))'
        " * ${step}",
    ),
    M.NIM_GPU_CACHE_USAGE_PERC: Inference(
        "avg(gpu_cache_usage_perc{${pods}})",
        'avg({__name__=~"vllm:kv_cache_usage_perc|vllm:gpu_cache_usage_perc", ${pods}})',
    ),
    M.NIM_TIME_TO_FIRST_TOKEN_SECONDS: Inference(
        "sum by (le) (rate(time_to_first_token_seconds_bucket{${pods}}[${w}])) * ${step}",
        "sum by (le) (rate(vllm:time_to_first_token_seconds_bucket{${pods}}[${w}])) * ${step}",
    ),
    M.NIM_E2E_REQUEST_LATENCY_SECONDS: Inference(
        "sum by (le) (rate(e2e_request_latency_seconds_bucket{${pods}}[${w}])) * ${step}",
        "sum by (le) (rate(vllm:e2e_request_latency_seconds_bucket{${pods}}[${w}])) * ${step}",
    ),
    M.NIM_TIME_TO_FIRST_TOKEN_SECONDS_PERCENTILES: Inference(
        _percentiles("time_to_first_token_seconds_bucket"),
        _percentiles("vllm:time_to_first_token_seconds_bucket"),
    ),
    M.NIM_E2E_REQUEST_LATENCY_SECONDS_PERCENTILES: Inference(
        _percentiles("e2e_request_latency_seconds_bucket"),
        _percentiles("vllm:e2e_request_latency_seconds_bucket"),
    ),
    # DCGM profiling gauges in bytes per second (DEV_NVLINK_BANDWIDTH_TOTAL has no settled unit).
    M.NVLINK_BANDWIDTH_TOTAL: (
        "sum(DCGM_FI_PROF_NVLINK_TX_BYTES{${gpu_pods}} < ${blank})"
        " + sum(DCGM_FI_PROF_NVLINK_RX_BYTES{${gpu_pods}} < ${blank})"
    ),
}

_LIVE = '(max by (${ns}, ${pod}) (kube_pod_status_phase{${pods}, phase=~"Pending|Running"}) == 1)'

# Idle GPUs: the highest utilisation of each GPU over the idle window, and whether it was
# already reported when the window began.
IDLE_MAX_UTILISATION = (
    "max by (${gpu_ns}, ${gpu_pod}, ${gpu}) "
    "(max_over_time((DCGM_FI_DEV_GPU_UTIL{${gpu_pods}} < ${blank})[${window}:${resolution}]))"
)
IDLE_REPORTED_SINCE = (
    "max by (${gpu_ns}, ${gpu_pod}, ${gpu}) "
    "((DCGM_FI_DEV_GPU_UTIL{${gpu_pods}} offset ${window}) < ${blank})"
)

# The usage ledger's hourly figures, evaluated at the last millisecond of the hour over
# ``${range}`` (the hour, or its part so far) in steps of ``${resolution}``: each GPU's mean
# utilisation, and the share of steps at which it had stayed at or below the idle threshold
# for the whole idle window.
USAGE_MEAN_UTILISATION = (
    "avg_over_time((DCGM_FI_DEV_GPU_UTIL{${gpu_pods}} < ${blank})[${range}:${resolution}])"
)
USAGE_IDLE_SHARE = (
    "avg_over_time((max_over_time((DCGM_FI_DEV_GPU_UTIL{${gpu_pods}} < ${blank})"
    "[${window}:${resolution}]) <= bool ${threshold})[${range}:${resolution}])"
)


@dataclass(frozen=True, slots=True)
class LabelNames:
    """Where the namespace, pod and GPU index are found on the scraped series."""

    namespace: str = "namespace"
    pod: str = "pod"
    gpu_namespace: str = "namespace"
    gpu_pod: str = "pod"
    gpu: str = "gpu"


def quote(value: str) -> str:
    """A PromQL string literal (double-quoted, backslashes and quotes escaped)."""
    return json.dumps(value, ensure_ascii=False)


_REGEX_SPECIAL = re.compile(r"([\\.+*?()|\[\]{}^$])")


def _regex_alternation(values: Sequence[str]) -> str:
    # Only RE2's metacharacters are escaped (RE2 rejects escapes of letters and spaces);
    # PromQL regexes are anchored at both ends, so this matches exactly these values.
    return "|".join(_REGEX_SPECIAL.sub(r"\\\1", v) for v in values)


def matcher(label: str, values: Sequence[str]) -> str:
    """A matcher of ``label`` for exactly ``values`` (equality when there is one value)."""
    values = sorted(set(values))
    if len(values) == 1:
        return f"{label}={quote(values[0])}"
    return f"{label}=~{quote(_regex_alternation(values))}"


def pod_matchers(namespace_label: str, pod_label: str, namespaces, pod_names) -> str:
    """Matchers for pods ``pod_names`` in ``namespaces`` (equality when there is one value)."""
    return f"{matcher(namespace_label, namespaces)}, {matcher(pod_label, pod_names)}"


def gpu_pod_matchers(labels: LabelNames, pods_by_namespace: dict[str, list[str]]) -> str:
    """The GPU series' matchers for every pod of ``pods_by_namespace`` (namespace -> names)."""
    namespaces = sorted(pods_by_namespace)
    pod_names = sorted({p for pods in pods_by_namespace.values() for p in pods})
    return pod_matchers(labels.gpu_namespace, labels.gpu_pod, namespaces, pod_names)


def duration(ms: int) -> str:
    """A PromQL duration literal for ``ms`` milliseconds."""
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def scrape_interval_ms(settings: Settings) -> int:
    """Prometheus's scrape interval as the settings give it, in milliseconds."""
    return round(settings.prometheus_scrape_interval_seconds * 1000)


def rate_window_ms(step_ms: int, scrape_ms: int) -> int:
    """``max(step, 4 x scrape interval)``: every window holds several samples."""
    return max(step_ms, 4 * scrape_ms)


def gpu_placeholders(settings: Settings, step_ms: int) -> dict[str, str]:
    """What the node and cluster templates name alike: the GPU label (``gpu``), the rate
    window (``w``) and the value DCGM reports for a field it has no reading of (``blank``)."""
    window = rate_window_ms(step_ms, scrape_interval_ms(settings))
    return {
        "gpu": settings.prometheus_gpu_label,
        "w": duration(window),
        "blank": DCGM_BLANK_THRESHOLD,
    }


def seconds(ms: int) -> str:
    """A number of seconds as a PromQL number literal."""
    return str(ms // 1000) if ms % 1000 == 0 else f"{ms / 1000:.3f}"


def spell(query: str | Inference, names: InferenceNames) -> str:
    """The template for the configured inference metric names."""
    if isinstance(query, str):
        return query
    if names == "nim" or query.nim == query.vllm:
        return query.nim
    if names == "vllm":
        return query.vllm
    # Series by series the NIM result wins; the vLLM one fills in where it has none.
    return f"({query.nim}) or ({query.vllm})"


def on_the_wire(query: str) -> str:
    """``query`` with its values rounded by Prometheus to the wire's six decimals.

    They arrive in the wire's form (``format_value``) and pass through unchanged
    (``metrics.types.wire_decimals``) instead of being parsed and formatted one by one, most of
    the server's own work in a range answer. Prometheus rounds a half up where ``format_value``
    rounds the float's exact value: at an exact half the sixth decimal may differ by one.
    """
    return f"round({query}, 0.000001)"


def workload_query(
    metric_type: AnyMetricType,
    *,
    namespace: str,
    pod_names: Sequence[str],
    labels: LabelNames,
    step_ms: int,
    rate_window_ms: int,
    names: InferenceNames = "both",
    templates: Mapping[AnyMetricType, str | Inference] = QUERIES,
) -> str:
    """The PromQL of one metric type for one workload's pods (or one pod, with the pod
    templates)."""
    pods = pod_matchers(labels.namespace, labels.pod, [namespace], pod_names)
    values = {
        "pods": pods,
        "gpu_pods": pod_matchers(labels.gpu_namespace, labels.gpu_pod, [namespace], pod_names),
        "ns": labels.namespace,
        "pod": labels.pod,
        "gpu": labels.gpu,
        "w": duration(rate_window_ms),
        "step": seconds(step_ms),
        "blank": DCGM_BLANK_THRESHOLD,
    }
    values["live"] = Template(_LIVE).substitute(values)
    return on_the_wire(Template(spell(templates[metric_type], names)).substitute(values))


def idle_queries(
    pods_by_namespace: dict[str, list[str]],
    labels: LabelNames,
    window_ms: int,
    resolution_ms: int,
) -> tuple[str, str]:
    """The two idle-GPU instant queries over the given pods (see ``IDLE_*``)."""
    values = {
        "gpu_pods": gpu_pod_matchers(labels, pods_by_namespace),
        "gpu_ns": labels.gpu_namespace,
        "gpu_pod": labels.gpu_pod,
        "gpu": labels.gpu,
        "window": duration(window_ms),
        "resolution": duration(resolution_ms),
        "blank": DCGM_BLANK_THRESHOLD,
    }
    return (
        Template(IDLE_MAX_UTILISATION).substitute(values),
        Template(IDLE_REPORTED_SINCE).substitute(values),
    )


def usage_queries(
    pods_by_namespace: dict[str, list[str]],
    labels: LabelNames,
    *,
    range_ms: int,
    window_ms: int,
    resolution_ms: int,
    threshold_percent: float,
) -> tuple[str, str]:
    """The two hourly usage queries over the given pods (see ``USAGE_*``)."""
    values = {
        "gpu_pods": gpu_pod_matchers(labels, pods_by_namespace),
        "range": duration(range_ms),
        "window": duration(window_ms),
        "resolution": duration(resolution_ms),
        "threshold": repr(float(threshold_percent)),
        "blank": DCGM_BLANK_THRESHOLD,
    }
    return (
        Template(USAGE_MEAN_UTILISATION).substitute(values),
        Template(USAGE_IDLE_SHARE).substitute(values),
    )
