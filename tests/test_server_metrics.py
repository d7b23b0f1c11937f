"""``/metrics`` of the server, read in process: what each series counts, and its labels.

Scraping by a real Prometheus, the separate metrics port and JSON logs of a real process are in
``test_observability_e2e.py``.
"""

from __future__ import annotations

import time
import uuid

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from gpufleet.api.app import create_app
from gpufleet.settings import Settings
from tests.support.agent_reports import CLUSTER_ID, batch, ingest_path, report
from tests.support.factories import insert, workload

OTHER_CLUSTER = "0b6c2d8e-3f59-4a51-8d1e-2a4f7c9e1b00"


def samples(client: TestClient) -> dict[tuple[str, frozenset], float]:
    """Every sample of ``/metrics`` keyed by (name, labels)."""
    response = client.get("/metrics", headers={"Authorization": ""})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    found = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(found: dict, name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


def test_requests_are_counted_by_route_template_and_status(client, engine):
    [item] = insert(engine, [workload()])
    assert client.get(f"/api/v1/workloads/{item['id']}").status_code == 200
    assert client.get(f"/api/v1/workloads/{uuid.uuid4()}").status_code == 404
    assert client.get("/no/such/path").status_code == 404
    found = samples(client)
    template = "/api/v1/workloads/{workloadId}"
    for status in ("200", "404"):
        labels = {"method": "GET", "route": template, "status": status}
        assert value(found, "gpufleet_http_requests_total", **labels) == 1
        assert value(found, "gpufleet_http_request_duration_seconds_count", **labels) == 1
    unmatched = {"method": "GET", "route": "unmatched", "status": "404"}
    assert value(found, "gpufleet_http_requests_total", **unmatched) == 1
    # No raw path ever becomes a label value: a label per id would grow without bound.
    assert not [key for key in found if any(item["id"] in v for _, v in key[1])]


def test_ingest_items_are_counted_by_cluster_and_outcome(client):
    first = report(observed=10, phase="Running")
    assert client.post(ingest_path(CLUSTER_ID), json=batch(first)).status_code == 200
    older = report(first["id"], observed=5, phase="Pending")
    newer = report(observed=10, phase="Pending")
    assert client.post(ingest_path(CLUSTER_ID), json=batch(older, newer)).status_code == 200
    refused = batch(report(observed=1), report(observed=1, phase=""))
    assert client.post(ingest_path(CLUSTER_ID), json=refused).status_code == 400
    # A workload of another cluster is refused item by item, the rest of its batch applied.
    theirs = report(observed=1, cluster_id=OTHER_CLUSTER)
    assert client.post(ingest_path(OTHER_CLUSTER), json=batch(theirs)).status_code == 200
    taken = report(theirs["id"], observed=2)
    answer = client.post(ingest_path(CLUSTER_ID), json=batch(taken)).json()
    assert len(answer["refused"]) == 1
    found = samples(client)
    counted = {
        outcome: value(found, "gpufleet_ingest_items_total", cluster=CLUSTER_ID, outcome=outcome)
        for outcome in ("accepted", "stale", "refused")
    }
    assert counted == {"accepted": 2, "stale": 1, "refused": 3}
    other = {"cluster": OTHER_CLUSTER, "outcome": "accepted"}
    assert value(found, "gpufleet_ingest_items_total", **other) == 1


def test_refusals_of_unauthenticated_callers_add_no_cluster_label(anonymous_client):
    stranger = str(uuid.uuid4())
    response = anonymous_client.post(ingest_path(stranger), json=batch(report(observed=1)))
    assert response.status_code == 401
    assert not [key for key in samples(anonymous_client) if ("cluster", stranger) in key[1]]


def test_database_pool_and_query_latency(client):
    found = samples(client)
    assert value(found, "gpufleet_db_pool_max_connections") == 15  # pool 5 + overflow 10
    # The scrape itself holds no connection; requests before it returned theirs.
    assert value(found, "gpufleet_db_pool_connections", state="in_use") == 0
    assert value(found, "gpufleet_db_pool_connections", state="idle") >= 1
    assert value(found, "gpufleet_db_query_duration_seconds_count", operation="select") >= 1


def test_metrics_backend_calls_are_timed(client, engine):
    [item] = insert(engine, [workload()])
    response = client.get(
        f"/api/v1/workloads/{item['id']}/metrics",
        params={
            "metricType": "GPU_UTILIZATION",
            "start": "2024-05-01T12:00:00Z",
            "end": "2024-05-01T13:00:00Z",
        },
    )
    assert response.status_code == 200, response.text
    found = samples(client)
    timed = {"backend": "embedded", "operation": "workload_metrics"}
    assert value(found, "gpufleet_metrics_backend_duration_seconds_count", **timed) == 1
    assert value(found, "gpufleet_metrics_backend_errors_total", cause="query", **timed) == 0


def test_background_task_runs_are_counted(database_url):
    settings = Settings(database_url=database_url, idle_gpu_interval_seconds=1)
    app = create_app(settings)
    try:
        with TestClient(app) as client:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                found = samples(client)
                runs = value(
                    found, "gpufleet_background_task_runs_total", task="idle_gpus", outcome="ok"
                )
                if runs >= 1:
                    break
                time.sleep(0.2)
            assert runs >= 1
            last = value(
                found,
                "gpufleet_background_task_last_success_timestamp_seconds",
                task="idle_gpus",
            )
            assert abs(last - time.time()) < 60
    finally:
        app.state.gpufleet.engine.dispose()


def test_two_apps_in_one_process_count_apart(database_url, client):
    other = create_app(Settings(database_url=database_url))
    try:
        with TestClient(other) as second:
            second.get("/healthz")
            second.get("/healthz")
        client.get("/healthz")
        route = {"method": "GET", "route": "/healthz", "status": "200"}
        assert value(samples(client), "gpufleet_http_requests_total", **route) == 1
    finally:
        other.state.gpufleet.engine.dispose()


@pytest.mark.parametrize(
    ("sent", "kept"),
    [("abc-123_DEF.7:x", True), ("bad id with spaces", False), ("x" * 129, False)],
)
def test_request_id_is_echoed_when_well_formed(anonymous_client, sent, kept):
    response = anonymous_client.get("/healthz", headers={"X-Request-Id": sent})
    echoed = response.headers["X-Request-Id"]
    assert (echoed == sent) is kept
    if not kept:
        assert len(echoed) == 32 and int(echoed, 16) >= 0


def test_every_response_gets_a_fresh_request_id(anonymous_client):
    ids = {anonymous_client.get("/healthz").headers["X-Request-Id"] for _ in range(3)}
    assert len(ids) == 3


def test_the_metrics_port_setting_moves_metrics_off_the_main_port(database_url):
    app = create_app(Settings(database_url=database_url, metrics_port=9464))
    try:
        with TestClient(app) as client:
            assert client.get("/metrics").status_code == 404
    finally:
        app.state.gpufleet.engine.dispose()
