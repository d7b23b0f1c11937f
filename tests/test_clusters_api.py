"""``/api/v1/clusters``: registered clusters, their connection state from the agent's last
report, the reference shape, and who sees which cluster."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from gpufleet.settings import Settings
from gpufleet.store.clusters import create_cluster
from gpufleet.store.tables import clusters
from tests.support.access import key_with_role
from tests.support.agent_reports import (
    CLUSTER_ID,
    at,
    batch,
    ingest_path,
    node_path,
    node_report,
    queue_path,
    report,
)
from tests.support.databases import ADMIN_ID, ADMIN_SECRET
from tests.support.reference import ReferenceValidators, load_reference

OTHER = "0b6f1c9e-2f43-4a55-8d1e-7e0f7d9d3a11"
SILENCE = 60


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        admin_client_id=ADMIN_ID,
        admin_client_secret=ADMIN_SECRET,
        cluster_disconnected_after_seconds=SILENCE,
        metrics_interval_seconds=0,
    )


def _register(engine, cluster_id: str, name: str) -> None:
    with engine.begin() as conn:
        create_cluster(conn, cluster_id=cluster_id, name=name, tenant_id=1, now=datetime.now(UTC))


def _by_id(response) -> dict[str, dict]:
    assert response.status_code == 200, response.text
    return {c["uuid"]: c for c in response.json()}


def test_a_registered_cluster_waits_then_connects_then_disconnects(client, engine):
    _register(engine, CLUSTER_ID, "gpu-east")
    waiting = _by_id(client.get("/api/v1/clusters"))[CLUSTER_ID]
    assert waiting["name"] == "gpu-east"
    assert waiting["status"] == {"state": "WaitingToConnect"}
    assert waiting["lastLiveness"] is None

    before = datetime.now(UTC) - timedelta(seconds=1)
    assert client.post(ingest_path(), json=batch(report())).status_code == 200
    connected = client.get(f"/api/v1/clusters/{CLUSTER_ID}").json()
    assert connected["status"] == {"state": "Connected"}
    liveness = datetime.fromisoformat(connected["lastLiveness"].replace("Z", "+00:00"))
    assert liveness >= before

    with engine.begin() as conn:
        conn.execute(
            clusters.update().values(
                last_report_at=datetime.now(UTC) - timedelta(seconds=SILENCE + 5)
            )
        )
    silent = client.get(f"/api/v1/clusters/{CLUSTER_ID}").json()
    assert silent["status"] == {"state": "Disconnected"}
    # Any report brings it back.
    assert client.post(ingest_path(), json=batch()).status_code == 200
    assert client.get(f"/api/v1/clusters/{CLUSTER_ID}").json()["status"]["state"] == "Connected"


def test_liveness_is_written_at_most_every_few_seconds(client, engine):
    assert client.post(ingest_path(), json=batch(report())).status_code == 200
    with engine.connect() as conn:
        first = conn.execute(sa.select(clusters.c.last_report_at)).scalar_one()
    assert client.post(ingest_path(), json=batch(report())).status_code == 200
    with engine.connect() as conn:
        assert conn.execute(sa.select(clusters.c.last_report_at)).scalar_one() == first


def test_metadata_verbosity_leaves_out_the_status(client, engine):
    _register(engine, CLUSTER_ID, "gpu-east")
    (item,) = client.get("/api/v1/clusters", params={"verbosity": "metadata"}).json()
    assert set(item) == {"uuid", "tenantId", "name", "createdAt", "updatedAt"}
    assert client.get("/api/v1/clusters", params={"verbosity": "loud"}).status_code == 400


def test_unknown_and_malformed_ids(client, engine):
    _register(engine, CLUSTER_ID, "gpu-east")
    missing = client.get(f"/api/v1/clusters/{uuid.uuid4()}")
    assert missing.status_code == 404
    assert missing.json()["code"] == 404
    malformed = client.get("/api/v1/clusters/not-a-uuid")
    assert malformed.status_code == 400
    assert "clusterUuid" in malformed.json()["message"]


def test_responses_match_the_reference(client, engine):
    validators = ReferenceValidators(load_reference("runai-adjacent-openapi.json"))
    _register(engine, CLUSTER_ID, "gpu-east")
    _register(engine, OTHER, "gpu-west")
    assert client.post(ingest_path(), json=batch(report())).status_code == 200
    for verbosity in ("full", "metadata"):
        listed = client.get("/api/v1/clusters", params={"verbosity": verbosity}).json()
        assert len(listed) == 2
        validators.response("/api/v1/clusters").validate(listed)
        for cluster_id in (CLUSTER_ID, OTHER):
            one = client.get(f"/api/v1/clusters/{cluster_id}", params={"verbosity": verbosity})
            validators.response("/api/v1/clusters/{clusterUuid}").validate(one.json())


def test_a_scoped_reader_sees_the_clusters_it_reads_in(client, engine):
    _register(engine, OTHER, "gpu-west")
    # Creates project "10" and department "2" of CLUSTER_ID.
    assert client.post(ingest_path(), json=batch(report())).status_code == 200
    for scope_type, scope_id in (
        ("project", "10"),
        ("department", "2"),
        ("cluster", CLUSTER_ID),
    ):
        headers = key_with_role(client, "viewer", scope_type, scope_id)
        assert list(_by_id(client.get("/api/v1/clusters", headers=headers))) == [CLUSTER_ID]
        hidden = client.get(f"/api/v1/clusters/{OTHER}", headers=headers)
        assert hidden.status_code == 404
        assert client.get(f"/api/v1/clusters/{CLUSTER_ID}", headers=headers).status_code == 200
    agent = key_with_role(client, "cluster-agent", "cluster", OTHER)
    assert client.get("/api/v1/clusters", headers=agent).status_code == 403


def test_node_and_queue_reports_count_as_liveness(client, engine):
    _register(engine, CLUSTER_ID, "gpu-east")
    _register(engine, OTHER, "gpu-west")
    nodes = client.post(node_path(), json={"nodes": [node_report()]})
    assert nodes.status_code == 200, nodes.text
    queues = client.post(queue_path(OTHER), json={"observedAt": at(0), "queues": []})
    assert queues.status_code == 200, queues.text
    states = {c["uuid"]: c["status"]["state"] for c in client.get("/api/v1/clusters").json()}
    assert states == {CLUSTER_ID: "Connected", OTHER: "Connected"}
