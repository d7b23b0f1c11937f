"""The official SDK reads the nodes, node-pools and node-telemetry paths from a real
``gpufleet serve``, fed through the ingest API as a cluster agent feeds it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from runai.api_client import ApiClient
from runai.configuration import Configuration
from runai.exceptions import ApiException
from runai.runai_client import RunaiClient

from tests.support.agent_reports import (
    CLUSTER_ID,
    batch,
    ingest_path,
    node_path,
    node_report,
    report,
)
from tests.support.databases import ADMIN_ID, ADMIN_SECRET
from tests.support.server import ServerProcess

pytestmark = pytest.mark.e2e
NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(scope="module")
def server(module_database_url: str, tmp_path_factory) -> Iterator[ServerProcess]:
    with ServerProcess(module_database_url, log_dir=tmp_path_factory.mktemp("server")) as process:
        yield process


@pytest.fixture(scope="module")
def sent(server: ServerProcess) -> dict:
    """Three a100 nodes (one NotReady) and one workload holding 3 GPUs on the first."""
    nodes = [
        node_report(name=f"sdk-node-{n}", nodePool="a100", status=status)
        for n, status in enumerate(("Ready", "Ready", "NotReady"))
    ]
    pod = {
        "name": "sdk-pod",
        "uid": str(uuid.uuid4()),
        "nodeName": "sdk-node-0",
        "phase": "Running",
        "allocatedResources": {"gpu": 3.0},
    }
    workload = report(phase="Running", pods=[pod])
    # Two minutes of CPU use of the pod, for the node's metrics.
    samples = [
        {"workloadId": workload["id"], "podId": pod["uid"], "type": "CPU_USAGE_CORES",
         "timestamp": (NOW - timedelta(seconds=seconds)).isoformat(), "value": 24}
        for seconds in (90, 30)
    ]  # fmt: skip
    with httpx.Client(base_url=server.base_url, headers=server.auth_headers()) as http:
        response = http.post(node_path(), json={"nodes": nodes})
        assert response.json()["accepted"] == 3, response.text
        response = http.post(ingest_path(), json=batch(workload))
        assert response.status_code == 200, response.text
        response = http.post("/api/v1/ingest/metrics", json={"samples": samples})
        assert response.status_code == 200, response.text
    return {"nodes": nodes}


@pytest.fixture(scope="module")
def sdk(server: ServerProcess) -> Iterator[RunaiClient]:
    config = Configuration(
        client_id=ADMIN_ID, client_secret=ADMIN_SECRET, runai_base_url=server.base_url
    )
    with RunaiClient(ApiClient(config)) as client:
        yield client


def test_nodes_through_the_sdk(sdk, sent):
    nodes_api = sdk.organizations.nodes
    listed = nodes_api.get_tenant_nodes(sort_by="name", limit=2).data["nodes"]
    assert [n["name"] for n in listed] == ["sdk-node-0", "sdk-node-1"]
    assert listed[0]["gpuInfo"] == {"gpuType": "NVIDIA-A100-SXM4-80GB", "gpuCount": 8}
    assert nodes_api.count_tenant_nodes(filter_by=["status==NotReady"]).data == {"count": 1}
    in_cluster = nodes_api.get_nodes(CLUSTER_ID, filter_by=["name==sdk-node-2"]).data["nodes"]
    assert [n["status"] for n in in_cluster] == ["NotReady"]
    assert nodes_api.count_nodes(CLUSTER_ID).data == {"count": 3}
    with pytest.raises(ApiException) as unknown:
        nodes_api.get_nodes(str(uuid.uuid4()))
    assert unknown.value.status == 404


def test_node_telemetry_through_the_sdk(sdk, sent):
    nodes_api = sdk.organizations.nodes
    allocated = nodes_api.get_node_telemetry("ALLOCATED_GPUS", group_by=["Node"]).data
    by_node = {v["groups"][0]["value"]: v["value"] for v in allocated["values"]}
    assert by_node == {"sdk-node-0": "3", "sdk-node-1": "0", "sdk-node-2": "0"}
    free = nodes_api.get_node_telemetry("FREE_GPUS", cluster_id=CLUSTER_ID, nodepool_name="a100")
    assert free.data["values"] == [{"value": "21"}]
    ready = nodes_api.get_node_telemetry("READY_GPU_NODES").data["values"]
    assert ready == [{"value": "2"}]


def test_node_pools_through_the_sdk(sdk, sent):
    pools_api = sdk.organizations.node_pools
    pools = pools_api.get_nodepools(filter_by=["name==a100"]).data["nodepools"]
    (a100,) = pools
    assert a100["status"]["nodes"] == ["sdk-node-0", "sdk-node-1", "sdk-node-2"]
    assert pools_api.count_nodepools().data == {"count": 2}
    assert pools_api.get_nodepool(a100["id"]).data["name"] == "a100"


def test_node_metrics_through_the_sdk(sdk, sent):
    nodes_api = sdk.organizations.nodes
    node_id = sent["nodes"][0]["id"]
    start, end = NOW - timedelta(minutes=2), NOW
    body = nodes_api.get_node_metrics(
        node_id, ["CPU_USAGE_CORES", "CPU_UTILIZATION"], start, end, number_of_samples=2
    ).data
    by_type = {m["type"]: [v["value"] for v in m["values"]] for m in body["measurements"]}
    # 24 of the node's 96 cores, in each minute.
    assert by_type == {"CPU_USAGE_CORES": ["24", "24"], "CPU_UTILIZATION": ["25", "25"]}
    with pytest.raises(ApiException) as refused:
        nodes_api.get_node_metrics(node_id, ["GPU_OOMKILL_IDLE_COUNT_PER_GPU"], start, end)
    assert refused.value.status == 400
    with pytest.raises(ApiException) as unknown:
        nodes_api.get_node_metrics(str(uuid.uuid4()), ["CPU_USAGE_CORES"], start, end)
    assert unknown.value.status == 404
