"""Pod metrics from a real Prometheus on the generated exporter series.

Every pod type Prometheus answers must equal what Prometheus returns for the documented
expression (written out here, independently of the backend's table); the DCGM profiling
fields are also checked by hand against the generator, and the type without a source is a 400.
"""

from __future__ import annotations

import pytest

from gpufleet.api.app import create_app
from gpufleet.metrics.pod_promql import POD_QUERIES
from gpufleet.metrics.types import PodMetricType
from tests.support import prometheus as data
from tests.support.prometheus_app import (
    assert_same_as_prometheus,
    client_for,
    epoch,
    fetch_metrics,
    grid,
    prometheus_settings,
    seed_workloads,
)

pytest_plugins = ["tests.support.prometheus_fixtures"]

P = PodMetricType
_BLANK = "140737488355328"
_GPU = 'exported_namespace="team-a", exported_pod="train-0"'
_POD = 'namespace="team-a", pod="train-0"'
_LLM = 'namespace="team-b", pod="llm-7d9f-abcde"'


def _per_gpu(field: str, scale: str = " * 100") -> str:
    return f"avg by (gpu) ({field}{{{_GPU}}} < {_BLANK}){scale}"


def _bytes(field: str) -> str:
    return f"sum by (gpu) ({field}{{{_GPU}}} < {_BLANK})"


def _pct(bucket: str) -> dict[str, str]:
    return {
        name: f"histogram_quantile({q}, sum by (le) (rate({bucket}{{{_LLM}}}[{{w}}])))"
        for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99))
    }


TRAIN_0 = {
    P.GPU_UTILIZATION_PER_GPU: _per_gpu("DCGM_FI_DEV_GPU_UTIL", ""),
    P.GPU_UTILIZATION: f"avg(DCGM_FI_DEV_GPU_UTIL{{{_GPU}}} < {_BLANK})",
    P.GPU_MEMORY_USAGE_BYTES_PER_GPU: f"{_bytes('DCGM_FI_DEV_FB_USED')} * 1048576",
    P.GPU_MEMORY_USAGE_BYTES: f"sum(DCGM_FI_DEV_FB_USED{{{_GPU}}} < {_BLANK}) * 1048576",
    P.CPU_USAGE_CORES: f'sum(rate(container_cpu_usage_seconds_total{{{_POD}, container!="",'
    ' container!="POD"}[{w}]))',
    P.CPU_MEMORY_USAGE_BYTES: f'sum(container_memory_working_set_bytes{{{_POD}, container!="",'
    ' container!="POD"})',
    P.GPU_GRAPHICS_ENGINE_ACTIVITY_PER_GPU: _per_gpu("DCGM_FI_PROF_GR_ENGINE_ACTIVE"),
    P.GPU_SM_ACTIVITY_PER_GPU: _per_gpu("DCGM_FI_PROF_SM_ACTIVE"),
    P.GPU_SM_OCCUPANCY_PER_GPU: _per_gpu("DCGM_FI_PROF_SM_OCCUPANCY"),
    P.GPU_TENSOR_ACTIVITY_PER_GPU: _per_gpu("DCGM_FI_PROF_PIPE_TENSOR_ACTIVE"),
    P.GPU_FP64_ENGINE_ACTIVITY_PER_GPU: _per_gpu("DCGM_FI_PROF_PIPE_FP64_ACTIVE"),
    P.GPU_FP32_ENGINE_ACTIVITY_PER_GPU: _per_gpu("DCGM_FI_PROF_PIPE_FP32_ACTIVE"),
    P.GPU_FP16_ENGINE_ACTIVITY_PER_GPU: _per_gpu("DCGM_FI_PROF_PIPE_FP16_ACTIVE"),
    P.GPU_MEMORY_BANDWIDTH_UTILIZATION_PER_GPU: _per_gpu("DCGM_FI_PROF_DRAM_ACTIVE"),
    P.GPU_NVLINK_TRANSMITTED_BANDWIDTH_PER_GPU: _bytes("DCGM_FI_PROF_NVLINK_TX_BYTES"),
    P.GPU_NVLINK_RECEIVED_BANDWIDTH_PER_GPU: _bytes("DCGM_FI_PROF_NVLINK_RX_BYTES"),
    P.GPU_PCIE_TRANSMITTED_BANDWIDTH_PER_GPU: _bytes("DCGM_FI_PROF_PCIE_TX_BYTES"),
    P.GPU_PCIE_RECEIVED_BANDWIDTH_PER_GPU: _bytes("DCGM_FI_PROF_PCIE_RX_BYTES"),
    P.NVLINK_BANDWIDTH_TOTAL: f"sum(DCGM_FI_PROF_NVLINK_TX_BYTES{{{_GPU}}} < {_BLANK})"
    f" + sum(DCGM_FI_PROF_NVLINK_RX_BYTES{{{_GPU}}} < {_BLANK})",
    P.NVLINK_BANDWIDTH_TOTAL_PER_GPU: f"{_bytes('DCGM_FI_PROF_NVLINK_TX_BYTES')}"
    f" + {_bytes('DCGM_FI_PROF_NVLINK_RX_BYTES')}",
}
LLM = {
    P.NIM_NUM_REQUESTS_RUNNING: f"sum(num_requests_running{{{_LLM}}})",
    P.NIM_NUM_REQUESTS_WAITING: f"sum(num_requests_waiting{{{_LLM}}})",
    P.NIM_NUM_REQUEST_MAX: f"sum(num_request_max{{{_LLM}}})",
    P.NIM_REQUEST_SUCCESS_TOTAL: f"sum(rate(request_success_total{{{_LLM}}}[{{w}}])) * {{step}}",
    P.NIM_REQUEST_FAILURE_TOTAL: f"sum(rate(request_failure_total{{{_LLM}}}[{{w}}])) * {{step}}",
    P.NIM_GPU_CACHE_USAGE_PERC: f"avg(gpu_cache_usage_perc{{{_LLM}}})",
    P.NIM_TIME_TO_FIRST_TOKEN_SECONDS: "sum by (le) (rate(time_to_first_token_seconds_bucket"
    f"{{{_LLM}}}[{{w}}])) * {{step}}",
    P.NIM_E2E_REQUEST_LATENCY_SECONDS: "sum by (le) (rate(e2e_request_latency_seconds_bucket"
    f"{{{_LLM}}}[{{w}}])) * {{step}}",
    P.NIM_TIME_TO_FIRST_TOKEN_SECONDS_PERCENTILES: _pct("time_to_first_token_seconds_bucket"),
    P.NIM_E2E_REQUEST_LATENCY_SECONDS_PERCENTILES: _pct("e2e_request_latency_seconds_bucket"),
}
WINDOW = (1800, 9000, 20)


