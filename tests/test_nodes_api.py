"""``/api/v1/nodes`` and ``/api/v1/node-pools``: reference shapes, filters, sorting, paging,
the cluster paths, telemetry that adds up, and what a scoped caller sees."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from gpufleet.store.inventory_samples import sample_inventory
from tests.support.access import key_with_role
from tests.support.agent_reports import (
    CLUSTER_ID,
    batch,
    ingest_path,
    node_path,
    node_report,
    report,
)
from tests.support.reference import ReferenceValidators, load_reference

OTHER = "0b6f1c9e-2f43-4a55-8d1e-7e0f7d9d3a11"


def _node(name: str, pool: str, **fields) -> dict:
    return node_report(
        str(uuid.uuid5(uuid.NAMESPACE_DNS, name)), name=name, nodePool=pool, **fields
    )


def _pod(node: str, gpus: float, phase: str = "Running") -> dict:
    return {
        "name": f"pod-{uuid.uuid4().hex[:6]}",
        "uid": str(uuid.uuid4()),
        "nodeName": node,
        "phase": phase,
        "allocatedResources": {"gpu": gpus, "cpu": 2.0, "cpuMemory": "4Gi"},
    }


@pytest.fixture
def fleet(client):
    """Cluster A: four a100 nodes (one NotReady, one cordoned), one default node without GPUs;
    cluster B: one l40s node. Workloads hold 3 + 2 GPUs on a100-0 and 1 on a100-1."""
    nodes_a = [
        _node("a100-0", "a100"),
        _node("a100-1", "a100"),
        _node("a100-2", "a100", status="NotReady"),
        _node("a100-3", "a100", unschedulable=True),
        _node("cpu-0", "default", gpuCount=0, allocatableGpus=0, gpuType=None),
    ]
    nodes_b = [_node("l40s-0", "l40s", gpuType="NVIDIA-L40S", gpuMemoryBytes=48 * 2**30)]
    for cluster, items in ((CLUSTER_ID, nodes_a), (OTHER, nodes_b)):
        response = client.post(node_path(cluster), json={"nodes": items})
        assert response.status_code == 200 and response.json()["accepted"] == len(items)
    workloads = [
        report(phase="Running", pods=[_pod("a100-0", 3), _pod("a100-1", 1)]),
        report(phase="Running", pods=[_pod("a100-0", 2), _pod("a100-2", 1, "Succeeded")]),
        report(phase="Running", cluster_id=OTHER, pods=[_pod("l40s-0", 4)]),
    ]
    for item in workloads:
        assert client.post(ingest_path(item["clusterId"]), json=batch(item)).status_code == 200
    return {"a": nodes_a, "b": nodes_b, "workloads": [item["id"] for item in workloads]}


def _names(client, path="/api/v1/nodes", headers=None, **params) -> list[str]:
    response = client.get(path, params=params, headers=headers)
    assert response.status_code == 200, response.text
    return [node["name"] for node in response.json()["nodes"]]


def test_nodes_are_listed_in_the_reference_shape(client, fleet):
    validators = ReferenceValidators(load_reference("runai-adjacent-openapi.json"))
    for path in ("/api/v1/nodes", f"/api/v1/clusters/{CLUSTER_ID}/nodes"):
        body = client.get(path).json()
        errors = list(
            validators.response(path.replace(CLUSTER_ID, "{clusterUuid}")).iter_errors(body)
        )
        assert errors == [], errors[:3]
    pools = client.get("/api/v1/node-pools").json()
    assert list(validators.response("/api/v1/node-pools").iter_errors(pools)) == []
    one = client.get(f"/api/v1/node-pools/{pools['nodepools'][0]['id']}").json()
    assert list(validators.schema("Nodepool").iter_errors(one)) == []


def test_filters_sorting_paging_and_search(client, fleet):
    assert _names(client) == ["a100-0", "a100-1", "a100-2", "a100-3", "cpu-0", "l40s-0"]
    assert _names(client, filterBy="nodePool==a100,status==NotReady") == ["a100-2"]
    assert _names(client, filterBy=f"clusterUuid=={OTHER}") == ["l40s-0"]
    assert _names(client, sortBy="nodePool", sortOrder="desc", limit=2) == ["l40s-0", "cpu-0"]
    assert _names(client, offset=4, limit=10) == ["cpu-0", "l40s-0"]
    assert _names(client, search="L40") == ["l40s-0"]
    count = client.get("/api/v1/nodes/count", params={"filterBy": "gpuType=@A100"})
    assert count.json() == {"count": 4}
    cluster = f"/api/v1/clusters/{CLUSTER_ID}/nodes"
    assert _names(client, cluster, nodeName="a100-1") == ["a100-1"]
    assert client.get(f"{cluster}/count").json() == {"count": 5}
    combined = client.get(cluster, params={"nodeName": "a100-1", "limit": 5})
    assert combined.status_code == 400 and "nodeName" in combined.json()["message"]
    bad = client.get("/api/v1/nodes", params={"filterBy": "capacity>=1"})
    assert bad.status_code == 400 and "capacity" in bad.json()["message"]
    # Status and a pool's phase are enums of the reference: a value outside them is named.
    for path, term in (("/api/v1/nodes", "status==Broken"), ("/api/v1/node-pools", "phase!=Up")):
        refused = client.get(path, params={"filterBy": term})
        assert refused.status_code == 400, refused.text
        assert f"unknown {term.split('=')[0].rstrip('!')} " in refused.json()["message"]
    assert _names(client, filterBy="status!=Ready") == ["a100-2"]
    pools = client.get("/api/v1/node-pools", params={"filterBy": "phase==Deleted"})
    assert pools.status_code == 200 and pools.json()["nodepools"] == []
    unknown = client.get(f"/api/v1/clusters/{uuid.uuid4()}/nodes")
    assert unknown.status_code == 404


def test_a_cordoned_node_carries_its_taint_and_a_mig_node_its_devices(client):
    cordoned = _node(
        "cordoned",
        "default",
        unschedulable=True,
        taints=[{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}],
    )
    assert client.post(node_path(), json={"nodes": [cordoned]}).status_code == 200
    (node,) = client.get("/api/v1/nodes", params={"filterBy": "name==cordoned"}).json()["nodes"]
    assert node["taints"] == [{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]
    assert node["gpuInfo"] == {"gpuType": "NVIDIA-A100-SXM4-80GB", "gpuCount": 8}


def _telemetry(client, kind: str, headers=None, **params) -> dict:
    response = client.get(
        "/api/v1/nodes/telemetry", params={"telemetryType": kind, **params}, headers=headers
    )
    assert response.status_code == 200, response.text
    return response.json()


def _by_group(body: dict) -> dict:
    return {
        tuple(g["value"] for g in item.get("groups", ())): float(item["value"])
        for item in body["values"]
    }


def test_telemetry_counts_capacity_and_allocation(client, fleet):
    pool = {"groupBy": "ClusterId,Nodepool"}
    total = _by_group(_telemetry(client, "TOTAL_GPUS", **pool))
    allocated = _by_group(_telemetry(client, "ALLOCATED_GPUS", **pool))
    free = _by_group(_telemetry(client, "FREE_GPUS", **pool))
    assert total[(CLUSTER_ID, "a100")] == 32 and total[(OTHER, "l40s")] == 8
    assert allocated[(CLUSTER_ID, "a100")] == 6 and allocated[(OTHER, "l40s")] == 4
    for key in total:
        assert free[key] + allocated[key] == total[key]
    per_node = _by_group(_telemetry(client, "ALLOCATED_GPUS", groupBy="Node"))
    assert per_node[("a100-0",)] == 5 and per_node[("a100-2",)] == 0
    cluster = {"clusterId": CLUSTER_ID}
    assert _by_group(_telemetry(client, "READY_GPU_NODES", **cluster)) == {(): 2.0}
    assert _by_group(_telemetry(client, "TOTAL_GPU_NODES", **cluster)) == {(): 4.0}
    assert _by_group(_telemetry(client, "FULLY_FREE_GPU_NODES", **cluster)) == {(): 0.0}
    assert _by_group(_telemetry(client, "ALLOCATED_CPU_CORES", **cluster)) == {(): 6.0}
    assert _by_group(_telemetry(client, "TOTAL_CPU_CORES", **cluster)) == {(): 480.0}
    memory = _by_group(_telemetry(client, "ALLOCATED_CPU_MEMORY_BYTES", **cluster))
    assert memory == {(): 3 * 4.0 * 2**30}
    gpu_memory = _by_group(_telemetry(client, "TOTAL_GPU_MEMORY_BYTES", clusterId=OTHER))
    assert gpu_memory == {(): 8 * 48.0 * 2**30}
    names = _telemetry(client, "TOTAL_GPUS", groupBy="ClusterId")["values"][0]["groups"][0]
    assert names["key"] == "ClusterId" and "name" in names


def _usage(workload_id: str, kind: str, value: float, at: datetime, gpu: int | None = None):
    sample = {"workloadId": workload_id, "type": kind, "timestamp": at.isoformat(), "value": value}
    return sample | ({"labels": {"gpu": str(gpu)}} if gpu is not None else {})


def test_used_figures_add_up_the_latest_samples_of_the_workloads_on_each_node(client, fleet):
    # The first workload holds a pod on a100-0 and one on a100-1: half its use on each.
    first, second = fleet["workloads"][:2]
    now = datetime.now(UTC).replace(microsecond=0)
    earlier = now - timedelta(minutes=1)
    gib = 2**30
    samples = [
        # GPU memory is reported per GPU: the latest time's GPUs add up.
        _usage(first, "GPU_MEMORY_USAGE_BYTES", 5 * gib, earlier, gpu=0),
        _usage(first, "GPU_MEMORY_USAGE_BYTES", 10 * gib, now, gpu=0),
        _usage(first, "GPU_MEMORY_USAGE_BYTES", 30 * gib, now, gpu=1),
        # Or as one total, which then stands for all of them.
        _usage(second, "GPU_MEMORY_USAGE_BYTES", 8 * gib, now),
        _usage(first, "CPU_USAGE_CORES", 3.0, now),
        _usage(second, "CPU_USAGE_CORES", 1.5, earlier),
    ]
    response = client.post("/api/v1/ingest/metrics", json={"samples": samples})
    assert response.status_code == 200, response.text
    by_node = {"groupBy": "Node", "clusterId": CLUSTER_ID}
    gpu_memory = _by_group(_telemetry(client, "USED_GPU_MEMORY_BYTES", **by_node))
    # a100-0: half of the first (20 GiB) and the second's running pod (8 GiB, its other pod
    # has finished); a100-1: the first's other half.
    assert gpu_memory[("a100-0",)] == 28 * gib
    assert gpu_memory[("a100-1",)] == 20 * gib
    cores = _by_group(_telemetry(client, "USED_CPU_CORES", **by_node))
    assert cores[("a100-0",)] == 1.5 + 1.5
    assert cores[("a100-1",)] == 1.5
    total = _by_group(_telemetry(client, "USED_GPU_MEMORY_BYTES", clusterId=CLUSTER_ID))
    assert total == {(): 48 * gib}
    # A use shared among pods is still whole bytes.
    odd = [_usage(first, "CPU_MEMORY_USAGE_BYTES", 1000.6, now)]
    assert client.post("/api/v1/ingest/metrics", json={"samples": odd}).status_code == 200
    memory = _telemetry(client, "USED_CPU_MEMORY_BYTES", **by_node)["values"]
    shares = {v["groups"][0]["value"]: v["value"] for v in memory}
    assert (shares["a100-0"], shares["a100-1"]) == ("500", "500")


def test_the_used_figures_read_each_workloads_samples_once(engine, fleet):
    """Each holding workload's latest sample time is found once, over its own range of the
    samples' primary key: no subquery run again per sample (a type reported per GPU took
    seconds on a demo's day of samples), no scan of every workload's samples."""
    from gpufleet.query.scope import UNRESTRICTED
    from gpufleet.store.node_telemetry import (
        _USED_SAMPLES,
        NodeGroupBy,
        NodeTelemetryQuery,
        node_telemetry_statement,
    )

    sqlite = engine.dialect.name == "sqlite"
    explain = "EXPLAIN QUERY PLAN" if sqlite else "EXPLAIN (COSTS OFF)"
    for kind in _USED_SAMPLES:
        query = NodeTelemetryQuery(kind, UNRESTRICTED, (NodeGroupBy.NODE,))
        statement = node_telemetry_statement(query, datetime.now(UTC)).compile(
            dialect=engine.dialect, compile_kwargs={"literal_binds": True}
        )
        with engine.connect() as conn:
            plan = "\n".join(str(row[-1]) for row in conn.exec_driver_sql(f"{explain} {statement}"))
        if sqlite:
            assert "CORRELATED" not in plan, plan
            assert re.search(r"SEARCH metric_samples USING PRIMARY KEY \(workload_id=?", plan), plan
            assert "SCAN metric_samples" not in plan, plan
        else:
            assert "SubPlan" not in plan, plan


def test_the_used_figures_read_samples_as_the_metric_catalogue_reports_them():
    from gpufleet.metrics.types import MetricKind, WorkloadMetricType, metric_info
    from gpufleet.store.node_telemetry import _USED_SAMPLES

    for metric_type, per_gpu in _USED_SAMPLES.values():
        kind = metric_info(WorkloadMetricType(metric_type)).kind
        assert per_gpu == (kind is MetricKind.PER_GPU), metric_type


def test_every_telemetry_type_answers_in_the_reference_shape(client, fleet):
    validators = ReferenceValidators(load_reference("runai-adjacent-openapi.json"))
    kinds = validators.document["components"]["schemas"]["NodeTelemetryType"]["enum"]
    for kind in kinds:
        body = _telemetry(client, kind, groupBy="Nodepool")
        assert body["type"] == kind
        assert list(validators.response("/api/v1/nodes/telemetry").iter_errors(body)) == []
    bad = client.get(
        "/api/v1/nodes/telemetry", params={"telemetryType": "TOTAL_GPUS", "groupBy": "Project"}
    )
    assert bad.status_code == 400


def test_node_pools_follow_their_nodes(client, fleet):
    pools = client.get("/api/v1/node-pools", params={"filterBy": f"clusterId=={CLUSTER_ID}"})
    by_name = {p["name"]: p for p in pools.json()["nodepools"]}
    assert set(by_name) == {"a100", "default"}
    assert by_name["a100"]["status"]["nodes"] == ["a100-0", "a100-1", "a100-2", "a100-3"]
    assert by_name["a100"]["phase"] == "Ready" and by_name["default"]["isDefault"] is True
    assert client.get("/api/v1/node-pools/count").json() == {"count": 4}
    ready = client.get("/api/v1/node-pools", params={"filterBy": "phase==Ready", "sortBy": "name"})
    assert [p["name"] for p in ready.json()["nodepools"]] == ["a100", "default", "l40s"]
    # A pool whose only node goes away is Empty.
    gone = client.post(node_path(OTHER), json={"deletedIds": [fleet["b"][0]["id"]]})
    assert gone.json()["deleted"] == 1
    l40s = client.get("/api/v1/node-pools", params={"filterBy": "name==l40s"}).json()
    assert l40s["nodepools"][0]["phase"] == "Empty"
    assert client.get(f"/api/v1/node-pools/{uuid.uuid4()}").status_code == 404


def test_a_scoped_caller_sees_the_nodes_of_its_clusters_only(client, fleet):
    project = report(cluster_id=OTHER, projectId="scoped-p", departmentId="scoped-d")
    assert client.post(ingest_path(OTHER), json=batch(project)).status_code == 200
    viewer = key_with_role(client, "viewer", "project", "scoped-p")
    assert _names(client, headers=viewer) == ["l40s-0"]
    assert client.get("/api/v1/nodes/count", headers=viewer).json() == {"count": 1}
    assert client.get(f"/api/v1/clusters/{CLUSTER_ID}/nodes", headers=viewer).status_code == 404
    total = _telemetry(client, "TOTAL_GPUS", headers=viewer)
    assert _by_group(total) == {(): 8.0}
    hidden = client.get(
        "/api/v1/nodes/telemetry",
        params={"telemetryType": "TOTAL_GPUS", "clusterId": CLUSTER_ID},
        headers=viewer,
    )
    assert hidden.status_code == 404
    pools = client.get("/api/v1/node-pools", headers=viewer).json()["nodepools"]
    assert {p["clusterId"] for p in pools} == {OTHER}
    nobody = key_with_role(client, "cluster-agent", "cluster", CLUSTER_ID)
    assert client.get("/api/v1/nodes", headers=nobody).status_code == 403


def test_node_pool_metrics_are_the_clusters_figures_for_the_pool(client, engine, fleet):
    now = datetime.now(UTC)
    with engine.begin() as conn:
        sample_inventory(conn, now, 60)
    window = {
        "start": (now - timedelta(minutes=5)).isoformat(),
        "end": (now + timedelta(minutes=5)).isoformat(),
        "numberOfSamples": 1,
    }
    path = f"/api/v1/clusters/{CLUSTER_ID}/nodepools/a100/metrics"
    response = client.get(path, params={**window, "metricType": "TOTAL_GPU,ALLOCATED_GPU"})
    assert response.status_code == 200, response.text
    by_type = {m["type"]: m for m in response.json()["measurements"]}
    assert [v["value"] for v in by_type["TOTAL_GPU"]["values"]] == ["32"]
    assert [v["value"] for v in by_type["ALLOCATED_GPU"]["values"]] == ["6"]
    assert by_type["TOTAL_GPU"]["labels"] == {"nodepool": "a100"}
    validators = ReferenceValidators(load_reference("runai-adjacent-openapi.json"))
    reference = "/api/v1/clusters/{clusterUuid}/nodepools/{nodepoolName}/metrics"
    assert list(validators.response(reference).iter_errors(response.json())) == []
    partial = client.get(path, params={**window, "metricType": "GPU_UTILIZATION"})
    assert partial.status_code == 207
    missing = client.get(
        f"/api/v1/clusters/{CLUSTER_ID}/nodepools/nope/metrics",
        params={**window, "metricType": "TOTAL_GPU"},
    )
    assert missing.status_code == 404
