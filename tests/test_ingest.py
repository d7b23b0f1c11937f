"""Ingest semantics: ordering by observedAt, phase accounting, deletion, organisation names."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from gpufleet.core.times import format_rfc3339
from gpufleet.store.tables import clusters, projects, workload_phase_history, workload_pods
from tests.support.agent_reports import CLUSTER_ID, at, batch, ingest_path, report

OTHER_CLUSTER = "0b6c2d8e-3f59-4a51-8d1e-2a4f7c9e1b00"


def _post(client, *items, cluster_id=CLUSTER_ID, **kwargs):
    response = client.post(ingest_path(cluster_id), json=batch(*items, **kwargs))
    assert response.status_code == 200, response.text
    return response.json()


def _get(client, workload_id):
    response = client.get(f"/api/v1/workloads/{workload_id}")
    assert response.status_code == 200, response.text
    return response.json()


def test_new_workload_is_readable_in_the_reference_shape(client):
    item = report(observed=10, phase="Running", name="résumé-training")
    assert _post(client, item) == {"accepted": 1, "stale": 0, "deleted": 0, "refused": []}
    stored = _get(client, item["id"])
    assert stored["name"] == "résumé-training"
    assert stored["phase"] == "Running"
    assert stored["clusterId"] == CLUSTER_ID
    assert stored["phaseUpdatedAt"] == at(10)
    assert stored["updatedAt"] == at(10)
    assert stored["deletedAt"] is None
    assert stored["currentNodePools"] == ["default"]
    listed = client.get("/api/v1/workloads", params={"filterBy": "nodepool==default"}).json()
    assert [w["id"] for w in listed["workloads"]] == [item["id"]]


def test_older_update_is_stale_and_changes_nothing(client):
    workload_id = str(uuid.uuid4())
    _post(client, report(workload_id, observed=100, phase="Running", name="newer"))
    outcome = _post(client, report(workload_id, observed=50, phase="Failed", name="older"))
    assert outcome == {"accepted": 0, "stale": 1, "deleted": 0, "refused": []}
    stored = _get(client, workload_id)
    assert (stored["name"], stored["phase"]) == ("newer", "Running")
    assert "completedAt" not in stored


def test_replaying_the_same_update_is_idempotent(client):
    item = report(observed=5, phase="Pending")
    first = _post(client, item)
    again = _post(client, item)
    assert first == again == {"accepted": 1, "stale": 0, "deleted": 0, "refused": []}
    history = client.get(f"/api/v1/workloads/{item['id']}/history").json()
    phases = [r["spec"]["phaseUpdate"]["phase"] for r in history["records"]]
    assert phases == ["Pending"]


def test_duplicate_ids_in_one_batch_keep_the_newest(client):
    workload_id = str(uuid.uuid4())
    outcome = _post(
        client,
        report(workload_id, observed=30, phase="Running", name="third"),
        report(workload_id, observed=10, phase="Pending", name="first"),
    )
    assert outcome == {"accepted": 1, "stale": 1, "deleted": 0, "refused": []}
    assert _get(client, workload_id)["name"] == "third"


def test_phase_accounting_matches_hand_computed_durations(client):
    workload_id = str(uuid.uuid4())
    # Pending 0-100, Running 100-400, Pending 400-450, Running 450-600, Completed from 600.
    timeline = [(0, "Pending"), (100, "Running"), (250, "Running"), (400, "Pending")]
    timeline += [(450, "Running"), (600, "Completed"), (700, "Completed")]
    for observed, phase in timeline:
        _post(client, report(workload_id, observed=observed, phase=phase))
    stored = _get(client, workload_id)
    assert stored["totalPendingTimeSeconds"] == 100 + 50
    assert stored["totalRunningTimeSeconds"] == 300 + 150
    assert stored["phaseUpdatedAt"] == at(600)
    assert stored["completedAt"] == at(600)
    history = client.get(f"/api/v1/workloads/{workload_id}/history").json()["records"]
    transitions = [
        (r["spec"]["phaseUpdate"]["phase"], r["meta"]["creationTimestamp"]) for r in history
    ]
    assert transitions == [
        ("Completed", at(600)),
        ("Running", at(450)),
        ("Pending", at(400)),
        ("Running", at(100)),
        ("Pending", at(0)),
    ]


def test_k8s_phase_time_moves_only_when_k8s_phase_changes(client):
    workload_id = str(uuid.uuid4())
    _post(client, report(workload_id, observed=0, phase="Running", k8sPhase="Running"))
    _post(client, report(workload_id, observed=20, phase="Degraded", k8sPhase="Running"))
    assert _get(client, workload_id)["k8sPhaseUpdatedAt"] == at(0)
    _post(client, report(workload_id, observed=40, phase="Degraded", k8sPhase="CrashLoop"))
    stored = _get(client, workload_id)
    assert stored["k8sPhaseUpdatedAt"] == at(40)
    assert stored["phaseUpdatedAt"] == at(20)


def test_leaving_a_terminal_phase_clears_completed_at(client):
    workload_id = str(uuid.uuid4())
    _post(client, report(workload_id, observed=0, phase="Failed"))
    assert _get(client, workload_id)["completedAt"] == at(0)
    _post(client, report(workload_id, observed=30, phase="Running"))
    assert "completedAt" not in _get(client, workload_id)


def test_first_report_keeps_an_earlier_phase_time_from_the_agent(client):
    item = report(observed=500, phase="Running", phaseUpdatedAt=at(200))
    _post(client, item)
    assert _get(client, item["id"])["phaseUpdatedAt"] == at(200)
    # A phase time in the future of the observation is clamped to the observation.
    later = report(observed=500, phase="Running", phaseUpdatedAt=at(900))
    _post(client, later)
    assert _get(client, later["id"])["phaseUpdatedAt"] == at(500)


def test_deleted_ids_soft_delete_only_this_clusters_workloads(client):
    mine = report(observed=0)
    theirs = report(observed=0, cluster_id=OTHER_CLUSTER)
    _post(client, mine)
    _post(client, theirs, cluster_id=OTHER_CLUSTER)
    outcome = _post(client, deleted=[mine["id"], theirs["id"], str(uuid.uuid4())])
    assert outcome["deleted"] == 1
    # The other cluster's id is refused by its position; an unknown id is ignored.
    assert [(r["field"], r["id"]) for r in outcome["refused"]] == [("deletedIds.1", theirs["id"])]
    assert _get(client, mine["id"])["deletedAt"] is not None
    assert _get(client, theirs["id"])["deletedAt"] is None
    live = client.get("/api/v1/workloads").json()["workloads"]
    assert [w["id"] for w in live] == [theirs["id"]]
    deleted = client.get("/api/v1/workloads", params={"deleted": "true"}).json()["workloads"]
    assert [w["id"] for w in deleted] == [mine["id"]]
    # Deleting again changes nothing and counts nothing.
    assert _post(client, deleted=[mine["id"]])["deleted"] == 0


def test_an_update_seen_before_the_deletion_does_not_revive_it(client):
    item = report(observed=0)
    _post(client, item)
    _post(client, deleted=[item["id"]])
    outcome = _post(client, report(item["id"], observed=60, phase="Running"))
    assert outcome["stale"] == 1
    assert _get(client, item["id"])["deletedAt"] is not None


def test_full_sync_deletes_the_missing_and_only_those(client):
    kept, missing = report(observed=0), report(observed=0)
    elsewhere = report(observed=0, cluster_id=OTHER_CLUSTER)
    _post(client, kept, missing)
    _post(client, elsewhere, cluster_id=OTHER_CLUSTER)
    # Reported by a newer request than the snapshot below: not deleted by it.
    newer = report(observed=500)
    _post(client, newer)
    outcome = _post(client, report(kept["id"], observed=100, phase="Running"), full_sync=True)
    assert outcome == {"accepted": 1, "stale": 0, "deleted": 1, "refused": []}
    assert _get(client, missing["id"])["deletedAt"] is not None
    for survivor in (kept, elsewhere, newer):
        assert _get(client, survivor["id"])["deletedAt"] is None
    count = client.get("/api/v1/workloads/count", params={"deleted": "true"}).json()
    assert count == {"count": 1}


def test_empty_full_sync_deletes_every_live_workload_of_the_cluster(client):
    _post(client, report(observed=0), report(observed=0))
    assert _post(client, full_sync=True)["deleted"] == 2
    assert client.get("/api/v1/workloads/count").json() == {"count": 0}


def test_project_rename_reaches_every_workload_of_the_project(client, engine):
    old = report(observed=0, projectName="vision")
    _post(client, old)
    renamed = report(observed=100, projectName="computer-vision", departmentName="R&D")
    _post(client, renamed)
    for workload_id in (old["id"], renamed["id"]):
        stored = _get(client, workload_id)
        assert (stored["projectName"], stored["departmentName"]) == ("computer-vision", "R&D")
    found = client.get("/api/v1/workloads/count", params={"search": "computer-vision"}).json()
    assert found == {"count": 2}
    # A report observed before the rename does not bring the old name back.
    _post(client, report(observed=50, projectName="vision"))
    with engine.connect() as conn:
        name = conn.execute(sa.select(projects.c.name).where(projects.c.id == "10")).scalar()
    assert name == "computer-vision"
    assert _get(client, old["id"])["projectName"] == "computer-vision"


def test_cluster_is_recorded_with_its_reported_name(client, engine):
    body = batch(report(observed=0))
    body["clusterName"] = "gpu-east"
    assert client.post(ingest_path(), json=body).status_code == 200
    with engine.connect() as conn:
        row = conn.execute(sa.select(clusters).where(clusters.c.id == CLUSTER_ID)).one()
        transitions = conn.execute(sa.select(sa.func.count()).select_from(workload_phase_history))
        assert transitions.scalar_one() == 1
    assert row.name == "gpu-east"


def test_openapi_documents_the_ingest_body_self_contained(client):
    document = client.get("/openapi.json").json()
    operation = document["paths"]["/api/v1/ingest/clusters/{clusterId}/workloads"]["post"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert set(schema["properties"]) == {
        "workloads",
        "deletedIds",
        "deletions",
        "fullSync",
        "clusterName",
    }
    item = schema["properties"]["workloads"]["items"]
    assert {"observedAt", "pods"} <= set(item["required"] + list(item["properties"]))
    assert "$defs" not in str(document)
    for path in ("/api/v1/workloads/{workloadId}/history", "/api/v1/workloads/{workloadId}/pods"):
        assert "get" in document["paths"][path]


def _pod_deletions(engine, workload_id):
    with engine.connect() as conn:
        stored = workload_pods.c
        rows = conn.execute(sa.select(stored.deleted_at).where(stored.workload_id == workload_id))
        return [format_rfc3339(row.deleted_at) for row in rows]


def test_a_deletion_is_stamped_with_the_time_the_agent_saw_it(client, engine):
    item = report(observed=0, phase="Running")
    _post(client, item)
    outcome = _post(client, deletions={item["id"]: 300})
    assert outcome == {"accepted": 0, "stale": 0, "deleted": 1, "refused": []}
    assert _get(client, item["id"])["deletedAt"] == at(300)
    assert _pod_deletions(engine, item["id"]) == [at(300)]
    listed = client.get("/api/v1/workloads", params={"deleted": "true"}).json()["workloads"]
    assert [w["deletedAt"] for w in listed] == [at(300)]


def test_a_deletion_from_the_future_is_taken_at_the_servers_time(client):
    item = report(observed=0)
    _post(client, item)
    before = datetime.now(UTC)
    ahead = format_rfc3339(before + timedelta(minutes=5))
    _post(client, deletions={item["id"]: ahead})
    deleted_at = datetime.fromisoformat(_get(client, item["id"])["deletedAt"])
    assert before - timedelta(seconds=1) <= deleted_at <= datetime.now(UTC)


def test_a_deletion_seen_before_the_last_observation_still_deletes_at_that_observation(client):
    item = report(observed=600, phase="Running")
    _post(client, item)
    assert _post(client, deletions={item["id"]: 300})["deleted"] == 1
    # Seen live at 600, so not gone before then; the deletion is not lost either.
    assert _get(client, item["id"])["deletedAt"] == at(600)
    # The deletion is the newest observation: neither an earlier report nor a replay of the
    # last one brings the workload back; one observed after it does.
    for observed in (500, 600):
        assert _post(client, report(item["id"], observed=observed, phase="Running"))["stale"] == 1
        assert _get(client, item["id"])["deletedAt"] == at(600)
    assert _post(client, report(item["id"], observed=601, phase="Running"))["accepted"] == 1
    assert _get(client, item["id"])["deletedAt"] is None


def test_an_update_seen_before_a_timed_deletion_does_not_revive_it(client):
    item = report(observed=0)
    _post(client, item)
    _post(client, deletions={item["id"]: 120})
    assert _post(client, report(item["id"], observed=60, phase="Running"))["stale"] == 1
    assert _post(client, report(item["id"], observed=120, phase="Running"))["stale"] == 1
    stored = _get(client, item["id"])
    assert (stored["phase"], stored["deletedAt"]) == ("Pending", at(120))


def test_an_id_listed_twice_is_deleted_at_its_earliest_time(client):
    first, second = report(observed=0), report(observed=0)
    _post(client, first, second)
    body = batch(deleted=[first["id"]], deletions={first["id"]: 200, second["id"]: 100})
    body["deletions"].append({"id": second["id"], "observedAt": at(50)})
    response = client.post(ingest_path(), json=body)
    assert response.json()["deleted"] == 2, response.text
    assert _get(client, first["id"])["deletedAt"] == at(200)
    assert _get(client, second["id"])["deletedAt"] == at(50)


def test_timed_deletions_of_another_cluster_are_refused_by_position(client):
    mine = report(observed=0)
    theirs = report(observed=0, cluster_id=OTHER_CLUSTER)
    _post(client, mine)
    _post(client, theirs, cluster_id=OTHER_CLUSTER)
    outcome = _post(client, deletions={mine["id"]: 10, theirs["id"]: 10})
    assert outcome["deleted"] == 1
    assert [(r["index"], r["field"], r["id"]) for r in outcome["refused"]] == [
        (1, "deletions.1.id", theirs["id"])
    ]
    assert _get(client, theirs["id"])["deletedAt"] is None
