"""``POST /api/v1/ingest/metrics``: valid batches are stored, a bad sample rejects its batch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest
from fastapi.testclient import TestClient

from gpufleet.api.app import create_app
from gpufleet.store.metric_samples import count_samples
from tests.support.access import bearer, token_for
from tests.support.factories import insert, workload

URL = "/api/v1/ingest/metrics"


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@pytest.fixture
def workload_id(engine) -> str:
    return insert(engine, [workload()])[0]["id"]


def _sample(workload_id: str, **overrides) -> dict:
    sample = {
        "workloadId": workload_id,
        "type": "GPU_UTILIZATION",
        "timestamp": _iso(_now() - timedelta(minutes=1)),
        "value": 42.5,
        "labels": {"gpu": "0"},
    }
    sample.update(overrides)
    return {k: v for k, v in sample.items() if v is not ...}


def _stored(engine, workload_id=None) -> int:
    with engine.connect() as conn:
        return count_samples(conn, workload_id)


def test_a_batch_is_stored_and_readable(client, engine, workload_id):
    now = _now()
    samples = [
        _sample(workload_id, timestamp=_iso(now - timedelta(minutes=m)), value=10 * m)
        for m in range(1, 4)
    ] + [
        _sample(workload_id, type="CPU_USAGE_CORES", labels=None, value=3),
        _sample(workload_id, type="POD_COUNT", labels=..., value=2),
        _sample(workload_id, type="NIM_E2E_REQUEST_LATENCY_SECONDS", labels={"le": "1"}, value=7),
        _sample(workload_id, type="NIM_E2E_REQUEST_LATENCY_SECONDS", labels={"le": "+Inf"}),
        _sample(workload_id, type="NIM_REQUEST_FAILURE_TOTAL", labels={}, value=0),
    ]
    response = client.post(URL, json={"samples": samples})
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": len(samples)}
    assert _stored(engine, workload_id) == len(samples)
    body = client.get(
        f"/api/v1/workloads/{workload_id}/metrics",
        params={
            "metricType": "GPU_UTILIZATION",
            "start": _iso(now - timedelta(minutes=4)),
            "end": _iso(now),
            "numberOfSamples": 4,
        },
    ).json()
    assert [v["value"] for v in body["measurements"][0]["values"]] == ["30", "20", "10"]
    assert body["measurements"][0]["labels"] == {"gpu": "0"}


def test_resending_a_sample_replaces_it(client, engine, workload_id):
    stamp = _iso(_now() - timedelta(minutes=2))
    first = client.post(URL, json={"samples": [_sample(workload_id, timestamp=stamp, value=1)]})
    assert first.status_code == 200
    again = [_sample(workload_id, timestamp=stamp, value=v) for v in (2, 3)]
    assert client.post(URL, json={"samples": again}).status_code == 200
    assert _stored(engine, workload_id) == 1
    now = _now()
    body = client.get(
        f"/api/v1/workloads/{workload_id}/metrics",
        params={
            "metricType": "GPU_UTILIZATION",
            "start": _iso(now - timedelta(minutes=10)),
            "end": _iso(now),
            "numberOfSamples": 1,
        },
    ).json()
    assert body["measurements"][0]["values"][0]["value"] == "3"


def test_an_empty_batch_is_fine(client):
    response = client.post(URL, json={"samples": []})
    assert response.status_code == 200
    assert response.json() == {"accepted": 0}


BAD_SAMPLES = [
    ({"workloadId": "7f0c2f3e-8a2b-4d5e-9f10-111213141516"}, "workloadId"),
    ({"workloadId": "'; DROP TABLE metric_samples; --"}, "workloadId"),
    ({"type": "GPU_UTILISATION"}, "type"),
    ({"type": "NIM_E2E_REQUEST_LATENCY_SECONDS_PERCENTILES", "labels": None}, "type"),
    ({"timestamp": "not a time"}, "timestamp"),
    ({"timestamp": _iso(datetime.now(UTC) + timedelta(days=2))}, "timestamp"),
    ({"timestamp": "9999-12-31T23:59:59Z"}, "timestamp"),
    ({"timestamp": _iso(datetime.now(UTC) - timedelta(days=60))}, "timestamp"),
    ({"value": "42"}, "value"),
    ({"value": True}, "value"),
    ({"value": None}, "value"),
    ({"labels": {"gpu": "zero"}}, "labels"),
    ({"labels": {"gpu": "0", "pod": "x"}}, "labels"),
    ({"labels": {"le": "0.5"}}, "labels"),
    ({"type": "CPU_USAGE_CORES", "labels": {"gpu": "0"}}, "labels"),
    ({"type": "NIM_TIME_TO_FIRST_TOKEN_SECONDS", "labels": None}, "labels"),
    ({"type": "NIM_TIME_TO_FIRST_TOKEN_SECONDS", "labels": {"le": "fast"}}, "labels"),
    ({"type": "NIM_TIME_TO_FIRST_TOKEN_SECONDS", "labels": {"le": "NaN"}}, "labels"),
    ({"type": "NIM_REQUEST_SUCCESS_TOTAL", "labels": None, "value": -1}, "value"),
    # Sums over the fleet's samples (the ledger's used GPU-hours, node telemetry) read them.
    ({"value": -0.5}, "value"),
    ({"value": 100.5}, "value"),
    ({"type": "CPU_MEMORY_USAGE_BYTES", "labels": None, "value": -1}, "value"),
    ({"type": "CPU_MEMORY_USAGE_BYTES", "labels": None, "value": 1e300}, "value"),
    ({"extra": 1}, "extra"),
]


@pytest.mark.parametrize(("overrides", "field"), BAD_SAMPLES)
def test_a_bad_sample_rejects_the_whole_batch_naming_its_index(
    client, engine, workload_id, overrides, field
):
    good = [_sample(workload_id, value=v) for v in (1, 2)]
    bad = _sample(workload_id, **overrides)
    response = client.post(URL, json={"samples": [*good, bad, good[0]]})
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == 400
    assert f"samples.2.{field}" in body["message"]
    assert _stored(engine) == 0


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e999"])
def test_non_finite_values_are_rejected(client, engine, workload_id, literal):
    sample = orjson.dumps(_sample(workload_id, value=0)).replace(
        b'"value":0', b'"value":' + literal
    )
    response = client.post(
        URL,
        content=b'{"samples":[' + sample + b"]}",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert "samples.0.value" in response.json()["message"]
    assert _stored(engine) == 0


@pytest.mark.parametrize(
    "body", [b"", b"[]", b'{"samples": {}}', b'{"samples": [1]}', b'{"sample": []}', b"{"]
)
def test_malformed_bodies_are_400(client, body):
    response = client.post(URL, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["code"] == 400


def test_requires_a_token(anonymous_client):
    assert anonymous_client.post(URL, json={"samples": []}).status_code == 401


def test_batch_size_is_limited_by_a_setting(settings, engine):
    settings = settings.model_copy(update={"ingest_max_metric_samples": 2})
    app = create_app(settings)
    with TestClient(app, raise_server_exceptions=False) as client:
        secret = settings.admin_client_secret.get_secret_value()
        client.headers.update(bearer(token_for(client, settings.admin_client_id, secret)))
        workload_id = insert(engine, [workload()])[0]["id"]
        response = client.post(URL, json={"samples": [_sample(workload_id)] * 3})
        assert response.status_code == 413
        assert response.json()["code"] == 413
    app.state.gpufleet.engine.dispose()
