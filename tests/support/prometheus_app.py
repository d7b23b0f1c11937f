"""Helpers shared by the Prometheus backend tests: seed the generated workloads and their
pods, build settings pointing at a server, call the metrics API, compute the aligned grid.
"""

from __future__ import annotations

import math
import shutil
from contextlib import contextmanager
from datetime import UTC, datetime

from fastapi.testclient import TestClient

from gpufleet.settings import Settings
from gpufleet.store.pods import record_pods
from tests.support import prometheus as data
from tests.support.databases import ADMIN_ID, ADMIN_SECRET
from tests.support.factories import CLUSTER_ID, insert, workload


def copy_tsdb(tsdb, tmp):
    target = tmp / "tsdb"
    shutil.copytree(tsdb, target)
    return target


def prometheus_settings(database_url: str, url: str, **overrides) -> Settings:
    options = {
        "database_url": database_url,
        "admin_client_id": ADMIN_ID,
        "admin_client_secret": ADMIN_SECRET,
        "prometheus_url": url,
        "prometheus_scrape_interval_seconds": data.SCRAPE_SECONDS,
        "prometheus_gpu_namespace_label": "exported_namespace",
        "prometheus_gpu_pod_label": "exported_pod",
        "idle_gpu_interval_seconds": 0,
        "metrics_retention_interval_seconds": 0,
    }
    return Settings(**(options | overrides))


def seed_workloads(engine) -> dict[str, str]:
    """The generator's workloads, with their pods, in the workload store; name -> id."""
    documents = {
        w.name: workload(name=w.name, namespace=w.namespace, gpus=w.allocated_gpus)
        for w in data.WORKLOADS
    }
    insert(engine, documents.values())
    pods = {
        documents[w.name]["id"]: [
            {"uid": f"uid-{p}", "name": p, "phase": "Running", "nodeName": "node-a"} for p in w.pods
        ]
        for w in data.WORKLOADS
    }
    observed = datetime.now(UTC)
    with engine.begin() as conn:
        record_pods(conn, CLUSTER_ID, {wid: (observed, listed) for wid, listed in pods.items()})
    return {name: doc["id"] for name, doc in documents.items()}


def iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, tz=UTC).isoformat().replace("+00:00", "Z")


def epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def fetch_metrics(client, workload_id, types, start_s, end_s, samples, status=200):
    response = client.get(
        f"/api/v1/workloads/{workload_id}/metrics",
        params={
            "metricType": ",".join(t.value for t in types),
            "start": iso(start_s),
            "end": iso(end_s),
            "numberOfSamples": samples,
        },
    )
    assert response.status_code == status, response.text
    return response.json()


def grid(start_s: float, end_s: float, samples: int) -> tuple[float, float, float]:
    """The documented alignment: (first, last, step) in seconds."""
    span_ms = round((end_s - start_s) * 1000)
    step_ms = max(1000, math.ceil(span_ms / samples))
    last_ms = round(end_s * 1000) // step_ms * step_ms
    return (last_ms - (samples - 1) * step_ms) / 1000, last_ms / 1000, step_ms / 1000


@contextmanager
def client_for(app):
    """An administrator's client of ``app``."""
    with TestClient(app, raise_server_exceptions=False) as client:
        token = client.post(
            "/api/v1/token",
            json={
                "grantType": "client_credentials",
                "clientID": ADMIN_ID,
                "clientSecret": ADMIN_SECRET,
            },
        ).json()["accessToken"]
        client.headers["Authorization"] = f"Bearer {token}"
        yield client
    app.state.gpufleet.engine.dispose()
