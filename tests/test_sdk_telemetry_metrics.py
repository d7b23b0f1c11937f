"""Telemetry and metrics through the official Run:ai SDK against a real ``gpufleet serve --demo``.

Expectations come from the same server's list endpoint (read with the SDK too), so the test
checks that the endpoints agree with each other on the demo's data, not against constants.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from runai.api_client import ApiClient
from runai.configuration import Configuration
from runai.exceptions import ApiException
from runai.runai_client import RunaiClient

from tests.support.databases import ADMIN_ID, ADMIN_SECRET
from tests.support.server import ServerProcess

pytestmark = pytest.mark.e2e

DEMO_WORKLOADS = 400


@pytest.fixture(scope="module")
def server(module_database_url: str, tmp_path_factory) -> Iterator[ServerProcess]:
    with ServerProcess(
        module_database_url,
        demo=True,
        demo_workloads=DEMO_WORKLOADS,
        log_dir=tmp_path_factory.mktemp("server"),
    ) as process:
        yield process


@pytest.fixture(scope="module")
def api(server: ServerProcess):
    config = Configuration(
        client_id=ADMIN_ID, client_secret=ADMIN_SECRET, runai_base_url=server.base_url
    )
    with RunaiClient(ApiClient(config)) as client:
        yield client.workloads.workloads


@pytest.fixture(scope="module")
def listed(api) -> list[dict]:
    items, offset = [], 0
    while True:
        body = api.get_workloads(offset=offset, limit=500).data
        items += body["workloads"]
        if "next" not in body:
            return items
        offset = body["next"]


def test_telemetry_agrees_with_the_listing(api, listed):
    count = api.get_workloads_telemetry(telemetry_type="WORKLOADS_COUNT").data
    assert count["type"] == "WORKLOADS_COUNT"
    assert int(count["values"][0]["value"]) == len(listed) == api.count_workloads().data["count"]

    grouped = api.get_workloads_telemetry(
        telemetry_type="GPU_ALLOCATION", group_by=["DepartmentId", "Phase"]
    ).data
    expected: dict[tuple[str, str], float] = defaultdict(float)
    for item in listed:
        gpu = (item.get("allocatedResources") or {}).get("gpu") or 0.0
        expected[(item["departmentId"], item["phase"])] += gpu
    got = {
        (v["groups"][0]["value"], v["groups"][1]["value"]): float(v["value"])
        for v in grouped["values"]
    }
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=1e-6)
    names = {v["groups"][0]["name"] for v in grouped["values"]}
    assert names == {item["departmentName"] for item in listed}


def test_telemetry_filters_through_the_sdk(api, listed):
    running = [w for w in listed if w["phase"] in ("Running", "Pending")]
    cluster = running[0]["clusterId"]
    body = api.get_workloads_telemetry(
        telemetry_type="WORKLOADS_COUNT",
        cluster_id=cluster,
        filter_by_phases=["Running", "Pending"],
        group_by=["Phase"],
    ).data
    got = {v["groups"][0]["value"]: int(v["value"]) for v in body["values"]}
    expected: dict[str, int] = defaultdict(int)
    for item in running:
        if item["clusterId"] == cluster:
            expected[item["phase"]] += 1
    assert got == expected
    with pytest.raises(ApiException) as caught:
        api.get_workloads_telemetry(telemetry_type="WORKLOADS_COUNT", group_by=["A", "B", "C"])
    assert caught.value.status == 400


def _with_history(api, listed) -> list[dict]:
    """The first live inference workload with GPU utilisation samples in the last hour."""
    now = datetime.now(UTC)
    for item in listed:
        if item["phase"] != "Running" or item["type"] != "Inference":
            continue
        body = api.get_workload_metrics(
            item["id"], ["GPU_UTILIZATION"], now - timedelta(hours=1), now, 1
        ).data
        if any(m["values"] for m in body["measurements"]):
            return [item]
    return []


def test_demo_history_reads_through_the_sdk(api, listed):
    workloads = _with_history(api, listed)
    assert workloads, "the demo should give some inference workloads a metric history"
    item = workloads[0]
    now = datetime.now(UTC)
    types = [
        "GPU_UTILIZATION",
        "CPU_REQUEST_CORES",
        "POD_COUNT",
        "NIM_TIME_TO_FIRST_TOKEN_SECONDS",
        "NIM_E2E_REQUEST_LATENCY_SECONDS_PERCENTILES",
    ]
    body = api.get_workload_metrics(item["id"], types, now - timedelta(hours=6), now, 36).data
    utilisation = [m for m in body["measurements"] if m["type"] == "GPU_UTILIZATION"]
    assert utilisation and all(m["labels"]["gpu"].isdigit() for m in utilisation)
    for measurement in utilisation:
        assert len(measurement["values"]) == 36
        assert all(0 <= float(v["value"]) <= 100 for v in measurement["values"])
    (cpu,) = [m for m in body["measurements"] if m["type"] == "CPU_REQUEST_CORES"]
    requested = item["workloadRequestedResources"]["cpu"]["request"]
    assert {float(v["value"]) for v in cpu["values"]} == {float(requested)}
    histograms = {h["type"]: h["values"] for h in body["histogram"]}
    buckets = histograms["NIM_TIME_TO_FIRST_TOKEN_SECONDS"]
    assert len(buckets) == 36
    for point in buckets:
        counts = [float(point["data"][key]) for key in point["data"]]
        assert counts == sorted(counts) and "+Inf" in point["data"]
    for point in histograms["NIM_E2E_REQUEST_LATENCY_SECONDS_PERCENTILES"]:
        p50, p90, p99 = (float(point["data"][k]) for k in ("p50", "p90", "p99"))
        assert 0 < p50 <= p90 <= p99


def test_idle_gpu_fields_and_metric_errors_through_the_sdk(api, listed):
    item = listed[0]
    now = datetime.now(UTC)
    with pytest.raises(ApiException) as caught:
        api.get_workload_metrics(item["id"], ["GPU_UTILIZATION"], now, now - timedelta(hours=1))
    assert caught.value.status == 400
    with pytest.raises(ApiException) as caught:
        api.get_workload_metrics(
            "7f0c2f3e-8a2b-4d5e-9f10-111213141516",
            ["GPU_UTILIZATION"],
            now - timedelta(hours=1),
            now,
        )
    assert caught.value.status == 404
    idle = api.count_workloads(filter_by=["idleAllocatedGpus>=0.001"]).data["count"]
    assert idle == sum(1 for w in listed if (w.get("idleAllocatedGpus") or 0) >= 0.001)
