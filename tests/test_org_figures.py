"""The ``requested`` figures of projects and departments, through the API: what the units'
running and waiting workloads ask for, in total and per node pool, so that the node pools add
up to the unit and the projects to their department; finished, stopped and deleted workloads
ask for nothing."""

from __future__ import annotations

import pytest

from tests.support.agent_reports import CLUSTER_ID, batch, in_project, ingest_path, report

# (project id, name, department id, department name)
VISION = ("10", "vision", "2", "research")
SPEECH = ("11", "speech", "2", "research")
SERVING = ("12", "serving", "3", "platform")


def _workload(
    project: tuple,
    phase: str,
    gpus: float,
    *,
    current: list[str],
    requested: list[str] | None = None,
    allocated: float = 0.0,
):
    project_id, name, department_id, department = project
    return report(
        phase=phase,
        **in_project(project_id, name, department_id, department),
        allocatedResources={"gpu": allocated},
        workloadRequestedResources={"gpu": {"request": gpus}},
        requestedNodePools=requested or [],
        currentNodePools=current,
    )


@pytest.fixture
def workloads(client):
    deleted = _workload(VISION, "Running", 7.0, current=["a100"], allocated=7.0)
    items = [
        # Running: what it asks for, shared equally among the pools it runs in.
        _workload(VISION, "Running", 4.0, current=["a100"], requested=["h100"], allocated=4.0),
        _workload(VISION, "Running", 2.0, current=["a100", "h100"], allocated=2.0),
        # Waiting: in its first requested pool, or the default pool when it names none.
        _workload(VISION, "Pending", 3.0, current=[], requested=["h100", "a100"]),
        _workload(VISION, "Pending", 1.5, current=[]),
        # Asking for nothing: stopped by its owner, finished.
        _workload(VISION, "Stopped", 5.0, current=[], requested=["a100"]),
        _workload(VISION, "Completed", 6.0, current=[], requested=["a100"]),
        _workload(VISION, "Failed", 2.0, current=[], requested=["h100"]),
        deleted,
        _workload(SPEECH, "Pending", 2.0, current=[], requested=["h100"]),
        _workload(SPEECH, "Initializing", 1.0, current=["default"], allocated=1.0),
        _workload(SPEECH, "Stopped", 8.0, current=[], requested=["h100"]),
        _workload(SERVING, "Running", 8.0, current=["h100"], allocated=8.0),
        _workload(SERVING, "Completed", 4.0, current=[], requested=["h100"]),
    ]
    response = client.post(ingest_path(CLUSTER_ID), json=batch(*items))
    assert response.status_code == 200, response.text
    response = client.post(ingest_path(CLUSTER_ID), json=batch(deleted=[deleted["id"]]))
    assert response.status_code == 200, response.text
    return items


def _pools(status: dict, figure: str) -> dict[str, float]:
    return {
        pool["nodePoolName"]: pool[figure]["gpu"]
        for pool in status["nodePoolQuotaStatuses"]
        if pool[figure]["gpu"]
    }


def _project(client, project_id: str) -> dict:
    response = client.get(f"/api/v1/org-unit/projects/{project_id}")
    assert response.status_code == 200, response.text
    return response.json()["status"]


def _department(client, department_id: str) -> dict:
    response = client.get(f"/api/v1/org-unit/departments/{department_id}")
    assert response.status_code == 200, response.text
    return response.json()["status"]


def test_requested_counts_running_and_waiting_workloads_in_their_pools(client, workloads):
    vision = _project(client, "10")
    assert vision["quotaStatus"]["requested"]["gpu"] == pytest.approx(10.5)
    assert _pools(vision, "requested") == pytest.approx({"a100": 5.0, "h100": 4.0, "default": 1.5})
    assert vision["quotaStatus"]["allocated"]["gpu"] == pytest.approx(6.0)
    speech = _project(client, "11")
    assert speech["quotaStatus"]["requested"]["gpu"] == pytest.approx(3.0)
    assert _pools(speech, "requested") == pytest.approx({"h100": 2.0, "default": 1.0})
    serving = _project(client, "12")
    assert serving["quotaStatus"]["requested"]["gpu"] == pytest.approx(8.0)
    assert _pools(serving, "requested") == pytest.approx({"h100": 8.0})


def test_node_pools_add_up_to_the_unit(client, workloads):
    units = [_project(client, p) for p in ("10", "11", "12")]
    units += [_department(client, d) for d in ("2", "3")]
    for status in units:
        for figure in ("requested", "allocated", "allocatedNonPreemptible"):
            pools = [pool[figure]["gpu"] for pool in status["nodePoolQuotaStatuses"]]
            assert sum(pools) == pytest.approx(status["quotaStatus"][figure]["gpu"]), figure
        for pool in status["nodePoolQuotaStatuses"]:
            assert pool["requested"]["gpu"] >= pool["allocated"]["gpu"]


def test_departments_add_up_their_projects(client, workloads):
    listed = client.get("/api/v1/org-unit/departments").json()["departments"]
    totals = {d["id"]: d["status"]["quotaStatus"]["requested"]["gpu"] for d in listed}
    assert totals == pytest.approx({"2": 13.5, "3": 8.0})
    research = _department(client, "2")
    assert research["quotaStatus"]["requested"]["gpu"] == pytest.approx(13.5)
    by_pool: dict[str, float] = {}
    for project_id in ("10", "11"):
        for pool, value in _pools(_project(client, project_id), "requested").items():
            by_pool[pool] = by_pool.get(pool, 0.0) + value
    assert _pools(research, "requested") == pytest.approx(by_pool)


def test_the_projects_list_shows_the_same_figures(client, workloads):
    listed = client.get("/api/v1/org-unit/projects").json()["projects"]
    for project in listed:
        assert project["status"] == _project(client, project["id"])
