"""Two server processes on one PostgreSQL: shared tokens and keys, consistent results.

Runs in both suite variants: it starts a PostgreSQL of its own.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator

import httpx
import pytest

from tests.support.agent_reports import batch, ingest_path, report
from tests.support.postgres import PostgresServer, start_postgres
from tests.support.server import ServerProcess


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    server = start_postgres()
    yield server
    server.destroy()


# One pair for the module: starting server processes is the slow part of these tests.
@pytest.fixture(scope="module")
def replicas(postgres, tmp_path_factory) -> Iterator[list[ServerProcess]]:
    url = postgres.create_database("replicas")
    logs = tmp_path_factory.mktemp("replicas")
    servers = [ServerProcess(url, log_dir=logs) for _ in range(2)]
    errors: list[BaseException] = []

    def start(server: ServerProcess) -> None:
        try:
            server.start()
        except BaseException as exc:
            errors.append(exc)

    # Started together, as a deployment would: both migrate and bootstrap the same database.
    threads = [threading.Thread(target=start, args=(s,)) for s in servers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == [], errors
        yield servers
    finally:
        for server in servers:
            server.stop()


def _client(server: ServerProcess, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=server.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=60
    )


def test_tokens_and_access_keys_work_on_every_replica(replicas):
    first, second = replicas
    token = first.token()
    with _client(second, token) as on_second:
        assert on_second.get("/api/v1/workloads").status_code == 200
        created = on_second.post("/api/v1/access-keys", json={"name": "ci"})
        assert created.status_code == 201, created.text
        key = created.json()
    key_token = first.token(key["clientId"], key["clientSecret"])
    with _client(second, key_token) as with_key:
        assert with_key.get("/api/v1/workloads/count").status_code in (200, 403)
        assert with_key.get("/api/v1/workloads/count").status_code != 401


def test_writes_through_both_replicas_read_the_same_everywhere(replicas):
    clients = [_client(server, server.token()) for server in replicas]
    rng = random.Random(5)
    updates = [
        report(
            f"00000000-0000-4000-8000-{n:012d}", observed=step * 10, phase=phase, runningPods=step
        )
        for n in range(30)
        for step, phase in enumerate(["Pending", "Running", "Completed"])
    ]
    streams = [list(updates), list(updates)]
    for stream in streams:
        rng.shuffle(stream)

    failures: list[str] = []

    def write(client: httpx.Client, stream: list[dict]) -> None:
        for offset in range(0, len(stream), 15):
            response = client.post(ingest_path(), json=batch(*stream[offset : offset + 15]))
            if response.status_code != 200:
                failures.append(response.text)

    threads = [
        threading.Thread(target=write, args=pair) for pair in zip(clients, streams, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []

    params = {"limit": 500, "sortBy": "name"}
    views = [c.get("/api/v1/workloads", params=params).json()["workloads"] for c in clients]
    assert len(views[0]) == 30
    assert views[0] == views[1]
    assert {(w["phase"], w["runningPods"]) for w in views[0]} == {("Completed", 2)}
    counts = [c.get("/api/v1/workloads/count").json() for c in clients]
    assert counts == [{"count": 30}, {"count": 30}]
    for client in clients:
        client.close()
