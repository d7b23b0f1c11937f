"""The Kubernetes list/watch emulator, driven by the agent's real watcher and client."""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from kubernetes import client, config

from gpufleet.agent.health import AgentMetrics
from gpufleet.agent.kinds import BY_KEY, KINDS
from gpufleet.agent.watch import KindEvent, KindWatcher
from tests.support.k8s_emulator import KubernetesEmulator, resources_from, write_kubeconfig

POD = BY_KEY["Pod"]
PYTORCH = BY_KEY["PyTorchJob.kubeflow.org"]
WAIT = 10.0


def pod(name: str, namespace: str = "default", **status: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
        "status": {"phase": "Pending", **status},
    }


@pytest.fixture
def emulator() -> Iterator[KubernetesEmulator]:
    resources = resources_from(KINDS)
    installed = [r for r in resources if r.group != "kubeflow.org"]
    served = KubernetesEmulator(resources, installed=installed, bookmark_interval=0.3).start()
    yield served
    served.stop()


@pytest.fixture
def api(emulator: KubernetesEmulator, tmp_path: Path) -> Iterator[client.ApiClient]:
    kubeconfig = tmp_path / "kubeconfig"
    write_kubeconfig(kubeconfig, emulator.url)
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    configuration.retries = False
    with client.ApiClient(configuration) as api_client:
        yield api_client


class Collected:
    """Events a watcher delivered, with a way to wait for one."""

    def __init__(self) -> None:
        self.events: queue.Queue[KindEvent] = queue.Queue()
        self.seen: list[KindEvent] = []

    def put(self, event: KindEvent) -> None:
        self.events.put(event)

    def wait_for(self, predicate, timeout: float = WAIT) -> KindEvent:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                event = self.events.get(timeout=0.1)
            except queue.Empty:
                continue
            self.seen.append(event)
            if predicate(event):
                return event
        seen = [(e.type, e.obj and e.obj["metadata"].get("name")) for e in self.seen]
        raise AssertionError(f"no matching event; saw {seen}")


def start_watcher(kind, api, sink: Collected, **options) -> tuple[KindWatcher, threading.Event]:
    stop = threading.Event()
    watcher = KindWatcher(
        kind,
        api,
        sink.put,
        stop,
        AgentMetrics(),
        watch_timeout=options.get("timeout", 30),
        crd_retry=0.2,
        backoff_max=0.5,
    )
    watcher.start()
    return watcher, stop


def named(name: str, event_type: str):
    return lambda e: (
        e.type == event_type and e.obj is not None and e.obj["metadata"]["name"] == name
    )


def test_list_pages_and_resource_version(emulator: KubernetesEmulator) -> None:
    for index in range(7):
        emulator.create(pod(f"p{index}"))
    first = httpx.get(f"{emulator.url}/api/v1/pods?limit=3").json()
    assert [i["metadata"]["name"] for i in first["items"]] == ["p0", "p1", "p2"]
    assert first["metadata"]["continue"]
    names = [i["metadata"]["name"] for i in first["items"]]
    token = first["metadata"]["continue"]
    while token:
        page = httpx.get(
            f"{emulator.url}/api/v1/pods", params={"limit": 3, "continue": token}
        ).json()
        names += [i["metadata"]["name"] for i in page["items"]]
        token = page["metadata"].get("continue")
    assert names == [f"p{i}" for i in range(7)]
    assert int(first["metadata"]["resourceVersion"]) >= 1007


def _page(emulator: KubernetesEmulator, **params: object) -> httpx.Response:
    return httpx.get(f"{emulator.url}/api/v1/pods", params={"limit": 3, **params})


