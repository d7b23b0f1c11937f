"""One real ``gpufleet serve --demo`` process per test module, for the client and dashboard.

The demo organisation gives every phase and type. On top of it, one workload is reported through
the public ingest APIs (two phases, a pod, four hours of per-GPU and CPU samples), so history,
pods and charts have data whatever the demo itself records.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.support.databases import ADMIN_ID, ADMIN_SECRET, fresh_database
from tests.support.server import ServerProcess

DEMO_WORKLOADS = 300
SAMPLE_MINUTES = 240
PENDING_MESSAGE = "Waiting for 2 GPUs in nodepool default"
# Fields the ingest API keeps itself; a report leaves them out.
SERVER_MAINTAINED = (
    "phaseUpdatedAt",
    "k8sPhaseUpdatedAt",
    "updatedAt",
    "deletedAt",
    "completedAt",
    "totalPendingTimeSeconds",
    "totalRunningTimeSeconds",
)


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


def _ingest_charted_workload(api: httpx.Client) -> dict:
    """A copy of a Running demo workload reported Pending three hours ago, then Running with
    one pod two hours ago, so it has a phase history and pods as well."""
    template = api.get(
        "/api/v1/workloads", params={"filterBy": "phase==Running", "sortBy": "name", "limit": 1}
    ).json()["workloads"][0]
    document = api.get(f"/api/v1/workloads/{template['id']}").json()
    for maintained in SERVER_MAINTAINED:
        document.pop(maintained, None)
    document.update(id=str(uuid.uuid4()), name=f"charted-{uuid.uuid4().hex[:6]}")
    now = datetime.now(UTC)
    pod = {
        "name": f"{document['name']}-0",
        "uid": str(uuid.uuid4()),
        "nodeName": "gpu-node-3",
        "phase": "Running",
        "gpuIndices": ["0", "1"],
        "nodepool": "default",
    }
    reports = [
        dict(document, phase="Pending", phaseMessage=PENDING_MESSAGE, pods=[], hours_ago=3),
        dict(document, phase="Running", phaseMessage=None, pods=[pod], hours_ago=2),
    ]
    for report in reports:
        observed = now - timedelta(hours=report.pop("hours_ago"))
        report["observedAt"] = observed.isoformat().replace("+00:00", "Z")
        answer = api.post(
            f"/api/v1/ingest/clusters/{document['clusterId']}/workloads",
            json={"workloads": [report]},
        )
        assert answer.status_code == 200, answer.text
    return document


@contextmanager
def demo_server(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[DemoServer]:
    """A started demo server on its own database (SQLite file or the test PostgreSQL)."""
    logs = tmp_path_factory.mktemp("demo-server")
    with fresh_database(request, logs) as url:
        yield from _started_demo(url, logs)


def _started_demo(url: str, logs) -> Iterator[DemoServer]:
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
            charted = _ingest_charted_workload(api)
            now = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
            pushed = api.post(
                "/api/v1/ingest/metrics", json={"samples": _samples(charted["id"], now)}
            )
            assert pushed.status_code == 200, pushed.text
        yield DemoServer(server, charted["id"], charted["name"])
    finally:
        server.stop()
