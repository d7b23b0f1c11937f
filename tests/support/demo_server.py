"""One real ``gpufleet serve --demo`` process per test module, for the client and dashboard.

The demo organisation gives every phase and type; on top of it one Running workload gets four
hours of per-GPU and CPU samples through the public metrics ingest API, so charts have data
whatever the demo itself records.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.conftest import ADMIN_ID, ADMIN_SECRET, DATABASE
from tests.support.server import ServerProcess

DEMO_WORKLOADS = 300
SAMPLE_MINUTES = 240
_counter = itertools.count()


@dataclass
class DemoServer:
    server: ServerProcess
    charted_id: str  # the workload with pushed metric samples
    charted_name: str

    @property
    def url(self) -> str:
        return self.server.base_url

    def api(self) -> httpx.Client:
        """An httpx client on the server, authenticated as the administrator."""
        return httpx.Client(base_url=self.url, headers=self.server.auth_headers(), timeout=30)


def _samples(workload_id: str, now: datetime) -> list[dict]:
    samples = []
    for minute in range(SAMPLE_MINUTES):
        at = (now - timedelta(minutes=minute)).isoformat().replace("+00:00", "Z")
        for gpu in (0, 1):
            utilisation = 50 + 40 * math.sin(minute / 10 + gpu)
            samples.append(
                {
                    "workloadId": workload_id,
                    "type": "GPU_UTILIZATION",
                    "timestamp": at,
                    "value": utilisation,
                    "labels": {"gpu": str(gpu)},
                }
            )
        samples.append(
            {
                "workloadId": workload_id,
                "type": "CPU_USAGE_CORES",
                "timestamp": at,
                "value": 2 + math.cos(minute / 7),
            }
        )
    return samples


@contextmanager
def demo_server(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[DemoServer]:
    """A started demo server on its own database (SQLite file or the test PostgreSQL)."""
    postgres = None
    logs = tmp_path_factory.mktemp("demo-server")
    if DATABASE == "sqlite":
        url = f"sqlite:///{logs / 'gpufleet.db'}"
    else:
        postgres = request.getfixturevalue("postgres_server")
        name = f"d{os.getpid()}_{next(_counter)}"
        url = postgres.create_database(name, template="gpufleet_template")
    server = ServerProcess(
        url,
        demo=True,
        demo_workloads=DEMO_WORKLOADS,
        admin_id=ADMIN_ID,
        admin_secret=ADMIN_SECRET,
        log_dir=logs,
    )
    try:
        server.start()
        with httpx.Client(base_url=server.base_url, headers=server.auth_headers()) as api:
            running = api.get(
                "/api/v1/workloads",
                params={"filterBy": "phase==Running", "sortBy": "name", "limit": 1},
            ).json()["workloads"][0]
            now = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
            pushed = api.post(
                "/api/v1/ingest/metrics", json={"samples": _samples(running["id"], now)}
            )
            assert pushed.status_code == 200, pushed.text
        yield DemoServer(server, running["id"], running["name"])
    finally:
        server.stop()
        if postgres is not None:
            postgres.drop_database(name)
