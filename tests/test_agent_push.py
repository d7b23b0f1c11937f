"""The agent's outbox against a real server: coalescing, 413 splitting, refused items, tokens."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from gpufleet.agent.health import AgentMetrics
from gpufleet.agent.push import IngestClient, Pusher
from tests.support.server import ADMIN_ID, ADMIN_SECRET, ServerProcess
from tests.test_agent_kinds import CLUSTER_ID, FIXTURES, derive_case, load_case

pytestmark = pytest.mark.e2e
BATCH_LIMIT = 3
WAIT = 20.0


@pytest.fixture(scope="module")
def server(module_database_url: str, tmp_path_factory) -> Iterator[ServerProcess]:
    process = ServerProcess(
        module_database_url,
        extra_env={"GPUFLEET_INGEST_MAX_BATCH_ITEMS": str(BATCH_LIMIT)},
        log_dir=tmp_path_factory.mktemp("push-server"),
    )
    with process:
        yield process


@pytest.fixture
def pusher(server: ServerProcess) -> Iterator[Pusher]:
    client = IngestClient(server.base_url, ADMIN_ID, ADMIN_SECRET)
    outbox = Pusher(
        client, CLUSTER_ID, AgentMetrics(), batch_size=10, interval=0.05, backoff_max=0.2
    )
    outbox.start()
    yield outbox
    outbox.stop()
    client.close()


def record(phase: str = "Running", observed: str = "2026-01-01T00:00:01.000Z", **fields) -> dict:
    base = derive_case(load_case(FIXTURES / "pod" / "succeeded.yaml"))
    return {**base, "id": str(uuid.uuid4()), "phase": phase, "observedAt": observed, **fields}


def fetch(server: ServerProcess, workload_id: str) -> dict | None:
    response = httpx.get(
        f"{server.base_url}/api/v1/workloads/{workload_id}", headers=server.auth_headers()
    )
    return response.json() if response.status_code == 200 else None


def wait_until(condition, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError("condition never held")


def _rejected_pushes(pusher: Pusher) -> float | None:
    labels = {"endpoint": "workloads", "cause": "rejected"}
    return pusher.metrics.registry.get_sample_value("gpufleet_agent_push_failures_total", labels)


def test_batches_over_the_server_limit_are_split(server: ServerProcess, pusher: Pusher) -> None:
    records = [record() for _ in range(10)]
    pusher.enqueue(records)
    wait_until(lambda: pusher.depth == 0 and pusher.last_success is not None)
    for item in records:
        assert fetch(server, item["id"])["phase"] == "Running"
    assert pusher.metrics.registry.get_sample_value("gpufleet_agent_pushed_workloads_total") == 10


def test_newest_observation_wins_and_deletion_cancels_updates(
    server: ServerProcess, pusher: Pusher
) -> None:
    pusher.stop()  # fill the outbox while nothing drains it
    first = record("Pending", "2026-01-01T00:00:01.000Z")
    newer = {**first, "phase": "Running", "observedAt": "2026-01-01T00:00:02.000Z"}
    older = {**first, "phase": "Failed", "observedAt": "2026-01-01T00:00:00.500Z"}
    doomed = record()
    pusher.enqueue([first, newer, older, doomed])
    pusher.enqueue([], deleted={doomed["id"]: "2026-01-01T00:00:03.000Z"})
    assert pusher.depth == 2
    restarted = Pusher(pusher.client, CLUSTER_ID, AgentMetrics(), interval=0.05)
    restarted._pending, restarted._deleted = pusher._pending, pusher._deleted
    restarted.start()
    try:
        wait_until(lambda: restarted.depth == 0 and restarted.last_success is not None)
    finally:
        restarted.stop()
    assert fetch(server, first["id"])["phase"] == "Running"
    assert fetch(server, doomed["id"]) is None


def test_a_deletion_pushed_late_keeps_the_time_it_was_seen(
    server: ServerProcess, pusher: Pusher
) -> None:
    item = record()
    pusher.enqueue([item])
    wait_until(lambda: pusher.known(item["id"]))
    pusher.stop()  # the server is out of reach while the deletion is seen
    pusher.enqueue([], deleted={item["id"]: "2026-01-01T00:05:00.000Z"})
    restarted = Pusher(pusher.client, CLUSTER_ID, AgentMetrics(), interval=0.05)
    restarted._deleted = pusher._deleted
    restarted.start()
    try:
        wait_until(lambda: restarted.depth == 0 and restarted.last_success is not None)
    finally:
        restarted.stop()
    assert fetch(server, item["id"])["deletedAt"] == "2026-01-01T00:05:00.000Z"


def test_an_item_the_server_refuses_is_dropped_and_the_rest_arrive(
    server: ServerProcess, pusher: Pusher
) -> None:
    good = [record(), record()]
    bad = record(phase="Sleeping")
    pusher.enqueue([good[0], bad, good[1]])
    wait_until(lambda: pusher.depth == 0 and all(fetch(server, g["id"]) for g in good))
    assert fetch(server, bad["id"]) is None
    assert _rejected_pushes(pusher) == 1


def test_an_invalid_token_is_replaced_once(server: ServerProcess, pusher: Pusher) -> None:
    pusher.client._token = "not-a-token"
    pusher.client._expires = time.monotonic() + 3600
    item = record()
    pusher.enqueue([item])
    wait_until(lambda: fetch(server, item["id"]) is not None)
    assert pusher.client._token != "not-a-token"


def test_wrong_credentials_keep_updates_queued(server: ServerProcess) -> None:
    client = IngestClient(server.base_url, ADMIN_ID, "wrong-secret")
    outbox = Pusher(client, CLUSTER_ID, AgentMetrics(), interval=0.05, backoff_max=0.2)
    outbox.start()
    try:
        outbox.enqueue([record()])
        wait_until(lambda: outbox.last_error is not None)
        assert outbox.depth == 1
        assert "token request refused" in outbox.last_error
    finally:
        outbox.stop(flush_timeout=0.5)
        client.close()


def test_an_item_naming_another_clusters_workload_is_counted_and_not_retried(
    server: ServerProcess, pusher: Pusher
) -> None:
    other = "0e1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b"
    theirs = record(clusterId=other, projectId="other-p", departmentId="other-d")
    response = httpx.post(
        f"{server.base_url}/api/v1/ingest/clusters/{other}/workloads",
        json={"workloads": [theirs]},
        headers=server.auth_headers(),
    )
    assert response.status_code == 200 and response.json()["accepted"] == 1, response.text
    mine = record()
    pusher.enqueue([{**theirs, "clusterId": CLUSTER_ID, "projectId": mine["projectId"],
                     "departmentId": mine["departmentId"], "phase": "Failed"}, mine])  # fmt: skip
    # Known is recorded after the refusals are counted, once the response is read.
    wait_until(lambda: pusher.known(mine["id"]))
    assert _rejected_pushes(pusher) == 1
    assert not pusher.known(theirs["id"])
    assert fetch(server, theirs["id"])["clusterId"] == other
    assert fetch(server, theirs["id"])["phase"] == "Running"
