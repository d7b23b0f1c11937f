"""``/api/v1/org-unit/projects`` and ``/departments``: the reference shapes, allocation that
agrees with workload telemetry, filters, sorting, paging and scope."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from gpufleet.store.inventory_samples import sample_inventory
from tests.support.access import key_with_role
from tests.support.agent_reports import (
    CLUSTER_ID,
    batch,
    in_project,
    ingest_path,
    node_path,
    node_report,
    report,
)
from tests.support.reference import ReferenceValidators, load_reference

OTHER = "0b6f1c9e-2f43-4a55-8d1e-7e0f7d9d3a11"
DEPARTMENT_UUID = "6b1f3f0e-7d5c-4c1e-9a1e-2f0d6c9b8a70"
# (project id, name, department id, department name, cluster)
PROJECTS = (
    ("10", "vision", "2", "research", CLUSTER_ID),
    ("11", "speech", "2", "research", CLUSTER_ID),
    ("12", "serving", DEPARTMENT_UUID, "platform", CLUSTER_ID),
    ("20", "recsys", "3", "applied", OTHER),
)


def _workload(project: tuple, phase: str, gpus: float, pools: list[str], priority: int = 50):
    project_id, name, department_id, department, cluster = project
    return report(
        cluster_id=cluster,
        phase=phase,
        **in_project(project_id, name, department_id, department),
        priority=priority,
        allocatedResources={"gpu": gpus},
        workloadRequestedResources={"gpu": {"request": gpus or 1.0}},
        currentNodePools=pools,
    )


@pytest.fixture
def organisation(client):
    items = [
        _workload(PROJECTS[0], "Running", 4.0, ["a100"]),
        _workload(PROJECTS[0], "Running", 2.0, ["a100", "h100"], priority=125),
        _workload(PROJECTS[0], "Pending", 0.0, []),
        _workload(PROJECTS[1], "Running", 1.0, ["default"]),
        _workload(PROJECTS[2], "Running", 8.0, ["h100"], priority=100),
        _workload(PROJECTS[3], "Running", 3.0, ["l40s"]),
    ]
    for cluster in (CLUSTER_ID, OTHER):
        mine = [i for i in items if i["clusterId"] == cluster]
        response = client.post(ingest_path(cluster), json=batch(*mine))
        assert response.status_code == 200, response.text
        assert response.json()["accepted"] == len(mine)
    return items


def _all(client, path: str, key: str, headers=None, **params) -> list[dict]:
    items, offset = [], 0
    while True:
        response = client.get(
            path, params={**params, "offset": offset, "limit": 2}, headers=headers
        )
        assert response.status_code == 200, response.text
        body = response.json()
        items += body[key]
        if "next" not in body:
            return items
        offset = body["next"]


def _telemetry(client, group_by: str, headers=None) -> dict[str, float]:
    response = client.get(
        "/api/v1/workloads/telemetry",
        params={"telemetryType": "GPU_ALLOCATION", "groupBy": group_by},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    return {v["groups"][0]["value"]: float(v["value"]) for v in response.json()["values"]}


def test_allocation_equals_workload_telemetry(client, organisation):
    projects = {p["id"]: p for p in _all(client, "/api/v1/org-unit/projects", "projects")}
    assert set(projects) == {p[0] for p in PROJECTS}
    by_project = _telemetry(client, "ProjectId")
    for project_id, project in projects.items():
        quota_status = project["status"]["quotaStatus"]
        assert quota_status["allocated"]["gpu"] == pytest.approx(by_project.get(project_id, 0.0))
        pools = project["status"]["nodePoolQuotaStatuses"]
        assert sum(p["allocated"]["gpu"] for p in pools) == pytest.approx(
            quota_status["allocated"]["gpu"]
        )
    vision = projects["10"]
    pools = {p["nodePoolName"]: p for p in vision["status"]["nodePoolQuotaStatuses"]}
    # The two-pool workload's 2 GPUs are shared equally between its pools.
    assert pools["a100"]["allocated"]["gpu"] == pytest.approx(5.0)
    assert pools["h100"]["allocated"]["gpu"] == pytest.approx(1.0)
    assert vision["status"]["quotaStatus"]["allocatedNonPreemptible"]["gpu"] == pytest.approx(2.0)
    assert vision["status"]["quotaStatus"]["requested"]["gpu"] == pytest.approx(7.0)
    assert vision["parentId"] == "2" and "parent" not in vision
    assert projects["12"]["parent"] == {"id": DEPARTMENT_UUID, "name": "platform"}

    departments = {d["id"]: d for d in _all(client, "/api/v1/org-unit/departments", "departments")}
    by_department = _telemetry(client, "DepartmentId")
    assert set(departments) == {"2", "3", DEPARTMENT_UUID}
    for department_id, department in departments.items():
        allocated = department["status"]["quotaStatus"]["allocated"]["gpu"]
        assert allocated == pytest.approx(by_department[department_id])


def test_filters_sorting_search_and_count(client, organisation):
    def names(**params) -> list[str]:
        return [p["name"] for p in _all(client, "/api/v1/org-unit/projects", "projects", **params)]

    assert names() == ["recsys", "serving", "speech", "vision"]
    assert names(sortBy="gpuAllocated", sortOrder="desc") == [
        "serving",
        "vision",
        "recsys",
        "speech",
    ]
    assert names(filterBy="gpuAllocated>=3") == ["recsys", "serving", "vision"]
    assert names(filterBy=f"clusterId=={OTHER}") == ["recsys"]
    assert names(filterBy="parentName==research,phase==Ready") == ["speech", "vision"]
    assert names(search="SPEE") == ["speech"]
    count = client.get(
        "/api/v1/org-unit/projects/count", params={"filterBy": "departmentId==2"}
    ).json()
    assert count == {"count": 2}
    for bad in ("nope==1", "gpuAllocated=@3", "createdAt>=yesterday"):
        response = client.get("/api/v1/org-unit/projects", params={"filterBy": bad})
        assert response.status_code == 400, bad
        assert "filterBy" in response.json()["message"]
    assert client.get("/api/v1/org-unit/projects", params={"sortBy": "x"}).status_code == 400
    assert client.get("/api/v1/org-unit/departments/count").json() == {"count": 3}


def test_responses_match_the_reference(client, organisation):
    validators = ReferenceValidators(load_reference("runai-adjacent-openapi.json"))
    projects = client.get("/api/v1/org-unit/projects").json()
    validators.response("/api/v1/org-unit/projects").validate(projects)
    for project in projects["projects"]:
        one = client.get(f"/api/v1/org-unit/projects/{project['id']}").json()
        validators.response("/api/v1/org-unit/projects/{projectId}").validate(one)
        assert one == project
    departments = client.get("/api/v1/org-unit/departments").json()
    validators.response("/api/v1/org-unit/departments").validate(departments)
    for department in departments["departments"]:
        one = client.get(f"/api/v1/org-unit/departments/{department['id']}").json()
        validators.response("/api/v1/org-unit/departments/{departmentId}").validate(one)
    for path in ("/api/v1/org-unit/projects/count", "/api/v1/org-unit/departments/count"):
        validators.response(path).validate(client.get(path).json())


def test_scope(client, organisation):
    viewer = key_with_role(client, "viewer", "project", "10")
    listed = _all(client, "/api/v1/org-unit/projects", "projects", headers=viewer)
    assert [p["id"] for p in listed] == ["10"]
    assert client.get("/api/v1/org-unit/projects/11", headers=viewer).status_code == 404
    assert client.get("/api/v1/org-unit/departments/2", headers=viewer).status_code == 404
    assert _all(client, "/api/v1/org-unit/departments", "departments", headers=viewer) == []

    department_admin = key_with_role(client, "department-administrator", "department", "2")
    listed = _all(client, "/api/v1/org-unit/projects", "projects", headers=department_admin)
    assert sorted(p["id"] for p in listed) == ["10", "11"]
    assert client.get("/api/v1/org-unit/departments/2", headers=department_admin).status_code == 200

    missing = client.get(f"/api/v1/org-unit/projects/{uuid.uuid4()}")
    assert missing.status_code == 404
    agent = key_with_role(client, "cluster-agent", "cluster", CLUSTER_ID)
    assert client.get("/api/v1/org-unit/projects", headers=agent).status_code == 403


def _org_telemetry(client, units: str, headers=None, **params) -> dict:
    response = client.get(f"/api/v1/org-unit/{units}/telemetry", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_telemetry_adds_up_the_units(client, organisation):
    validators = ReferenceValidators(load_reference("runai-adjacent-openapi.json"))
    projects = {p["id"]: p for p in _all(client, "/api/v1/org-unit/projects", "projects")}
    total = _org_telemetry(client, "projects", telemetryType="GPU_ALLOCATION")
    validators.response("/api/v1/org-unit/projects/telemetry").validate(total)
    assert [float(v["value"]) for v in total["values"]] == [pytest.approx(18.0)]

    by_parent = _org_telemetry(
        client, "projects", telemetryType="GPU_ALLOCATION", groupBy="ClusterId,ParentId"
    )
    validators.response("/api/v1/org-unit/projects/telemetry").validate(by_parent)
    got = {tuple(g["value"] for g in v["groups"]): float(v["value"]) for v in by_parent["values"]}
    expected: dict[tuple[str, str], float] = {}
    for project in projects.values():
        key = (project["clusterId"], project["parentId"])
        expected[key] = (
            expected.get(key, 0.0) + project["status"]["quotaStatus"]["allocated"]["gpu"]
        )
    assert got == pytest.approx(expected)
    names = {v["groups"][1]["name"] for v in by_parent["values"]}
    assert names == {"research", "platform", "applied"}

    by_pool = _org_telemetry(
        client, "projects", telemetryType="GPU_ALLOCATION_NON_PREEMPTIBLE", groupBy="NodepoolId"
    )
    pools = {v["groups"][0]["name"]: float(v["value"]) for v in by_pool["values"]}
    assert pools == pytest.approx({"a100": 1.0, "h100": 9.0, "default": 0.0, "l40s": 0.0})
    h100 = next(
        v["groups"][0]["value"] for v in by_pool["values"] if v["groups"][0]["name"] == "h100"
    )
    one_pool = _org_telemetry(client, "projects", telemetryType="GPU_ALLOCATION", nodepoolId=h100)
    assert float(one_pool["values"][0]["value"]) == pytest.approx(9.0)

    departments = _org_telemetry(
        client, "departments", telemetryType="GPU_ALLOCATION", groupBy="CLUSTER_ID"
    )
    validators.response("/api/v1/org-unit/departments/telemetry").validate(departments)
    by_cluster = {v["groups"][0]["value"]: float(v["value"]) for v in departments["values"]}
    assert by_cluster == pytest.approx({CLUSTER_ID: 15.0, OTHER: 3.0})
    only_research = _org_telemetry(
        client, "departments", telemetryType="GPU_ALLOCATION", departmentId="2"
    )
    assert float(only_research["values"][0]["value"]) == pytest.approx(7.0)


def test_telemetry_keeps_to_the_scope_and_refuses_what_it_cannot_answer(client, organisation):
    viewer = key_with_role(client, "viewer", "project", "11")
    mine = _org_telemetry(client, "projects", headers=viewer, telemetryType="GPU_ALLOCATION")
    assert float(mine["values"][0]["value"]) == pytest.approx(1.0)
    theirs = _org_telemetry(client, "departments", headers=viewer, telemetryType="GPU_ALLOCATION")
    assert float(theirs["values"][0]["value"]) == 0.0
    for params in (
        {"telemetryType": "CPU_LIMIT"},
        {"telemetryType": "GPU_ALLOCATION", "groupBy": "Phase"},
        {"telemetryType": "GPU_ALLOCATION", "clusterId": "east"},
        {"telemetryType": "GPU_ALLOCATION", "groupBy": "ClusterId,ParentId,NodepoolId"},
        {},
    ):
        response = client.get("/api/v1/org-unit/projects/telemetry", params=params)
        assert response.status_code == 400, params
        assert response.json()["code"] == 400


def _holding(project: tuple, node: str, cpu: float, memory: str, phase="Running", priority=50):
    """A workload of ``project`` with one pod holding CPU and memory on ``node``."""
    item = _workload(project, "Running", 0.0, [], priority)
    item["pods"] = [
        {"name": f"pod-{uuid.uuid4().hex[:6]}", "uid": str(uuid.uuid4()), "nodeName": node,
         "phase": phase, "allocatedResources": {"cpu": cpu, "cpuMemory": memory}}
    ]  # fmt: skip
    return item


def test_cpu_and_memory_allocation_are_what_the_units_pods_hold(client, engine):
    nodes = [
        node_report(name="a100-n", nodePool="a100"),
        node_report(name="h100-n", nodePool="h100"),
    ]
    assert client.post(node_path(), json={"nodes": nodes}).json()["accepted"] == 2
    items = [
        _holding(PROJECTS[0], "a100-n", 2.0, "4Gi"),
        _holding(PROJECTS[0], "h100-n", 1.5, "1G", priority=125),
        _holding(PROJECTS[1], "a100-n", 0.5, "500M"),
        _holding(PROJECTS[1], "a100-n", 4.0, "8G", phase="Succeeded"),  # holds nothing
    ]
    assert client.post(ingest_path(), json=batch(*items)).status_code == 200

    def values(units: str, kind: str, **params) -> dict:
        body = _org_telemetry(client, units, telemetryType=kind, **params)
        return {
            tuple(g["name"] for g in v.get("groups", [])): float(v["value"]) for v in body["values"]
        }

    four_gib = 4 * 2**30 / 1e6
    assert values("projects", "CPU_ALLOCATION") == {(): pytest.approx(4000)}
    assert values("projects", "CPU_ALLOCATION_NON_PREEMPTIBLE") == {(): pytest.approx(1500)}
    assert values("projects", "CPU_ALLOCATION", groupBy="NodepoolId") == {
        ("a100",): pytest.approx(2500),
        ("h100",): pytest.approx(1500),
    }
    assert values("projects", "MEMORY_ALLOCATION", groupBy="ParentId") == {
        ("research",): pytest.approx(four_gib + 1500)
    }
    assert values("projects", "MEMORY_ALLOCATION_NON_PREEMPTIBLE") == {(): pytest.approx(1000)}
    assert values("departments", "CPU_ALLOCATION", nodepoolName="a100") == {(): pytest.approx(2500)}
    viewer = key_with_role(client, "viewer", "project", "11")
    mine = _org_telemetry(client, "projects", headers=viewer, telemetryType="CPU_ALLOCATION")
    assert float(mine["values"][0]["value"]) == pytest.approx(500)

    # The sampled metrics agree, per node pool too.
    now = datetime.now(UTC)
    with engine.begin() as conn:
        sample_inventory(conn, now, 60)
    window = {"start": (now - timedelta(minutes=1)).isoformat(),
              "end": (now + timedelta(minutes=1)).isoformat(), "numberOfSamples": 1}  # fmt: skip
    response = client.get(
        "/api/v1/org-unit/projects/10/metrics",
        params={**window, "metricType": "CPU_ALLOCATION_MILLICORES", "nodepoolName": "a100"},
    )
    assert response.status_code == 200, response.text
    assert [v["value"] for v in response.json()["measurements"][0]["values"]] == ["2000"]


def _queue(name: str, unit: dict, quotas: list[dict], source: str = "kai") -> dict:
    return {"source": source, "name": name, "orgUnit": unit, "quotas": quotas}


def _project_unit(project: tuple) -> dict:
    project_id, name, department_id, department, _ = project
    return {
        "type": "project",
        "id": project_id,
        "name": name,
        "departmentId": department_id,
        "departmentName": department,
        "namespace": f"runai-{name}",
    }


def test_quotas_come_from_the_most_trusted_queues(client, organisation):
    research = {"type": "department", "id": "2", "name": "research"}
    queues = [
        _queue(
            "vision",
            _project_unit(PROJECTS[0]),
            [
                {"nodePool": "a100", "gpu": {"deserved": 4, "limit": 8, "overQuotaWeight": 2}},
                {"nodePool": "h100", "gpu": {"deserved": 2}, "cpu": {"deserved": 8000}},
            ],
        ),
        # KAI wins over the quota file for the same project.
        _queue(
            "vision-file",
            _project_unit(PROJECTS[0]),
            [{"nodePool": "a100", "gpu": {"deserved": 99}}],
            "file",
        ),
        _queue(
            "speech",
            _project_unit(PROJECTS[1]),
            [{"nodePool": "default", "gpu": {"deserved": 1}}],
            "file",
        ),
        _queue("research", research, [{"nodePool": "a100", "gpu": {"deserved": 10, "limit": -1}}]),
    ]
    response = client.post(
        f"/api/v1/ingest/clusters/{CLUSTER_ID}/queues",
        json={"observedAt": organisation[0]["observedAt"], "queues": queues},
    )
    assert response.status_code == 200, response.text
    assert response.json()["refused"] == []

    vision = client.get("/api/v1/org-unit/projects/10").json()
    assert vision["totalResources"] == {"gpuQuota": 6.0, "cpuQuota": 8000.0, "memoryQuota": None}
    resources = {r["nodePool"]["name"]: r for r in vision["resources"]}
    assert resources["a100"]["gpu"] == {"deserved": 4.0, "limit": 8.0, "overQuotaWeight": 2.0}
    assert resources["h100"]["cpu"]["deserved"] == 8000.0
    assert client.get("/api/v1/org-unit/projects/11").json()["totalResources"]["gpuQuota"] == 1.0
    assert client.get("/api/v1/org-unit/projects/20").json()["totalResources"]["gpuQuota"] is None

    names = [
        p["name"]
        for p in client.get(
            "/api/v1/org-unit/projects", params={"sortBy": "totalGpuQuota", "sortOrder": "desc"}
        ).json()["projects"]
    ]
    # Units without a quota sort as the largest value.
    assert names[:2] in (["recsys", "serving"], ["serving", "recsys"])
    assert names[2:] == ["vision", "speech"]
    over = client.get("/api/v1/org-unit/projects", params={"filterBy": "totalGpuQuota>=2"})
    assert [p["name"] for p in over.json()["projects"]] == ["vision"]

    department = client.get("/api/v1/org-unit/departments/2").json()
    assert department["resources"][0]["gpu"] == {
        "deserved": 10.0,
        "limit": None,
        "overQuotaWeight": None,
    }
    aggregated = {
        a["nodePool"]["name"]: a["gpu"]["deserved"]
        for a in department["projectsAggregatedResources"]
    }
    assert aggregated == {"a100": 4.0, "h100": 2.0, "default": 1.0}
    validators = ReferenceValidators(load_reference("runai-adjacent-openapi.json"))
    validators.response("/api/v1/org-unit/departments/{departmentId}").validate(department)
    validators.response("/api/v1/org-unit/projects/{projectId}").validate(vision)

    quota = _org_telemetry(client, "projects", telemetryType="GPU_QUOTA", groupBy="ParentId")
    by_parent = {v["groups"][0]["value"]: float(v["value"]) for v in quota["values"]}
    assert by_parent == {"2": 7.0}
    departments = _org_telemetry(client, "departments", telemetryType="GPU_QUOTA")
    assert float(departments["values"][0]["value"]) == 10.0
