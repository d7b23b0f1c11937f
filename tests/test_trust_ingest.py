"""Regression cases through a real server: one cluster's agent cannot overwrite, move, delete,
feed or rename anything of another cluster (workloads, samples, projects, departments)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.support.access import key_with_role
from tests.support.agent_reports import batch, ingest_path, report
from tests.support.server import ServerProcess

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(module_database_url: str, tmp_path_factory) -> Iterator[ServerProcess]:
    with ServerProcess(module_database_url, log_dir=tmp_path_factory.mktemp("trust")) as process:
        yield process


@pytest.fixture(scope="module")
def admin(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, headers=server.auth_headers()) as client:
        yield client


@pytest.fixture
def clusters(admin) -> dict:
    """Two clusters with their agents; B holds one workload in its project and department."""
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    tag = b[:8]
    victim = report(
        cluster_id=b,
        phase="Running",
        projectId=f"{tag}-p",
        projectName="b-project",
        departmentId=f"{tag}-d",
        departmentName="b-department",
    )
    b_agent = key_with_role(admin, "cluster-agent", "cluster", b)
    written = admin.post(ingest_path(b), json=batch(victim), headers=b_agent)
    assert written.status_code == 200 and written.json()["accepted"] == 1, written.text
    return {
        "a": a,
        "b": b,
        "victim": victim,
        "a_agent": key_with_role(admin, "cluster-agent", "cluster", a),
    }


def _own_units(clusters) -> dict[str, str]:
    """Project and department ids of cluster A's own (ids are global: one set per A)."""
    tag = clusters["a"][:8]
    return {"projectId": f"{tag}-p", "departmentId": f"{tag}-d"}


def _stored(admin, workload_id: str) -> dict:
    response = admin.get(f"/api/v1/workloads/{workload_id}")
    assert response.status_code == 200, response.text
    return response.json()


def _as_a(admin, clusters, *items, deleted=None) -> dict:
    response = admin.post(
        ingest_path(clusters["a"]), json=batch(*items, deleted=deleted), headers=clusters["a_agent"]
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_1_a_workload_id_of_another_cluster_is_refused_and_left_alone(admin, clusters):
    victim = clusters["victim"]
    before = _stored(admin, victim["id"])
    pods_before = admin.get(f"/api/v1/workloads/{victim['id']}/pods").json()
    own = _own_units(clusters)
    mine = report(cluster_id=clusters["a"], **own)
    hijack = report(
        victim["id"], cluster_id=clusters["a"], observed=999, phase="Failed", name="taken-over",
        **own,
    )  # fmt: skip
    result = _as_a(admin, clusters, mine, hijack)
    assert result["accepted"] == 1
    assert [(r["index"], r["field"], r["id"]) for r in result["refused"]] == [
        (1, "workloads.1.id", victim["id"])
    ]
    after = _stored(admin, victim["id"])
    assert (after["clusterId"], after["name"], after["phase"]) == (
        clusters["b"], victim["name"], "Running",
    )  # fmt: skip
    assert after["phaseUpdatedAt"] == before["phaseUpdatedAt"]
    history = admin.get(f"/api/v1/workloads/{victim['id']}/history").json()
    assert "Failed" not in str(history)
    assert admin.get(f"/api/v1/workloads/{victim['id']}/pods").json() == pods_before


def test_1_deletions_and_full_syncs_of_another_cluster_change_nothing(admin, clusters):
    victim = clusters["victim"]
    result = _as_a(admin, clusters, deleted=[victim["id"]])
    assert result["deleted"] == 0
    assert [r["field"] for r in result["refused"]] == ["deletedIds.0"]
    full = admin.post(
        ingest_path(clusters["a"]),
        json=batch(full_sync=True),
        headers=clusters["a_agent"],
    )
    assert full.status_code == 200 and full.json()["deleted"] == 0, full.text
    assert _stored(admin, victim["id"])["deletedAt"] is None


def test_1_metric_samples_for_another_clusters_workload_are_refused(admin, clusters):
    victim = clusters["victim"]
    moment = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    sample = {
        "workloadId": victim["id"],
        "type": "CPU_USAGE_CORES",
        "timestamp": moment,
        "value": 9,
    }
    response = admin.post(
        "/api/v1/ingest/metrics", json={"samples": [sample]}, headers=clusters["a_agent"]
    )
    assert response.status_code == 400, response.text
    assert "samples.0.workloadId" in response.json()["message"]
    start = (datetime.now(UTC) - timedelta(minutes=10)).isoformat()
    end = datetime.now(UTC).isoformat()
    metrics = admin.get(
        f"/api/v1/workloads/{victim['id']}/metrics",
        params={"metricType": "CPU_USAGE_CORES", "start": start, "end": end},
    ).json()
    assert all(not m["values"] for m in metrics["measurements"]), metrics


def test_2_another_clusters_project_cannot_be_renamed_or_moved(admin, clusters):
    victim = clusters["victim"]
    renamer = report(
        cluster_id=clusters["a"], observed=999, projectId=victim["projectId"],
        projectName="renamed", departmentId=_own_units(clusters)["departmentId"],
    )  # fmt: skip
    result = _as_a(admin, clusters, renamer)
    assert [r["field"] for r in result["refused"]] == ["workloads.0.projectId"]
    assert victim["projectId"] in result["refused"][0]["message"]
    after = _stored(admin, victim["id"])
    assert (after["projectName"], after["departmentId"], after["departmentName"]) == (
        "b-project", victim["departmentId"], "b-department",
    )  # fmt: skip
    # Nothing of A's item was written either.
    assert admin.get(f"/api/v1/workloads/{renamer['id']}").status_code == 404


def test_2_another_clusters_department_cannot_be_renamed_or_joined(admin, clusters):
    victim = clusters["victim"]
    joiner = report(
        cluster_id=clusters["a"], observed=999, projectId=_own_units(clusters)["projectId"],
        departmentId=victim["departmentId"], departmentName="renamed",
    )  # fmt: skip
    result = _as_a(admin, clusters, joiner)
    assert [r["field"] for r in result["refused"]] == ["workloads.0.departmentId"]
    assert _stored(admin, victim["id"])["departmentName"] == "b-department"
    # The department administrator of B's department still manages exactly B's project: A's
    # project did not join it, so granting on it is refused.
    department_admin = key_with_role(
        admin, "department-administrator", "department", victim["departmentId"]
    )
    grant = {"subjectType": "user", "subjectId": "someone", "roleId": 4, "scopeType": "project"}
    own = admin.post(
        "/api/v1/authorization/access-rules",
        json={**grant, "scopeId": victim["projectId"]},
        headers=department_admin,
    )
    assert own.status_code == 201, own.text
    foreign = admin.post(
        "/api/v1/authorization/access-rules",
        json={**grant, "scopeId": _own_units(clusters)["projectId"]},
        headers=department_admin,
    )
    assert foreign.status_code == 403, foreign.text


def test_2_an_agent_still_renames_and_moves_its_own_units(admin, clusters):
    a = clusters["a"]
    first = report(
        cluster_id=a, projectId=f"{a[:8]}-p", projectName="old", departmentId=f"{a[:8]}-d1"
    )
    assert _as_a(admin, clusters, first)["refused"] == []
    renamed = {
        **first,
        "projectName": "new",
        "departmentId": f"{a[:8]}-d2",
        "observedAt": "2025-03-01T09:00:00.000Z",
    }
    assert _as_a(admin, clusters, renamed)["accepted"] == 1
    stored = _stored(admin, first["id"])
    assert (stored["projectName"], stored["departmentId"]) == ("new", f"{a[:8]}-d2")
