"""Who may ingest: a cluster agent for its own cluster only, administrators anywhere."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.support.access import key_with_role
from tests.support.agent_reports import CLUSTER_ID, report
from tests.support.factories import insert, workload

OTHER_CLUSTER = "0e1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b"


def _ingest(client, cluster: str, headers: dict, items: list[dict]):
    return client.post(
        f"/api/v1/ingest/clusters/{cluster}/workloads",
        json={"workloads": items, "deletedIds": [], "fullSync": False},
        headers=headers,
    )


@pytest.fixture
def agent(client) -> dict:
    return key_with_role(client, "cluster-agent", "cluster", CLUSTER_ID)


def test_agent_ingests_for_its_cluster_only(client, agent):
    accepted = _ingest(client, CLUSTER_ID, agent, [report(phase="Running")])
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["accepted"] == 1
    refused = _ingest(
        client, OTHER_CLUSTER, agent, [report(phase="Running", cluster_id=OTHER_CLUSTER)]
    )
    assert refused.status_code == 403
    assert OTHER_CLUSTER in refused.json()["message"]
    # The administrator may ingest anywhere.
    assert _ingest(client, OTHER_CLUSTER, {}, [report(cluster_id=OTHER_CLUSTER)]).status_code == 200


def test_agent_reads_nothing(client, agent):
    for path in ("/api/v1/workloads", "/api/v1/workloads/count"):
        assert client.get(path, headers=agent).status_code == 403


def test_readers_cannot_ingest(client):
    viewer = key_with_role(client, "viewer", "tenant")
    assert _ingest(client, CLUSTER_ID, viewer, [report()]).status_code == 403
    samples = {"samples": []}
    assert client.post("/api/v1/ingest/metrics", json=samples, headers=viewer).status_code == 403


def test_metric_samples_only_for_the_agents_cluster(client, engine, agent):
    mine, theirs = insert(
        engine, [workload(clusterId=CLUSTER_ID), workload(clusterId=OTHER_CLUSTER)]
    )
    moment = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()

    def sample(workload_id: str) -> dict:
        return {
            "workloadId": str(workload_id),
            "type": "CPU_USAGE_CORES",
            "timestamp": moment,
            "value": 1.5,
        }

    ok = client.post(
        "/api/v1/ingest/metrics", json={"samples": [sample(mine["id"])]}, headers=agent
    )
    assert ok.status_code == 200, ok.text
    hidden = client.post(
        "/api/v1/ingest/metrics",
        json={"samples": [sample(mine["id"]), sample(theirs["id"])]},
        headers=agent,
    )
    assert hidden.status_code == 400
    assert "1" in hidden.json()["message"]
    assert "no such workload" in hidden.json()["message"]
