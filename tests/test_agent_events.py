"""Kubernetes events through the agent: kept for tracked workloads, coalesced, sent in batches.

The collector is tested directly; the whole path runs a real agent process against the
Kubernetes emulator and a real server.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from gpufleet.agent.k8s_events import EventCollector, ingest_event
from gpufleet.agent.kinds import KINDS
from tests.support.k8s_emulator import KubernetesEmulator, Resource, resources_from
from tests.test_agent_integration import (
    CONFIGMAP_RESOURCE,
    NAMESPACE,
    WAIT,
    Records,
    agent_for,  # noqa: F401 - a fixture
    job,
    pod_of,
    server,  # noqa: F401 - a fixture
)

EVENT_RESOURCE = Resource("", "v1", "Event", "events")


def k8s_event(pod: dict, name: str, *, reason: str, at: str, count: int = 1) -> dict:
    meta = pod["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": meta["namespace"], "uid": str(uuid.uuid4())},
        "involvedObject": {
            "kind": "Pod",
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta["uid"],
        },
        "type": "Warning",
        "reason": reason,
        "message": "0/3 nodes are available: 3 Insufficient nvidia.com/gpu.",
        "source": {"component": "default-scheduler"},
        "firstTimestamp": at,
        "lastTimestamp": at,
        "count": count,
    }


def test_the_collector_keeps_the_latest_report_of_tracked_workloads_only():
    pod_uid, workload = str(uuid.uuid4()), str(uuid.uuid4())
    collector = EventCollector({pod_uid: workload}.get)
    pod = {"metadata": {"name": "p-0", "namespace": "ns", "uid": pod_uid}}
    first = k8s_event(pod, "e", reason="FailedScheduling", at="2026-01-01T00:00:00Z")
    repeat = {**first, "lastTimestamp": "2026-01-01T00:05:00Z", "count": 6}
    stranger = k8s_event(
        {"metadata": {"name": "x", "namespace": "ns", "uid": str(uuid.uuid4())}},
        "other",
        reason="Pulled",
        at="2026-01-01T00:00:00Z",
    )
    assert collector.observe(first) and collector.observe(repeat)
    assert collector.observe(first)  # an older report of the same event changes nothing
    assert not collector.observe(stranger)
    assert collector.take(lambda _: False) == [] and len(collector) == 1
    [sent] = collector.take(lambda known: known == workload)
    assert (sent["createdAt"], sent["count"], sent["workloadId"]) == (
        "2026-01-01T00:05:00Z",
        6,
        workload,
    )
    assert len(collector) == 0 and collector.dropped == 1
    series = {**first, "series": {"count": 9, "lastObservedTime": "2026-01-01T01:00:00Z"}}
    assert ingest_event(series, workload)["count"] == 9
    assert ingest_event({**first, "metadata": {"uid": "nope"}}, workload) is None


@pytest.fixture
def emulator() -> Iterator[KubernetesEmulator]:
    resources = [*resources_from(KINDS), CONFIGMAP_RESOURCE, EVENT_RESOURCE]
    served = KubernetesEmulator(resources, installed=resources, bookmark_interval=0.5).start()
    yield served
    served.stop()


def _events(records: Records, workload_id: str) -> list[dict]:
    response = httpx.get(
        f"{records.base_url}/api/v1/workloads/{workload_id}/events", headers=records.headers
    )
    return response.json().get("events", []) if response.status_code == 200 else []


def test_events_of_a_pod_that_cannot_be_scheduled_arrive_as_the_workloads(
    emulator,
    agent_for,  # noqa: F811 - the fixture imported above
    server,  # noqa: F811
):
    records = Records(server.base_url)
    agent = agent_for(server.base_url)
    owner = emulator.create(job("unschedulable"))
    pod = emulator.create(pod_of(owner, "unschedulable-0"))
    workload_id = owner["metadata"]["uid"]
    records.wait(workload_id, lambda r: r["phase"] == "Pending", agent)
    created = emulator.create(
        k8s_event(pod, "unschedulable-0.1", reason="FailedScheduling", at="2026-01-01T00:00:00Z")
    )
    emulator.create(
        k8s_event(
            {"metadata": {"name": "ghost", "namespace": NAMESPACE, "uid": str(uuid.uuid4())}},
            "ghost.1",
            reason="Pulled",
            at="2026-01-01T00:00:00Z",
        )
    )
    # Kubernetes folds repeats into the same object: a later time and a higher count.
    emulator.patch(
        "v1",
        "Event",
        NAMESPACE,
        created["metadata"]["name"],
        {"lastTimestamp": "2026-01-01T00:10:00Z", "count": 11},
    )
    deadline = time.monotonic() + WAIT
    events: list[dict] = []
    while time.monotonic() < deadline:
        events = _events(records, workload_id)
        if events and events[0]["createdAt"] == "2026-01-01T00:10:00.000Z":
            break
        time.sleep(0.2)
    assert [(e["reason"], e["createdAt"]) for e in events] == [
        ("FailedScheduling", "2026-01-01T00:10:00.000Z")
    ], agent.log()[-2000:]
    assert events[0]["involvedObject"]["uid"] == pod["metadata"]["uid"]
    assert events[0]["id"] == created["metadata"]["uid"]
