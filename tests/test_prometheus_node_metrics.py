"""Node metrics from a real Prometheus on the generated exporter series.

Every node type Prometheus answers must equal what Prometheus returns for the documented
expression (written out here, independently of the backend's table); a few are also checked by
hand against the generator, and the types without a source are a 400 naming the backend.
"""

from __future__ import annotations

import uuid

import pytest

from gpufleet.api.app import create_app
from gpufleet.metrics.node_promql import NODE_QUERIES
from gpufleet.metrics.types import NodeMetricType
from tests.support.agent_reports import node_path, node_report
from tests.support.prometheus_app import (
    assert_same_as_prometheus,
    client_for,
    get_metrics,
    grid,
    prometheus_settings,
)
from tests.support.reference import ReferenceValidators, load_reference

pytest_plugins = ["tests.support.prometheus_fixtures"]

N = NodeMetricType
_BLANK = "140737488355328"
_DCGM = 'Hostname="node-a"'
_NODE = 'node="node-a"'
_CONTAINERS = f'{_NODE}, container!="", container!="POD"'


def _gpu(field: str) -> str:
    return f"avg by (gpu) ({field}{{{_DCGM}}} < {_BLANK})"


_FB_ALL = f"({_gpu('DCGM_FI_DEV_FB_USED')} + {_gpu('DCGM_FI_DEV_FB_FREE')})"
_ASSIGNED = (
    f'(max by (gpu) (DCGM_FI_DEV_GPU_UTIL{{{_DCGM}, exported_pod!=""}} < {_BLANK}) * 0 + 1)'
    f" or (max by (gpu) (DCGM_FI_DEV_GPU_UTIL{{{_DCGM}}} < {_BLANK}) * 0)"
)
_CPU = f"sum(rate(container_cpu_usage_seconds_total{{{_CONTAINERS}}}[{{w}}]))"
_MEMORY = f"sum(container_memory_working_set_bytes{{{_CONTAINERS}}})"
NODE_A = {
    N.GPU_UTILIZATION_PER_GPU: _gpu("DCGM_FI_DEV_GPU_UTIL"),
    N.GPU_UTILIZATION: f"avg({_gpu('DCGM_FI_DEV_GPU_UTIL')})",
    N.GPU_MEMORY_USAGE_BYTES_PER_GPU: f"{_gpu('DCGM_FI_DEV_FB_USED')} * 1048576",
    N.GPU_MEMORY_USAGE_BYTES: f"sum({_gpu('DCGM_FI_DEV_FB_USED')}) * 1048576",
    N.GPU_MEMORY_UTILIZATION_PER_GPU: f"{_gpu('DCGM_FI_DEV_FB_USED')} / {_FB_ALL} * 100",
    N.GPU_MEMORY_UTILIZATION: f"sum({_gpu('DCGM_FI_DEV_FB_USED')}) / sum({_FB_ALL}) * 100",
    N.GPU_ALLOCATION_PER_GPU: _ASSIGNED,
    N.GPU_MEMORY_ALLOCATION_BYTES_PER_GPU: f"{_FB_ALL} * 1048576 * on (gpu) ({_ASSIGNED})",
    N.CPU_USAGE_CORES: _CPU,
    N.CPU_UTILIZATION: f'{_CPU} / sum(kube_node_status_capacity{{{_NODE}, resource="cpu"}}) * 100',
    N.CPU_MEMORY_USAGE_BYTES: _MEMORY,
    N.CPU_MEMORY_UTILIZATION: f"{_MEMORY} / sum(kube_node_status_capacity{{{_NODE},"
    ' resource="memory"}) * 100',
    N.GPU_GRAPHICS_ENGINE_ACTIVITY_PER_GPU: f"{_gpu('DCGM_FI_PROF_GR_ENGINE_ACTIVE')} * 100",
    N.GPU_SM_ACTIVITY_PER_GPU: f"{_gpu('DCGM_FI_PROF_SM_ACTIVE')} * 100",
    N.GPU_SM_OCCUPANCY_PER_GPU: f"{_gpu('DCGM_FI_PROF_SM_OCCUPANCY')} * 100",
    N.GPU_TENSOR_ACTIVITY_PER_GPU: f"{_gpu('DCGM_FI_PROF_PIPE_TENSOR_ACTIVE')} * 100",
    N.GPU_FP64_ENGINE_ACTIVITY_PER_GPU: f"{_gpu('DCGM_FI_PROF_PIPE_FP64_ACTIVE')} * 100",
    N.GPU_FP32_ENGINE_ACTIVITY_PER_GPU: f"{_gpu('DCGM_FI_PROF_PIPE_FP32_ACTIVE')} * 100",
    N.GPU_FP16_ENGINE_ACTIVITY_PER_GPU: f"{_gpu('DCGM_FI_PROF_PIPE_FP16_ACTIVE')} * 100",
    N.GPU_MEMORY_BANDWIDTH_UTILIZATION_PER_GPU: f"{_gpu('DCGM_FI_PROF_DRAM_ACTIVE')} * 100",
    N.GPU_NVLINK_TRANSMITTED_BANDWIDTH_PER_GPU: _gpu("DCGM_FI_PROF_NVLINK_TX_BYTES"),
    N.GPU_NVLINK_RECEIVED_BANDWIDTH_PER_GPU: _gpu("DCGM_FI_PROF_NVLINK_RX_BYTES"),
    N.GPU_PCIE_TRANSMITTED_BANDWIDTH_PER_GPU: _gpu("DCGM_FI_PROF_PCIE_TX_BYTES"),
    N.GPU_PCIE_RECEIVED_BANDWIDTH_PER_GPU: _gpu("DCGM_FI_PROF_PCIE_RX_BYTES"),
    N.NVLINK_BANDWIDTH_TOTAL_PER_GPU: f"{_gpu('DCGM_FI_PROF_NVLINK_TX_BYTES')}"
    f" + {_gpu('DCGM_FI_PROF_NVLINK_RX_BYTES')}",
    N.NVLINK_BANDWIDTH_TOTAL: f"sum({_gpu('DCGM_FI_PROF_NVLINK_TX_BYTES')})"
    f" + sum({_gpu('DCGM_FI_PROF_NVLINK_RX_BYTES')})",
}
WINDOW = (1800, 9000, 20)
NODE_IDS = {name: str(uuid.uuid5(uuid.NAMESPACE_DNS, name)) for name in ("node-a", "node-c")}


