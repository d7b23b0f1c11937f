"""``GET /api/v1/nodes/{nodeId}/metrics`` on the embedded store: a node's series are its pods'.

Pod samples go in through the ingest API as a producer sends them; the node's per-GPU series,
totals and utilisations come back computed from the pods bound to it (and only those), in the
reference shape. Types without a source, bad input, unknown nodes and scope are covered too.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

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
NOW = datetime.now(UTC).replace(second=0, microsecond=0)
RANGE = {
    "start": (NOW - timedelta(minutes=10)).isoformat(),
    "end": NOW.isoformat(),
    "numberOfSamples": 2,
}
NODE_ID = str(uuid.uuid5(uuid.NAMESPACE_DNS, "metrics-a100-0"))
GIB = 2**30


def _pod(node: str) -> dict:
    return {"name": f"pod-{uuid.uuid4().hex[:6]}", "uid": str(uuid.uuid4()), "phase": "Running",
            "nodeName": node, "allocatedResources": {"gpu": 1.0}}  # fmt: skip


def _samples(workload_id: str, pod: dict, metric_type: str, values: dict) -> list[dict]:
    """Two samples a minute apart per series (one per interval of RANGE: minutes 8 and 3)."""
    return [
        {
            "workloadId": workload_id,
            "podId": pod["uid"],
            "type": metric_type,
            "timestamp": (NOW - timedelta(minutes=minutes)).isoformat(),
            "value": value,
            **({"labels": {"gpu": gpu}} if gpu is not None else {}),
        }
        for gpu, value in values.items()
        for minutes in (8, 3)
    ]


@pytest.fixture
def fleet(client):
    """Node a100-0 (8 GPUs of 80 GiB, 96 cores, 1 TiB) runs two pods, a100-1 one; cluster
    OTHER has its own node."""
    nodes = [
        node_report(NODE_ID, name="a100-0", nodePool="a100"),
        node_report(name="a100-1", nodePool="a100"),
    ]
    assert client.post(node_path(), json={"nodes": nodes}).json()["accepted"] == 2
    other = node_report(name="l40s-0", nodePool="l40s")
    assert client.post(node_path(OTHER), json={"nodes": [other]}).json()["accepted"] == 1
    train, serve, elsewhere = _pod("a100-0"), _pod("a100-0"), _pod("a100-1")
    items = [
        report(phase="Running", pods=[train]),
        report(phase="Running", pods=[serve]),
        report(phase="Running", pods=[elsewhere]),
    ]
    for item in items:
        assert client.post(ingest_path(), json=batch(item)).status_code == 200
    (t, s, e) = (item["id"] for item in items)
    samples = [
        *_samples(t, train, "GPU_UTILIZATION_PER_GPU", {"0": 80, "1": 60}),
        *_samples(s, serve, "GPU_UTILIZATION_PER_GPU", {"2": 30}),
        *_samples(e, elsewhere, "GPU_UTILIZATION_PER_GPU", {"0": 99}),
        *_samples(t, train, "GPU_MEMORY_USAGE_BYTES_PER_GPU", {"0": 40 * GIB, "1": 20 * GIB}),
        *_samples(s, serve, "GPU_MEMORY_USAGE_BYTES_PER_GPU", {"2": 8 * GIB}),
        *_samples(t, train, "GPU_SM_ACTIVITY_PER_GPU", {"0": 50, "1": 25}),
        *_samples(t, train, "CPU_USAGE_CORES", {None: 12}),
        *_samples(s, serve, "CPU_USAGE_CORES", {None: 12}),
        *_samples(e, elsewhere, "CPU_USAGE_CORES", {None: 40}),
        *_samples(t, train, "CPU_MEMORY_USAGE_BYTES", {None: 256 * GIB}),
    ]
    response = client.post("/api/v1/ingest/metrics", json={"samples": samples})
    assert response.status_code == 200, response.text
    return {"other": other}


def _read(client, types: str, node_id: str = NODE_ID, status: int = 200, headers=None):
    response = client.get(
        f"/api/v1/nodes/{node_id}/metrics",
        params={**RANGE, "metricType": types},
        headers=headers,
    )
    assert response.status_code == status, response.text
    return response.json()


def _series(body: dict) -> dict:
    """``(type, gpu or None) -> [values]``."""
    return {
        (m["type"], (m["labels"] or {}).get("gpu")): [v["value"] for v in m["values"]]
        for m in body["measurements"]
    }


def test_per_gpu_series_are_the_node_pods_gpus(client, fleet):
    body = _read(client, "GPU_UTILIZATION_PER_GPU,GPU_MEMORY_UTILIZATION_PER_GPU")
    assert _series(body) == {
        ("GPU_UTILIZATION_PER_GPU", "0"): ["80", "80"],
        ("GPU_UTILIZATION_PER_GPU", "1"): ["60", "60"],
        ("GPU_UTILIZATION_PER_GPU", "2"): ["30", "30"],
        ("GPU_MEMORY_UTILIZATION_PER_GPU", "0"): ["50", "50"],
        ("GPU_MEMORY_UTILIZATION_PER_GPU", "1"): ["25", "25"],
        ("GPU_MEMORY_UTILIZATION_PER_GPU", "2"): ["10", "10"],
    }
    validators = ReferenceValidators(load_reference("runai-adjacent-openapi.json"))
    errors = list(validators.response("/api/v1/nodes/{nodeId}/metrics").iter_errors(body))
    assert errors == [], errors[:3]


def test_totals_add_up_the_gpus_and_pods_and_divide_by_capacity(client, fleet):
    body = _read(
        client,
        "GPU_UTILIZATION,GPU_MEMORY_USAGE_BYTES,GPU_MEMORY_UTILIZATION,CPU_USAGE_CORES,"
        "CPU_UTILIZATION,CPU_MEMORY_USAGE_BYTES,CPU_MEMORY_UTILIZATION,GPU_SM_ACTIVITY_PER_GPU",
    )
    assert _series(body) == {
        # Eight GPUs, three reporting: (80 + 60 + 30) / 8.
        ("GPU_UTILIZATION", None): ["21.25", "21.25"],
        ("GPU_MEMORY_USAGE_BYTES", None): [str(68 * GIB)] * 2,
        ("GPU_MEMORY_UTILIZATION", None): ["10.625", "10.625"],
        # Both pods of a100-0, not the one of a100-1; 24 of 96 cores.
        ("CPU_USAGE_CORES", None): ["24", "24"],
        ("CPU_UTILIZATION", None): ["25", "25"],
        ("CPU_MEMORY_USAGE_BYTES", None): [str(256 * GIB)] * 2,
        ("CPU_MEMORY_UTILIZATION", None): ["25", "25"],
        ("GPU_SM_ACTIVITY_PER_GPU", "0"): ["50", "50"],
        ("GPU_SM_ACTIVITY_PER_GPU", "1"): ["25", "25"],
    }


def test_a_type_without_samples_has_no_values(client, fleet):
    body = _read(client, "GPU_TENSOR_ACTIVITY_PER_GPU")
    assert body == {
        "measurements": [{"type": "GPU_TENSOR_ACTIVITY_PER_GPU", "labels": None, "values": []}]
    }


def test_types_without_a_source_and_bad_input_are_400(client, fleet):
    refused = _read(client, "GPU_UTILIZATION,GPU_ALLOCATION_PER_GPU", status=400)
    assert "GPU_ALLOCATION_PER_GPU" in refused["message"]
    assert "embedded" in refused["message"]
    assert "GPU_UTILIZATION," not in refused["message"]
    assert "NOT_A_TYPE" in _read(client, "NOT_A_TYPE", status=400)["message"]
    assert "nodeId" in _read(client, "GPU_UTILIZATION", node_id="not-a-uuid", status=400)["message"]
    _read(client, "GPU_UTILIZATION", node_id=str(uuid.uuid4()), status=404)


def test_a_scoped_caller_reads_the_nodes_of_its_clusters_only(client, fleet):
    project = report(cluster_id=OTHER, projectId="scoped-p", departmentId="scoped-d")
    assert client.post(ingest_path(OTHER), json=batch(project)).status_code == 200
    viewer = key_with_role(client, "viewer", "project", "scoped-p")
    # A node of another cluster is unknown to the caller; one of its own cluster is shared
    # capacity, read like the node list and telemetry.
    _read(client, "CPU_USAGE_CORES", headers=viewer, status=404)
    body = _read(client, "CPU_USAGE_CORES", node_id=fleet["other"]["id"], headers=viewer)
    assert body["measurements"][0]["values"] == []
    nobody = key_with_role(client, "cluster-agent", "cluster", CLUSTER_ID)
    _read(client, "CPU_USAGE_CORES", headers=nobody, status=403)
