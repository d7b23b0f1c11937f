"""The official SDK reads a workload's history, events, pods and pod metrics from a real
``gpufleet serve``.

The data goes in through the ingest API of the same process, as a cluster agent sends it, so
every answer is checked against what was sent.
"""

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

from tests.support.agent_reports import CLUSTER_ID, at, batch, ingest_path, report
from tests.support.databases import ADMIN_ID, ADMIN_SECRET
from tests.support.server import ServerProcess
from tests.test_workload_details import event

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(module_database_url: str, tmp_path_factory) -> Iterator[ServerProcess]:
    with ServerProcess(module_database_url, log_dir=tmp_path_factory.mktemp("server")) as process:
        yield process


@pytest.fixture(scope="module")
def sent(server: ServerProcess) -> dict:
    """One workload with two pods (one gone), three phases and four events, ingested."""
    workload_id = str(uuid.uuid4())
    pods = [
        {"name": f"sdk-{n}", "uid": str(uuid.uuid4()), "phase": "Running", "nodeName": "node-a"}
        for n in range(2)
    ]
    reports = [
        report(workload_id, observed=0, phase="Pending", pods=pods),
        report(workload_id, observed=10, phase="Running", pods=pods),
        report(workload_id, observed=20, phase="Running", pods=pods[:1]),
    ]
    events = [event(workload_id, s, reason=f"R{s}") for s in (3, 6, 9, 12)]
    with httpx.Client(base_url=server.base_url, headers=server.auth_headers()) as http:
        for item in reports:
            assert http.post(ingest_path(), json=batch(item)).status_code == 200
        response = http.post(
            f"/api/v1/ingest/clusters/{CLUSTER_ID}/events", json={"events": events}
        )
        assert response.json() == {"accepted": 4, "ignored": 0}
    return {"id": workload_id, "pods": pods, "events": events}


@pytest.fixture(scope="module")
def sdk(server: ServerProcess) -> Iterator[RunaiClient]:
    config = Configuration(
        client_id=ADMIN_ID, client_secret=ADMIN_SECRET, runai_base_url=server.base_url
    )
    with RunaiClient(ApiClient(config)) as client:
        yield client


def test_history_and_events_through_the_sdk(sdk, sent):
    events_api = sdk.workloads.events
    history = events_api.get_workload_history(sent["id"], limit=3).data
    assert history["next"] == 3
    rest = events_api.get_workload_history(sent["id"], offset=3).data
    kinds = [r["meta"]["type"] for r in history["records"] + rest["records"]]
    assert kinds.count("PhaseUpdate") == 2 and kinds.count("Event") == 4
    times = [r["meta"]["creationTimestamp"] for r in history["records"] + rest["records"]]
    assert times == sorted(times, reverse=True)
    events = events_api.get_workload_events(sent["id"], sort_order="asc").data["events"]
    assert [e["reason"] for e in events] == ["R3", "R6", "R9", "R12"]
    assert [e["createdAt"] for e in events] == [at(s) for s in (3, 6, 9, 12)]


def test_pods_through_the_sdk(sdk, sent):
    pods_api = sdk.workloads.pods
    live = pods_api.get_workload_pods(sent["id"]).data["pods"]
    assert [p["name"] for p in live] == ["sdk-0"]
    gone = pods_api.get_workload_pods(sent["id"], deleted=True).data["pods"]
    assert [(p["name"], p["deletedAt"]) for p in gone] == [("sdk-1", at(20))]
    listed = pods_api.list_pods(
        filter_by=[f"workloadId=={sent['id']}"], sort_by="nodeName", verbosity="full"
    ).data["pods"]
    assert [(p["id"], p["workloadName"]) for p in listed] == [
        (sent["pods"][0]["uid"], f"job-{sent['id'][:8]}")
    ]
    assert pods_api.count_pods(filter_by=["nodeName==node-a"]).data == {"count": 1}
    with pytest.raises(ApiException) as refused:
        pods_api.list_pods(sort_by="name")
    assert refused.value.status == 400


def test_pod_metrics_through_the_sdk(server, sdk, sent):
    pod = sent["pods"][0]["uid"]
    end = datetime.now(UTC).replace(microsecond=0)
    samples = [
        {
            "workloadId": sent["id"],
            "podId": pod,
            "type": metric_type,
            "timestamp": (end - timedelta(minutes=minutes)).isoformat(),
            "value": value,
            **({"labels": {"gpu": "1"}} if metric_type.endswith("_PER_GPU") else {}),
        }
        for metric_type, minutes, value in (
            ("GPU_SM_ACTIVITY_PER_GPU", 5, 40),
            ("GPU_SM_ACTIVITY_PER_GPU", 2, 60),
            ("GPU_MEMORY_USAGE_BYTES", 3, 2**30),
        )
    ]
    with httpx.Client(base_url=server.base_url, headers=server.auth_headers()) as http:
        response = http.post("/api/v1/ingest/metrics", json={"samples": samples})
        assert response.status_code == 200, response.text
    body = sdk.workloads.pods.get_workload_pod_metrics(
        sent["id"],
        pod,
        ["GPU_SM_ACTIVITY_PER_GPU", "GPU_MEMORY_USAGE_BYTES", "CPU_USAGE_CORES"],
        end - timedelta(minutes=6),
        end,
        number_of_samples=2,
    ).data
    by_type = {m["type"]: m for m in body["measurements"]}
    assert by_type["GPU_SM_ACTIVITY_PER_GPU"]["labels"] == {"gpu": "1"}
    assert [v["value"] for v in by_type["GPU_SM_ACTIVITY_PER_GPU"]["values"]] == ["40", "60"]
    assert [v["value"] for v in by_type["GPU_MEMORY_USAGE_BYTES"]["values"]] == [str(2**30)]
    assert by_type["CPU_USAGE_CORES"]["values"] == []
    with pytest.raises(ApiException) as refused:
        sdk.workloads.pods.get_workload_pod_metrics(
            sent["id"], pod, ["GPU_SWAP_MEMORY_BYTES_PER_GPU"], end - timedelta(minutes=6), end
        )
    assert refused.value.status == 400