@pytest.fixture(scope="module")
def client(module_database_url, prom):
    settings = prometheus_settings(module_database_url, prom.url)
    with client_for(create_app(settings)) as client:
        nodes = [node_report(node_id, name=name) for name, node_id in NODE_IDS.items()]
        assert client.post(node_path(), json={"nodes": nodes}).json()["accepted"] == 2
        yield client


def _fetch(client, node: str, types, start_s, end_s, samples=WINDOW[2], status=200):
    path = f"/api/v1/nodes/{NODE_IDS[node]}/metrics"
    return get_metrics(client, path, types, start_s, end_s, samples, status)


def test_the_table_covers_every_type_with_a_source():
    assert set(NODE_A) == set(NODE_QUERIES)
    assert set(N) - set(NODE_QUERIES) == {
        N.GPU_IDLE_TIME_SECONDS_PER_GPU,
        N.GPU_OOMKILL_BURST_COUNT_PER_GPU,
        N.GPU_OOMKILL_IDLE_COUNT_PER_GPU,
        N.GPU_OOMKILL_SWAP_OUT_OF_RAM_COUNT_PER_GPU,
    }


@pytest.mark.parametrize("metric_type", sorted(NODE_QUERIES), ids=lambda t: t.value)
def test_every_type_equals_prometheus(client, prom, t0, metric_type):
    start, end, samples = t0 + WINDOW[0], t0 + WINDOW[1], WINDOW[2]
    body = _fetch(client, "node-a", [metric_type], start, end)
    first, last, step = grid(start, end, samples)
    assert_same_as_prometheus(prom, body, metric_type, NODE_A[metric_type], first, last, step)


def test_hand_checked_values_and_the_reference_shape(client, t0):
    # Ten minutes into the data: node-a's GPUs run at 80, 60, 70 and 10 percent.
    body = _fetch(client, "node-a", [N.GPU_UTILIZATION, N.CPU_UTILIZATION], t0, t0 + 600, 1)
    values = {m["type"]: float(m["values"][-1]["value"]) for m in body["measurements"]}
    # train-0, llm and chat each use 1.5 cores of the node's 64.
    assert values == {"GPU_UTILIZATION": 55.0, "CPU_UTILIZATION": 4.5 * 100 / 64}
    validators = ReferenceValidators(load_reference("runai-adjacent-openapi.json"))
    errors = list(validators.response("/api/v1/nodes/{nodeId}/metrics").iter_errors(body))
    assert errors == [], errors[:3]
    # node-c's GPU 1 is attributed to no pod: allocated 0, GPU 0 (idle-0's) 1.
    body = _fetch(client, "node-c", [N.GPU_ALLOCATION_PER_GPU], t0, t0 + 600, 1)
    allocated = {m["labels"]["gpu"]: m["values"][-1]["value"] for m in body["measurements"]}
    assert allocated == {"0": "1", "1": "0"}


def test_types_without_a_source_are_400_naming_the_backend(client, t0):
    body = _fetch(client, "node-a", [N.GPU_OOMKILL_IDLE_COUNT_PER_GPU], t0, t0 + 600, status=400)
    assert "GPU_OOMKILL_IDLE_COUNT_PER_GPU" in body["message"]
    assert "prometheus" in body["message"]