def test_every_page_of_a_list_is_served_from_the_first_pages_snapshot(
    emulator: KubernetesEmulator,
) -> None:
    for index in range(7):
        emulator.create(pod(f"p{index}"))
    first = _page(emulator).json()
    version = first["metadata"]["resourceVersion"]
    # Writes between the pages: a real API server still answers as of the first page.
    emulator.delete("v1", "Pod", "default", "p4")
    emulator.patch("v1", "Pod", "default", "p5", {"status": {"phase": "Running"}})
    emulator.create(pod("p3a"))
    pages, token = [first], first["metadata"]["continue"]
    while token:
        pages.append(_page(emulator, **{"continue": token}).json())
        token = pages[-1]["metadata"].get("continue")
    assert {page["metadata"]["resourceVersion"] for page in pages} == {version}
    items = [item for page in pages for item in page["items"]]
    assert [i["metadata"]["name"] for i in items] == [f"p{i}" for i in range(7)]
    assert items[5]["status"]["phase"] == "Pending"  # as before the patch
    fresh = [
        i["metadata"]["name"] for i in httpx.get(f"{emulator.url}/api/v1/pods").json()["items"]
    ]
    assert fresh == ["p0", "p1", "p2", "p3", "p3a", "p5", "p6"]


def test_a_continue_token_older_than_the_compacted_history_is_410(
    emulator: KubernetesEmulator,
) -> None:
    for index in range(5):
        emulator.create(pod(f"p{index}"))
    token = _page(emulator).json()["metadata"]["continue"]
    emulator.compact()
    expired = _page(emulator, **{"continue": token})
    assert expired.status_code == 410
    assert expired.json()["reason"] == "Expired"


def test_some_watch_events_span_two_http_chunks(emulator: KubernetesEmulator) -> None:
    for index in range(6):
        emulator.create(pod(f"p{index}"))
    params = {"watch": "1", "resourceVersion": "0", "timeoutSeconds": "1"}
    with httpx.stream("GET", f"{emulator.url}/api/v1/pods", params=params, timeout=10) as response:
        chunks = list(response.iter_raw())
    whole_lines = [chunk for chunk in chunks if chunk.endswith(b"\n")]
    assert len(whole_lines) < len(chunks)  # some chunks end mid-event
    events = [json.loads(line) for line in b"".join(chunks).splitlines() if line]
    assert [e["object"]["metadata"]["name"] for e in events] == [f"p{i}" for i in range(6)]


def test_watch_stream_is_chunked_json_lines_with_bookmarks(emulator: KubernetesEmulator) -> None:
    rv = httpx.get(f"{emulator.url}/api/v1/pods").json()["metadata"]["resourceVersion"]
    lines: list[dict] = []

    def change() -> None:
        time.sleep(0.2)
        emulator.create(pod("watched"))
        emulator.patch("v1", "Pod", "default", "watched", {"status": {"phase": "Running"}})
        emulator.delete("v1", "Pod", "default", "watched")

    threading.Thread(target=change).start()
    params = {
        "watch": "1",
        "resourceVersion": rv,
        "allowWatchBookmarks": "true",
        "timeoutSeconds": "2",
    }
    with httpx.stream("GET", f"{emulator.url}/api/v1/pods", params=params, timeout=10) as response:
        assert response.headers["transfer-encoding"] == "chunked"
        for line in response.iter_lines():
            if line:
                lines.append(json.loads(line))
    types = [line["type"] for line in lines]
    assert [t for t in types if t != "BOOKMARK"] == ["ADDED", "MODIFIED", "DELETED"]
    assert "BOOKMARK" in types
    versions = [int(line["object"]["metadata"]["resourceVersion"]) for line in lines]
    assert versions == sorted(versions)


def test_watch_from_compacted_version_gets_410(emulator: KubernetesEmulator) -> None:
    emulator.create(pod("old"))
    emulator.compact()
    params = {"watch": "1", "resourceVersion": "1000", "timeoutSeconds": "2"}
    with httpx.stream("GET", f"{emulator.url}/api/v1/pods", params=params, timeout=10) as response:
        first = json.loads(next(response.iter_lines()))
    assert first["type"] == "ERROR"
    assert first["object"]["code"] == 410


def test_discovery_and_missing_crd(emulator: KubernetesEmulator) -> None:
    groups = {g["name"] for g in httpx.get(f"{emulator.url}/apis").json()["groups"]}
    assert "batch" in groups
    assert "kubeflow.org" not in groups
    assert httpx.get(f"{emulator.url}/apis/kubeflow.org/v1/pytorchjobs").status_code == 404
    resources = httpx.get(f"{emulator.url}/apis/batch/v1").json()["resources"]
    assert {r["name"] for r in resources} == {"jobs", "cronjobs"}


