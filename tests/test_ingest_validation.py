"""Ingest input checking: limits, bad items, ugly values; a rejected batch writes nothing."""

from __future__ import annotations

import json
import uuid

import pytest

from gpufleet.settings import Settings
from tests.support.agent_reports import CLUSTER_ID, batch, ingest_path, report
from tests.support.databases import ADMIN_ID, ADMIN_SECRET

MAX_ITEMS = 4
MAX_BYTES = 16 * 1024


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        admin_client_id=ADMIN_ID,
        admin_client_secret=ADMIN_SECRET,
        ingest_max_batch_items=MAX_ITEMS,
        ingest_max_body_bytes=MAX_BYTES,
    )


def _reject(client, body, status=400, *, raw: bytes | None = None) -> str:
    if raw is None:
        response = client.post(ingest_path(), json=body)
    else:
        headers = {"Content-Type": "application/json"}
        response = client.post(ingest_path(), content=raw, headers=headers)
    assert response.status_code == status, response.text
    error = response.json()
    assert set(error) <= {"code", "message", "details"}
    assert error["code"] == status
    return error["message"]


def _stored_count(client) -> int:
    live = client.get("/api/v1/workloads/count").json()["count"]
    return live + client.get("/api/v1/workloads/count", params={"deleted": "true"}).json()["count"]


def test_too_many_items_is_413_and_names_the_limit(client):
    message = _reject(client, batch(*(report() for _ in range(MAX_ITEMS + 1))), 413)
    assert str(MAX_ITEMS) in message
    assert _stored_count(client) == 0


def test_too_large_body_is_413(client):
    huge = report(command="x" * (MAX_BYTES + 1))
    assert "bytes" in _reject(client, batch(huge), 413)
    assert _stored_count(client) == 0


def test_a_bad_item_rejects_the_whole_batch_naming_its_index(client):
    good = report()
    bad = report(phase="Sleeping")
    message = _reject(client, batch(good, report(), bad))
    assert "index 2" in message
    assert "phase" in message
    assert _stored_count(client) == 0


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"observedAt": None}, "observedAt"),
        ({"observedAt": "2025-03-01T08:00:00"}, "observedAt"),
        ({"observedAt": "yesterday"}, "observedAt"),
        ({"createdAt": "2025-03-01T08:00:00"}, "createdAt"),
        ({"id": "1; DROP TABLE workloads; --"}, "id"),
        ({"priority": 2**40}, "priority"),
        ({"tenantId": "one"}, "tenantId"),
        ({"name": "n" * 254}, "name"),
        ({"projectId": "p" * 65}, "projectId"),
        ({"runningPods": -(2**63)}, "runningPods"),
        ({"pods": [{"name": "a", "uid": str(uuid.UUID(int=7)), "phase": "Running"}] * 2}, "uids"),
        ({"pods": [{"name": "a", "phase": "Running"}]}, "uid"),
        ({"unknownField": 1}, "unknownField"),
        ({"observedAt": "9999-12-31T23:59:59Z"}, "future"),
        # Node pool names the pool columns cannot hold, or that name nothing.
        ({"requestedNodePools": ["a100", "x" * 254]}, "requestedNodePools.1"),
        ({"requestedNodePools": [""]}, "requestedNodePools.0"),
        ({"currentNodePools": ["z" * 300]}, "currentNodePools.0"),
        ({"name": ""}, "name must not be empty"),
        ({"projectId": ""}, "projectId must not be empty"),
        ({"projectName": ""}, "projectName must not be empty"),
        # Amounts one cluster's report would carry into every sum over the tenant.
        ({"allocatedResources": {"gpu": -4}}, "allocatedResources.gpu"),
        ({"allocatedResources": {"gpu": 1e308}}, "allocatedResources.gpu"),
        ({"allocatedResources": {"cpu": 1e16}}, "allocatedResources.cpu"),
        ({"allocatedResources": {"gpuMemory": "-40Gi"}}, "allocatedResources.gpuMemory"),
        ({"allocatedResources": {"cpuMemory": "1e30"}}, "allocatedResources.cpuMemory"),
        (
            {"workloadRequestedResources": {"gpu": {"request": -64}}},
            "workloadRequestedResources.gpu.request",
        ),
        (
            {"podsRequestedResources": {"cpu": {"limit": -1}}},
            "podsRequestedResources.cpu.limit",
        ),
        (
            {"workloadRequestedResources": {"cpuMemory": {"request": "1.2.3Gi"}}},
            "workloadRequestedResources.cpuMemory.request",
        ),
        ({"idleAllocatedGpus": -0.5}, "idleAllocatedGpus"),
        ({"idleGpus": -1}, "idleGpus"),
        ({"runningPods": -1}, "runningPods"),
        ({"totalRunningTimeSeconds": -60}, "totalRunningTimeSeconds"),
        ({"requestedPods": {"number": -2}}, "requestedPods.number"),
        (
            {
                "pods": [
                    {
                        "name": "a",
                        "uid": str(uuid.UUID(int=7)),
                        "phase": "Running",
                        "allocatedResources": {"gpu": -1},
                    }
                ]
            },
            "pods.0.allocatedResources.gpu",
        ),
    ],
)
def test_ugly_values_are_named(client, overrides, named):
    message = _reject(client, batch(report(), report(**overrides)))
    assert "index 1" in message
    assert named in message
    assert _stored_count(client) == 0


