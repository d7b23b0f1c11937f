"""Clusters, projects and departments through the official Run:ai SDK against a real
``gpufleet serve --demo`` whose inventory sampler runs every second.

Expectations come from the same server (workload telemetry, the listings), so the test checks
that the endpoints agree with each other on the demo's data, not against constants.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from runai.api_client import ApiClient
from runai.configuration import Configuration
from runai.runai_client import RunaiClient

from tests.support.databases import ADMIN_ID, ADMIN_SECRET
from tests.support.server import ServerProcess

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(module_database_url: str, tmp_path_factory) -> Iterator[ServerProcess]:
    with ServerProcess(
        module_database_url,
        demo=True,
        demo_workloads=200,
        extra_env={"GPUFLEET_METRICS_INTERVAL_SECONDS": "1"},
        log_dir=tmp_path_factory.mktemp("server"),
    ) as process:
        yield process


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> Iterator[RunaiClient]:
    config = Configuration(
        client_id=ADMIN_ID, client_secret=ADMIN_SECRET, runai_base_url=server.base_url
    )
    with RunaiClient(ApiClient(config)) as runai:
        yield runai


def _every(get, key: str) -> list[dict]:
    items, offset = [], 0
    while True:
        body = get(offset=offset, limit=5).data
        items += body[key]
        if "next" not in body:
            return items
        offset = body["next"]


def test_clusters(client):
    clusters = client.organizations.clusters
    listed = clusters.get_clusters().data
    assert len(listed) == 2
    for cluster in listed:
        one = clusters.get_cluster_by_uuid(cluster["uuid"]).data
        assert one["name"] == cluster["name"]
        assert one["status"]["state"] in ("WaitingToConnect", "Connected", "Disconnected")


def test_projects_agree_with_workload_telemetry(client):
    projects = client.organizations.projects
    listed = _every(projects.get_projects, "projects")
    assert projects.count_projects().data["count"] == len(listed) > 0
    telemetry = client.workloads.workloads.get_workloads_telemetry(
        telemetry_type="GPU_ALLOCATION", group_by=["ProjectId"]
    ).data
    by_project = {v["groups"][0]["value"]: float(v["value"]) for v in telemetry["values"]}
    for project in listed:
        allocated = project["status"]["quotaStatus"]["allocated"]["gpu"]
        assert allocated == pytest.approx(by_project.get(project["id"], 0.0), abs=1e-6)
        assert projects.get_project(project["id"]).data["name"] == project["name"]
    total = projects.get_projects_telemetry(telemetry_type="GPU_ALLOCATION").data
    assert float(total["values"][0]["value"]) == pytest.approx(sum(by_project.values()))
    grouped = projects.get_projects_telemetry(
        telemetry_type="GPU_ALLOCATION", group_by=["ClusterId", "ParentId"]
    ).data
    assert sum(float(v["value"]) for v in grouped["values"]) == pytest.approx(
        sum(by_project.values())
    )
    heavy = projects.get_projects(sort_by="gpuAllocated", sort_order="desc", limit=1).data
    assert heavy["projects"][0]["status"]["quotaStatus"]["allocated"]["gpu"] == pytest.approx(
        max(by_project.values())
    )


def test_departments(client):
    departments = client.organizations.departments
    listed = _every(departments.get_departments, "departments")
    assert departments.count_departments().data["count"] == len(listed) > 0
    telemetry = client.workloads.workloads.get_workloads_telemetry(
        telemetry_type="GPU_ALLOCATION", group_by=["DepartmentId"]
    ).data
    by_department = {v["groups"][0]["value"]: float(v["value"]) for v in telemetry["values"]}
    for department in listed:
        one = departments.get_department(department["id"]).data
        assert one["status"]["quotaStatus"]["allocated"]["gpu"] == pytest.approx(
            by_department.get(department["id"], 0.0), abs=1e-6
        )
    grouped = departments.get_departments_telemetry(
        telemetry_type="GPU_ALLOCATION", group_by=["CLUSTER_ID"]
    ).data
    assert sum(float(v["value"]) for v in grouped["values"]) == pytest.approx(
        sum(by_department.values())
    )


def _sampled(read, attempts: int = 60) -> dict:
    """The first answer with a value: the sampler runs every second in this server."""
    for _ in range(attempts):
        body = read()
        if all(m["values"] for m in body["measurements"]):
            return body
        time.sleep(0.5)
    raise AssertionError(f"no samples: {body}")


def test_metrics_over_time(client):
    now = datetime.now(UTC)
    start, end = now - timedelta(minutes=5), now + timedelta(minutes=5)
    cluster = client.organizations.clusters.get_clusters().data[0]["uuid"]
    body = _sampled(
        lambda: (
            client.organizations.clusters.get_cluster_metrics(
                cluster, start, end, ["ALLOCATED_GPU", "WORKLOADS_COUNT"], number_of_samples=10
            ).data
        )
    )
    assert {m["type"] for m in body["measurements"]} == {"ALLOCATED_GPU", "WORKLOADS_COUNT"}
    project = client.organizations.projects.get_projects(limit=1).data["projects"][0]
    body = _sampled(
        lambda: (
            client.organizations.projects.get_project_metrics(
                project["id"], ["GPU_ALLOCATION"], start, end, number_of_samples=10
            ).data
        )
    )
    last = float(body["measurements"][0]["values"][-1]["value"])
    current = client.organizations.projects.get_project(project["id"]).data
    assert last == pytest.approx(current["status"]["quotaStatus"]["allocated"]["gpu"])
    department = current["parentId"]
    body = _sampled(
        lambda: (
            client.organizations.departments.get_department_metrics(
                department, ["GPU_ALLOCATION"], start, end, number_of_samples=10
            ).data
        )
    )
    assert body["measurements"][0]["type"] == "GPU_ALLOCATION"