@pytest.fixture(scope="module")
def shared(module_database_url, prom):
    settings = prometheus_settings(module_database_url, prom.url)
    with client_for(create_app(settings)) as client:
        yield client, seed_workloads(client.app.state.gpufleet.engine)


def _fetch(client, workload_id, pod, types, start_s, end_s, samples, status=200):
    return fetch_metrics(client, workload_id, types, start_s, end_s, samples, status, pod=pod)


def test_the_tables_cover_every_type_but_swap():
    assert set(TRAIN_0) | set(LLM) == set(POD_QUERIES) == set(P) - {P.GPU_SWAP_MEMORY_BYTES_PER_GPU}


@pytest.mark.parametrize("metric_type", sorted(POD_QUERIES), ids=lambda t: t.value)
def test_every_type_equals_prometheus(shared, prom, t0, metric_type):
    client, ids = shared
    workload, pod, expression = (
        ("train", "train-0", TRAIN_0[metric_type])
        if metric_type in TRAIN_0
        else ("llm", "llm-7d9f-abcde", LLM[metric_type])
    )
    start, end, samples = t0 + WINDOW[0], t0 + WINDOW[1], WINDOW[2]
    body = _fetch(client, ids[workload], pod, [metric_type], start, end, samples)
    first, last, step = grid(start, end, samples)
    assert_same_as_prometheus(prom, body, metric_type, expression, first, last, step)


def test_profiling_fields_are_percent_per_gpu_of_the_pod_alone(shared, t0):
    client, ids = shared
    start, end = t0 + WINDOW[0], t0 + WINDOW[1]
    types = [P.GPU_SM_ACTIVITY_PER_GPU, P.GPU_TENSOR_ACTIVITY_PER_GPU, P.GPU_UTILIZATION]
    body = _fetch(client, ids["train"], "train-0", types, start, end, WINDOW[2])
    first, _, step = grid(start, end, WINDOW[2])
    when = first + 3 * step
    k = round((when - t0) / data.SCRAPE_SECONDS)
    for metric_type, field in ((types[0], 1), (types[1], 3)):
        series = [m for m in body["measurements"] if m["type"] == metric_type]
        # train-0 holds GPUs 0 and 1 of node-a; no other pod's GPU is in its answer.
        assert [m["labels"] for m in series] == [{"gpu": "0"}, {"gpu": "1"}]
        for measurement, gpu in zip(series, (0, 1), strict=True):
            (value,) = [v["value"] for v in measurement["values"] if epoch(v["timestamp"]) == when]
            assert float(value) == pytest.approx(100 * data.profiling_ratio(field, gpu, k))
    (total,) = [m for m in body["measurements"] if m["type"] == "GPU_UTILIZATION"]
    # GPU 0 at 80% (before the slowdown two hours in) and GPU 1 at 60%.
    assert total["labels"] is None and float(total["values"][3]["value"]) == 70


def test_swap_memory_is_400_naming_the_backend(shared, t0):
    client, ids = shared
    body = _fetch(
        client, ids["train"], "train-0", [P.GPU_SWAP_MEMORY_BYTES_PER_GPU], t0, t0 + 600, 5, 400
    )
    assert "GPU_SWAP_MEMORY_BYTES_PER_GPU" in body["message"] and "prometheus" in body["message"]