def test_nul_characters_are_refused_before_the_database(client):
    message = _reject(client, batch(report(name="bad\x00name")))
    assert "index 0" in message
    message = _reject(client, batch(report(additionalFields={"k": "v\x00"})))
    assert "NUL" in message


def test_cluster_of_an_item_must_match_the_path(client):
    other = report(cluster_id=str(uuid.uuid4()))
    message = _reject(client, batch(report(), other))
    assert "index 1" in message
    assert CLUSTER_ID in message


def test_malformed_bodies(client):
    assert "JSON" in _reject(client, None, raw=b"{not json")
    assert "index 0: is not a finite number" in _reject(client, None, raw=b'{"workloads": [1e999]}')
    assert "object" in _reject(client, None, raw=b"[]")
    assert "workloads" in _reject(client, {"workloads": {"a": 1}})
    assert "deletedIds" in _reject(client, {"deletedIds": ["not-a-uuid"]})
    assert "fullSync" in _reject(client, {"fullSync": "maybe"})
    assert "extra" in _reject(client, {"workloads": [], "surprise": True}).lower()


def test_an_id_both_reported_and_deleted_is_refused(client):
    item = report()
    assert item["id"] in _reject(client, batch(item, deleted=[item["id"]]))
    message = _reject(client, batch(item, deletions={item["id"]: 10}))
    assert item["id"] in message and "deletions" in message


@pytest.mark.parametrize(
    ("deletion", "named"),
    [
        ({"id": "not-a-uuid", "observedAt": "2025-03-01T08:00:00Z"}, "'deletions.0.id'"),
        (
            {"id": str(uuid.uuid4()), "observedAt": "2025-03-01T08:00:00"},
            "'deletions.0.observedAt'",
        ),
        ({"id": str(uuid.uuid4()), "observedAt": "yesterday"}, "'deletions.0.observedAt'"),
        ({"id": str(uuid.uuid4()), "observedAt": None}, "'deletions.0.observedAt'"),
        ({"id": str(uuid.uuid4())}, "'deletions.0.observedAt'"),
        (
            {"id": str(uuid.uuid4()), "observedAt": "2999-01-01T00:00:00Z"},
            "'deletions.0.observedAt'",
        ),
        ({"id": str(uuid.uuid4()), "observedAt": "9999-12-31T23:59:59-01:00"}, "observedAt"),
        ({"id": str(uuid.uuid4()), "observedAt": "2025-03-01T08:00:00Z", "at": 1}, "at"),
    ],
)
def test_a_bad_deletion_is_a_400_naming_its_field(client, deletion, named):
    item = report()
    body = batch(item)
    body["deletions"] = [deletion]
    assert named in _reject(client, body)
    assert _stored_count(client) == 0


def test_deletions_must_be_a_list(client):
    assert "deletions" in _reject(client, {"deletions": {"id": str(uuid.uuid4())}})


def test_bad_cluster_path_and_missing_token(client, anonymous_client):
    response = client.post("/api/v1/ingest/clusters/x'%20OR%201=1/workloads", json=batch())
    assert response.status_code == 400
    assert "clusterId" in response.json()["message"]
    anonymous = anonymous_client.post(ingest_path(), json=batch(report()))
    assert anonymous.status_code == 401
    assert _stored_count(client) == 0


def test_sql_metacharacters_and_unicode_are_stored_verbatim(client):
    name = "o'brien\"; DROP TABLE workloads; -- 名前 🚀 %_\\"
    item = report(name="x", projectName=name, submittedBy=name)
    response = client.post(ingest_path(), content=json.dumps(batch(item)).encode())
    assert response.status_code == 200, response.text
    stored = client.get(f"/api/v1/workloads/{item['id']}").json()
    assert (stored["projectName"], stored["submittedBy"]) == (name, name)
    found = client.get("/api/v1/workloads/count", params={"search": "名前 🚀 %_"}).json()
    assert found == {"count": 1}
