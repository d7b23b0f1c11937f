"""The demo's capacity on random demos: no node holds more than it has, free and allocated GPUs
add up to the total in every pool, a node's allocation is what its pods hold, and a pool's is
what its workloads hold. Each example seeds more workloads into the same store, so the
invariants hold for a demo grown in steps too."""

from __future__ import annotations

import time
from collections import defaultdict

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from gpufleet.core.identifiers import is_node_name
from gpufleet.demo.capacity import SPARE_NODES_PER_POOL
from gpufleet.demo.seed import seed_demo

TOLERANCE = 1e-6


def _telemetry(client, kind: str, group_by: str, path="/api/v1/nodes/telemetry") -> dict:
    params = {"telemetryType": kind, "groupBy": group_by}
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    return {
        tuple(g["value"] for g in item["groups"]): float(item["value"])
        for item in response.json()["values"]
    }


def _holding_pods(client) -> dict[tuple[str, str], float]:
    """GPUs held per (cluster, node) by the bound, unfinished pods, read through the pods API."""
    held: dict[tuple[str, str], float] = defaultdict(float)
    offset = 0
    while True:
        response = client.get("/api/v1/workloads/pods", params={"offset": offset, "limit": 500})
        assert response.status_code == 200, response.text
        body = response.json()
        for pod in body["pods"]:
            if pod.get("nodeName") and pod["k8sPhase"] not in ("Succeeded", "Failed"):
                gpus = (pod.get("allocatedResources") or {}).get("gpu") or 0.0
                held[(pod["clusterId"], pod["nodeName"])] += gpus
        if body.get("next") is None:
            return held
        offset = body["next"]


@settings(
    max_examples=3,
    deadline=None,
    # Each example seeds a demo: shrinking would seed hundreds more.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(seed=st.integers(0, 10_000), count=st.integers(20, 150))
def test_telemetry_adds_up_on_random_demos(client, engine, seed, count):
    seed_demo(engine, workloads=count, seed=seed, metrics_history=False)
    pools = "ClusterId,Nodepool"
    total = _telemetry(client, "TOTAL_GPUS", pools)
    allocated = _telemetry(client, "ALLOCATED_GPUS", pools)
    free = _telemetry(client, "FREE_GPUS", pools)
    assert set(total) == set(allocated) == set(free)
    for key in total:
        assert abs(free[key] + allocated[key] - total[key]) < TOLERANCE, key
    fully_free = _telemetry(client, "FULLY_FREE_GPU_NODES", pools)
    assert all(fully_free[key] >= SPARE_NODES_PER_POOL for key in total)

    nodes = "ClusterId,Node"
    per_node = _telemetry(client, "ALLOCATED_GPUS", nodes)
    capacity = _telemetry(client, "TOTAL_GPUS", nodes)
    cpu, cpu_capacity = (
        _telemetry(client, k, nodes) for k in ("ALLOCATED_CPU_CORES", "TOTAL_CPU_CORES")
    )
    for key, gpus in per_node.items():
        assert gpus <= capacity[key] + TOLERANCE, key
        assert cpu[key] <= cpu_capacity[key] + TOLERANCE, key
    held = _holding_pods(client)
    # Seeded straight into the store, the demo's nodes and its pods' nodeName still carry
    # names ingest takes (those Kubernetes gives nodes).
    assert all(is_node_name(node) for _, node in [*capacity, *held])
    assert set(held) <= set(per_node)
    for key, gpus in per_node.items():
        assert abs(held.get(key, 0.0) - gpus) < 1e-3, key

    by_pool = "ClusterId,CurrentNodepools"
    workloads = _telemetry(client, "GPU_ALLOCATION", by_pool, "/api/v1/workloads/telemetry")
    for key, gpus in allocated.items():
        assert abs(workloads.get(key, 0.0) - gpus) < 1e-3, key

    statuses = client.get("/api/v1/nodes", params={"filterBy": "status==NotReady"}).json()
    assert len(statuses["nodes"]) == 2


def test_a_freshly_seeded_demos_gpu_memory_in_use_is_read_at_once(client, engine):
    # Unanalyzed, PostgreSQL planned this over tables of a row or two and ran a subquery once
    # per node: minutes, past the statement timeout, until autovacuum got to the tables.
    seed_demo(engine, workloads=300, seed=7)
    started = time.monotonic()
    used = _telemetry(client, "USED_GPU_MEMORY_BYTES", "ClusterId,Node")
    assert time.monotonic() - started < 5
    assert sum(value > 0 for value in used.values()) >= 5


def test_no_node_uses_more_gpu_memory_than_it_has(client, engine):
    # The demo's history samples each workload's GPU memory: a GPU of its pool has 24, 48 or
    # 80 GiB, and a workload on a default pool's 24 GiB GPUs used to report 80 GiB ones, so
    # nodes read as using more GPU memory than they have.
    seed_demo(engine, workloads=300, seed=7)
    nodes = "ClusterId,Node"
    used = _telemetry(client, "USED_GPU_MEMORY_BYTES", nodes)
    capacity = _telemetry(client, "TOTAL_GPU_MEMORY_BYTES", nodes)
    over = {key: (used[key], capacity[key]) for key in used if used[key] > capacity[key]}
    assert over == {}
