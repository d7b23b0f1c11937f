"""A database outage: 503 in the Error shape while it lasts, recovery without a restart after.

Runs in both suite variants: it starts (and stops, and restarts) a PostgreSQL of its own.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support.agent_reports import batch, ingest_path, report
from tests.support.postgres import PostgresServer, start_postgres
from tests.support.server import ServerProcess

# Every request during the outage must be answered within this; a hang fails the test.
BOUND_SECONDS = 20.0
RECOVERY_ATTEMPTS = 100


@pytest.fixture
def postgres() -> Iterator[PostgresServer]:
    server = start_postgres()
    yield server
    server.destroy()


def _wait_until_served(client: httpx.Client, path: str) -> httpx.Response:
    for _ in range(RECOVERY_ATTEMPTS):
        response = client.get(path)
        if response.status_code == 200:
            return response
        assert response.status_code == 503, response.text
        time.sleep(0.2)
    raise AssertionError(f"{path} was not served again after the database came back")


def test_outage_gives_503_and_recovers_without_losing_acknowledged_ingest(postgres, tmp_path):
    url = postgres.create_database("outage")
    settings = {"GPUFLEET_DB_CONNECT_TIMEOUT_SECONDS": "2", "GPUFLEET_DB_POOL_TIMEOUT_SECONDS": "2"}
    with ServerProcess(url, extra_env=settings, log_dir=tmp_path) as server:
        client = httpx.Client(
            base_url=server.base_url, headers=server.auth_headers(), timeout=BOUND_SECONDS
        )
        before = report(observed=0, phase="Running")
        acknowledged = client.post(ingest_path(), json=batch(before))
        assert acknowledged.status_code == 200, acknowledged.text

        postgres.stop(fast=True)
        during = report(observed=10, phase="Pending")
        for response in (
            client.get("/api/v1/workloads"),
            client.get("/api/v1/workloads/count"),
            client.get(f"/api/v1/workloads/{before['id']}"),
            client.post(ingest_path(), json=batch(during)),
            client.get("/readyz"),
        ):
            assert response.status_code == 503, response.text
            error = response.json()
            assert error["code"] == 503
            assert "unavailable" in error["message"]
            assert "Traceback" not in response.text

        postgres.start()
        assert server.running
        _wait_until_served(client, "/api/v1/workloads/count")
        # The agent retries what was refused; both the old and the retried batch are there.
        retried = client.post(ingest_path(), json=batch(during))
        assert retried.status_code == 200, retried.text
        listed = client.get("/api/v1/workloads", params={"limit": 500}).json()["workloads"]
        assert {w["id"] for w in listed} == {before["id"], during["id"]}
        assert client.get(f"/api/v1/workloads/{before['id']}").json()["phase"] == "Running"
        assert client.get("/readyz").status_code == 200
        client.close()
