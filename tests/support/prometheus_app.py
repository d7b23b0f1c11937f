"""Helpers shared by the Prometheus backend tests: seed the generated workloads and their
pods, build settings pointing at a server, call the metrics API, compute the aligned grid.
"""

from __future__ import annotations

import math
import shutil
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime

from fastapi.testclient import TestClient

from gpufleet.metrics.types import MetricKind, metric_info
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


def pod_uid(name: str) -> str:
    """The uid the store holds for the generator's pod ``name``."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"pod/{name}"))


def seed_workloads(engine) -> dict[str, str]:
    """The generator's workloads, with their pods, in the workload store; name -> id."""
    documents = {
        w.name: workload(name=w.name, namespace=w.namespace, gpus=w.allocated_gpus)
        for w in data.WORKLOADS
    }
    insert(engine, documents.values())
    pods = {
        documents[w.name]["id"]: [
            {"uid": pod_uid(p), "name": p, "phase": "Running", "nodeName": "node-a"} for p in w.pods
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


def fetch_metrics(client, workload_id, types, start_s, end_s, samples, status=200, pod=None):
    """The metrics of a workload, or with ``pod`` (a generator's pod name) of that pod."""
    path = f"/api/v1/workloads/{workload_id}"
    if pod is not None:
        path += f"/pods/{pod_uid(pod)}"
    return get_metrics(client, f"{path}/metrics", types, start_s, end_s, samples, status)


def get_metrics(client, path, types, start_s, end_s, samples, status=200):
    """The answer of a metrics route at ``path`` for ``types`` over [start_s, end_s]."""
    response = client.get(
        path,
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


def direct(prom, expression, first, last, step, scrape=data.SCRAPE_SECONDS):
    window = f"{round(max(step, 4 * scrape) * 1000)}ms"
    step_text = str(int(step)) if float(step).is_integer() else f"{step:.3f}"
    query = expression.replace("{w}", window).replace("{step}", step_text)
    return prom.query_range(query, first, last, step)


def close_to(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-6)


def assert_same_as_prometheus(prom, body, metric_type, expression, first, last, step):
    """The API's answer for one type equals what Prometheus gives for ``expression``."""
    kind = metric_info(metric_type).kind
    if kind is MetricKind.PERCENTILES:
        api = {epoch(v["timestamp"]): v["data"] for v in body["histogram"][0]["values"]}
        expected: dict[float, dict[str, float]] = {}
        for name, quantile_expr in expression.items():
            for series in direct(prom, quantile_expr, first, last, step):
                for ts, value in series["values"]:
                    expected.setdefault(ts, {})[name] = float(value)
        expected = {ts: d for ts, d in expected.items() if not any(map(math.isnan, d.values()))}
        assert expected, "the comparison needs data"
        assert set(api) == set(expected)
        for ts, quantiles in expected.items():
            assert set(api[ts]) == set(quantiles)
            assert all(close_to(float(api[ts][k]), v) for k, v in quantiles.items()), ts
        return
    result = direct(prom, expression, first, last, step)
    assert result, "the comparison needs data"
    if kind is MetricKind.HISTOGRAM:
        api = {epoch(v["timestamp"]): v["data"] for v in body["histogram"][0]["values"]}
        expected = {}
        for series in result:
            bound = float(series["metric"]["le"])
            for ts, value in series["values"]:
                expected.setdefault(ts, {})[bound] = float(value)
        assert set(api) == set(expected)
        for ts, buckets in expected.items():
            got = {float(k): float(v) for k, v in api[ts].items()}
            assert set(got) == set(buckets)
            assert all(close_to(got[b], v) for b, v in buckets.items()), ts
            assert list(got) == sorted(got), "buckets are listed by increasing bound"
        return
    measurements = [m for m in body["measurements"] if m["type"] == metric_type.value]
    assert len(measurements) == len(result)
    by_labels = {tuple(sorted((m["labels"] or {}).items())): m["values"] for m in measurements}
    for series in result:
        labels = tuple(sorted(series["metric"].items()))
        values = by_labels[labels]
        assert [epoch(v["timestamp"]) for v in values] == [ts for ts, _ in series["values"]]
        assert all(
            close_to(float(v["value"]), float(p))
            for v, (_, p) in zip(values, series["values"], strict=True)
        )
