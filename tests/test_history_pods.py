"""The history and pods of a workload: paging, the guard, and who may read them."""

from __future__ import annotations

import uuid

from tests.support.access import key_with_role
from tests.support.agent_reports import CLUSTER_ID, batch, ingest_path, report

OTHER_CLUSTER = "7c9e6679-7425-40de-944b-e07fc1f90ae7"


def _post(client, *items, cluster_id=CLUSTER_ID):
    response = client.post(ingest_path(cluster_id), json=batch(*items))
    assert response.status_code == 200, response.text
    return response.json()


def test_history_pages_newest_first(client):
    workload_id = str(uuid.uuid4())
    phases = ["Creating", "Pending", "Initializing", "Running", "Completed"]
    for index, phase in enumerate(phases):
        _post(client, report(workload_id, observed=index * 10, phase=phase, phaseMessage=phase))
    first = client.get(f"/api/v1/workloads/{workload_id}/history", params={"limit": 2}).json()
    assert [r["phase"] for r in first["records"]] == ["Completed", "Running"]
    assert first["records"][0]["message"] == "Completed"
    assert first["next"] == 2
    last = client.get(
        f"/api/v1/workloads/{workload_id}/history", params={"offset": 4, "limit": 2}
    ).json()
    assert [r["phase"] for r in last["records"]] == ["Creating"]
    assert "next" not in last


def test_history_and_pods_of_unknown_or_malformed_ids(client):
    unknown = str(uuid.uuid4())
    for suffix in ("history", "pods"):
        missing = client.get(f"/api/v1/workloads/{unknown}/{suffix}")
        assert missing.status_code == 404
        assert set(missing.json()) >= {"code", "message"}
        malformed = client.get(f"/api/v1/workloads/not-a-uuid'--/{suffix}")
        assert malformed.status_code == 400
        assert "workloadId" in malformed.json()["message"]
    bad_limit = client.get(f"/api/v1/workloads/{unknown}/history", params={"limit": "many"})
    assert bad_limit.status_code == 400


def test_pods_are_the_last_reported_and_not_replaced_by_stale_updates(client):
    workload_id = str(uuid.uuid4())
    pods = [
        {"name": "w-1", "uid": "u1", "nodeName": "n1", "phase": "Running", "gpuIndices": ["2"]},
        {"name": "w-0", "uid": "u0", "nodeName": "n2", "phase": "Running", "gpuIndices": []},
    ]
    _post(client, report(workload_id, observed=10, phase="Running", pods=pods))
    stale_pods = [{"name": "old", "uid": "old", "nodeName": None, "phase": "Pending"}]
    _post(client, report(workload_id, observed=5, phase="Pending", pods=stale_pods))
    listed = client.get(f"/api/v1/workloads/{workload_id}/pods").json()["pods"]
    assert [(p["name"], p["nodeName"], p["gpuIndices"]) for p in listed] == [
        ("w-0", "n2", []),
        ("w-1", "n1", ["2"]),
    ]
    _post(client, report(workload_id, observed=20, phase="Completed", pods=[]))
    assert client.get(f"/api/v1/workloads/{workload_id}/pods").json() == {"pods": []}


def test_history_and_pods_follow_the_callers_read_scope(client, anonymous_client):
    mine = report(observed=0, phase="Running", projectId="10")
    theirs = report(observed=0, phase="Running", projectId="20", cluster_id=OTHER_CLUSTER)
    _post(client, mine)
    _post(client, theirs, cluster_id=OTHER_CLUSTER)
    viewer = key_with_role(client, "viewer", "project", "10")
    for suffix in ("history", "pods"):
        visible = anonymous_client.get(f"/api/v1/workloads/{mine['id']}/{suffix}", headers=viewer)
        assert visible.status_code == 200, visible.text
        # Outside the scope looks exactly like an unknown workload.
        hidden = anonymous_client.get(f"/api/v1/workloads/{theirs['id']}/{suffix}", headers=viewer)
        assert hidden.status_code == 404
        assert anonymous_client.get(f"/api/v1/workloads/{mine['id']}/{suffix}").status_code == 401


def test_a_cluster_agent_ingests_only_for_its_cluster_and_reads_nothing(client, anonymous_client):
    agent = key_with_role(client, "cluster-agent", "cluster", CLUSTER_ID)
    own = anonymous_client.post(ingest_path(), json=batch(report()), headers=agent)
    assert own.status_code == 200, own.text
    foreign = anonymous_client.post(
        ingest_path(OTHER_CLUSTER), json=batch(report(cluster_id=OTHER_CLUSTER)), headers=agent
    )
    assert foreign.status_code == 403
    assert OTHER_CLUSTER in foreign.json()["message"]
    assert anonymous_client.get("/api/v1/workloads", headers=agent).status_code == 403
    assert client.get("/api/v1/workloads/count").json() == {"count": 1}