def test_watcher_lists_then_follows_changes(emulator: KubernetesEmulator, api) -> None:
    emulator.create(pod("before"))
    sink = Collected()
    _watcher, stop = start_watcher(POD, api, sink)
    try:
        relist = sink.wait_for(lambda e: e.type == "relist")
        assert [i["metadata"]["name"] for i in relist.items] == ["before"]
        assert relist.items[0]["kind"] == "Pod"
        emulator.create(pod("after"))
        sink.wait_for(named("after", "upsert"))
        emulator.delete("v1", "Pod", "default", "before")
        sink.wait_for(named("before", "delete"))
    finally:
        stop.set()


def test_watcher_relists_after_410_and_resumes_after_dropped_connections(
    emulator: KubernetesEmulator, api
) -> None:
    sink = Collected()
    watcher, stop = start_watcher(POD, api, sink)
    try:
        sink.wait_for(lambda e: e.type == "relist")
        emulator.drop_connections()
        emulator.create(pod("after-drop"))
        sink.wait_for(named("after-drop", "upsert"))
        # Changes while the watch is down, then compaction: resuming is impossible.
        emulator.stop()
        emulator.create(pod("after-compaction"))
        emulator.compact()
        emulator.start()
        relist = sink.wait_for(lambda e: e.type == "relist")
        assert {i["metadata"]["name"] for i in relist.items} >= {"after-drop", "after-compaction"}
        restarts = watcher.metrics.registry.get_sample_value(
            "gpufleet_agent_watch_restarts_total", {"kind": "Pod", "cause": "gone"}
        )
        assert restarts >= 1
    finally:
        stop.set()


def test_watcher_survives_an_emulator_restart(emulator: KubernetesEmulator, api) -> None:
    emulator.create(pod("kept"))
    sink = Collected()
    _watcher, stop = start_watcher(POD, api, sink)
    try:
        sink.wait_for(lambda e: e.type == "relist")
        emulator.restart(keep_state=False, downtime=0.3)
        emulator.create(pod("fresh"))
        relist = sink.wait_for(lambda e: e.type == "relist")
        assert [i["metadata"]["name"] for i in relist.items] == ["fresh"]
    finally:
        stop.set()


def test_watcher_reports_missing_crd_and_finds_it_once_installed(
    emulator: KubernetesEmulator, api
) -> None:
    sink = Collected()
    watcher, stop = start_watcher(PYTORCH, api, sink)
    try:
        missing = sink.wait_for(lambda e: e.type == "available")
        assert missing.available is False
        assert watcher.listed.is_set()
        resource = next(r for r in emulator.resources.values() if r.kind == "PyTorchJob")
        emulator.install(resource)
        emulator.create(
            {
                "apiVersion": "kubeflow.org/v1",
                "kind": "PyTorchJob",
                "metadata": {"name": "ft"},
                "spec": {},
            }
        )
        sink.wait_for(lambda e: e.type == "available" and e.available)
        relist = sink.wait_for(lambda e: e.type == "relist")
        assert [i["metadata"]["name"] for i in relist.items] == ["ft"]
    finally:
        stop.set()


def test_watch_resumes_from_bookmark_version(emulator: KubernetesEmulator, api) -> None:
    sink = Collected()
    watcher, stop = start_watcher(POD, api, sink, timeout=1)
    try:
        sink.wait_for(lambda e: e.type == "relist")
        listed_version = int(watcher.resource_version)
        emulator.create(
            {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "other"}, "spec": {}}
        )
        deadline = time.monotonic() + WAIT
        while int(watcher.resource_version) <= listed_version and time.monotonic() < deadline:
            time.sleep(0.05)
        # A bookmark moved the version past a change of another resource, without a relist.
        assert int(watcher.resource_version) > listed_version
        assert [e.type for e in sink.seen].count("relist") == 1
    finally:
        stop.set()
