"""Property: every caller sees exactly the workloads its access rules allow, on every endpoint.

Random organisations, rules and workloads are generated; the expected visible set is computed
here, independently of the server's SQL, and compared with what each endpoint returns.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpufleet.store.tables import (
    access_keys,
    access_rules,
    clusters,
    departments,
    projects,
    workload_nodepools,
    workloads,
)
from tests.support.access import bearer, grant, new_service_account, token_for
from tests.support.databases import ADMIN_ID
from tests.support.factories import BASE_TIME, insert, workload

CLUSTERS = ("11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222")
# project id -> (department id, cluster index)
PROJECTS = {"p1": ("d1", 0), "p2": ("d1", 1), "p3": ("d2", 0), "p4": ("d2", 1), "p5": ("d3", 0)}
DEPARTMENTS = ("d1", "d2", "d3")
# department id -> cluster index (a department belongs to the cluster that reported it first)
DEPARTMENT_CLUSTERS = {"d1": 0, "d2": 1, "d3": 0}
READ_ROLES = ("viewer", "researcher")
METRICS_QUERY = "metricType=GPU_UTILIZATION&start=2024-05-01T00:00:00Z&end=2024-05-01T01:00:00Z"


@dataclass(frozen=True)
class Rule:
    role: str
    scope_type: str
    scope_id: str
    subject_type: str = "service-account"


def _rule_strategy():
    readers = st.one_of(
        st.builds(Rule, st.sampled_from(READ_ROLES), st.just("tenant"), st.just("")),
        st.builds(Rule, st.sampled_from(READ_ROLES), st.just("cluster"), st.sampled_from(CLUSTERS)),
        st.builds(
            Rule, st.sampled_from(READ_ROLES), st.just("department"), st.sampled_from(DEPARTMENTS)
        ),
        st.builds(
            Rule, st.sampled_from(READ_ROLES), st.just("project"), st.sampled_from(sorted(PROJECTS))
        ),
        st.builds(
            Rule,
            st.just("department-administrator"),
            st.just("department"),
            st.sampled_from(DEPARTMENTS),
        ),
    )
    # A cluster agent may ingest but reads nothing.
    agents = st.builds(
        Rule, st.just("cluster-agent"), st.just("cluster"), st.sampled_from(CLUSTERS)
    )
    return st.one_of(readers, agents)


scenario = st.fixed_dictionaries(
    {
        "workloads": st.lists(
            st.tuples(st.sampled_from(sorted(PROJECTS)), st.booleans(), st.integers(0, 3)),
            min_size=0,
            max_size=20,
        ),
        # A rule is granted once (a second grant of it is refused).
        "callers": st.lists(
            st.lists(_rule_strategy(), max_size=3, unique=True), min_size=1, max_size=3
        ),
        "group_rules": st.lists(_rule_strategy(), max_size=2, unique=True),
    }
)


def _visible(rules: list[Rule], item: dict) -> bool:
    for rule in rules:
        if rule.role == "cluster-agent":
            continue
        if (
            rule.scope_type == "tenant"
            or (rule.scope_type == "cluster" and item["clusterId"] == rule.scope_id)
            or (rule.scope_type == "department" and item["departmentId"] == rule.scope_id)
            or (rule.scope_type == "project" and item["projectId"] == rule.scope_id)
        ):
            return True
    return False


def _reset(engine) -> None:
    with engine.begin() as conn:
        conn.execute(workload_nodepools.delete())
        conn.execute(workloads.delete())
        conn.execute(access_rules.delete().where(access_rules.c.subject_id != ADMIN_ID))
        conn.execute(access_keys.delete().where(access_keys.c.client_id != ADMIN_ID))
        for table in (projects, departments, clusters):
            conn.execute(table.delete())
        _store_organisation(conn)


def _store_organisation(conn) -> None:
    times = {"created_at": BASE_TIME, "updated_at": BASE_TIME}
    conn.execute(
        clusters.insert(),
        [
            {"id": c, "name": f"cluster-{i}", "tenant_id": 1, **times}
            for i, c in enumerate(CLUSTERS)
        ],
    )
    conn.execute(
        departments.insert(),
        [
            {"id": d, "name": d, "cluster_id": CLUSTERS[index], **times}
            for d, index in DEPARTMENT_CLUSTERS.items()
        ],
    )
    conn.execute(
        projects.insert(),
        [
            {
                "id": p,
                "name": p,
                "department_id": department,
                "cluster_id": CLUSTERS[index],
                "namespace": f"runai-{p}",
                "updated_at": BASE_TIME,
            }
            for p, (department, index) in PROJECTS.items()
        ],
    )


def _readers(rules: list[Rule]) -> list[Rule]:
    return [rule for rule in rules if rule.role != "cluster-agent"]


def _sees_project(rules: list[Rule], project: str) -> bool:
    department, cluster = PROJECTS[project]
    item = {"clusterId": CLUSTERS[cluster], "departmentId": department, "projectId": project}
    return _visible(rules, item)


def _sees_department(rules: list[Rule], department: str) -> bool:
    """A project reader does not see its department (its figures add up other projects')."""
    cluster = CLUSTERS[DEPARTMENT_CLUSTERS[department]]
    return any(
        rule.scope_type == "tenant"
        or (rule.scope_type == "cluster" and rule.scope_id == cluster)
        or (rule.scope_type == "department" and rule.scope_id == department)
        for rule in _readers(rules)
    )


def _sees_cluster(rules: list[Rule], index: int) -> bool:
    """A reader sees the clusters it reads anything in."""
    cluster = CLUSTERS[index]
    return any(
        rule.scope_type == "tenant"
        or (rule.scope_type == "cluster" and rule.scope_id == cluster)
        or (rule.scope_type == "department" and DEPARTMENT_CLUSTERS[rule.scope_id] == index)
        or (rule.scope_type == "project" and PROJECTS[rule.scope_id][1] == index)
        for rule in _readers(rules)
    )


def _grant_all(client, subject_type: str, subject_id: str, rules: list[Rule]) -> None:
    """Grant the rules through Run:ai's access-rules path, by role id."""
    for rule in rules:
        created = grant(
            client, subject_id, rule.role, rule.scope_type, rule.scope_id, subject_type=subject_type
        )
        assert created.status_code == 201, created.text


def _service_account_with(client, rules: list[Rule]) -> dict[str, str]:
    """Headers of a service account created, granted and signed in through the API."""
    account = new_service_account(client, "caller")
    _grant_all(client, "service-account", account["clientId"], rules)
    return bearer(token_for(client, account["clientId"], account["clientSecret"]))


def _walk(client, headers, deleted: bool) -> list[str]:
    ids, offset = [], 0
    while True:
        page = client.get(
            "/api/v1/workloads",
            params={"limit": 7, "offset": offset, "deleted": str(deleted).lower()},
            headers=headers,
        ).json()
        ids.extend(w["id"] for w in page["workloads"])
        if "next" not in page:
            return ids
        offset = page["next"]


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=scenario)
def test_every_caller_sees_exactly_its_scope(app, client, anonymous_client, data):
    engine = app.state.gpufleet.engine
    tokens = app.state.gpufleet.tokens
    _reset(engine)
    items = []
    for project, deleted, pools in data["workloads"]:
        department, cluster = PROJECTS[project]
        items.append(
            workload(
                projectId=project,
                departmentId=department,
                clusterId=CLUSTERS[cluster],
                deletedAt=BASE_TIME if deleted else None,
                gpus=float(pools),
                currentNodePools=[f"pool-{i}" for i in range(pools)],
            )
        )
    insert(engine, items)

    callers = []
    for rules in data["callers"]:
        headers = _service_account_with(client, rules)
        mine = anonymous_client.get("/api/v1/authorization/me/access-rules/count", headers=headers)
        assert mine.json() == {"count": len(rules)}
        callers.append((headers, rules))
    _grant_all(client, "group", "team", data["group_rules"])
    user = tokens.issue("someone", subject_type="user", groups=("team",))
    callers.append(({"Authorization": f"Bearer {user}"}, data["group_rules"]))

    for headers, rules in callers:
        readable = any(rule.role != "cluster-agent" for rule in rules)
        if not readable:
            for path in (*UNREADABLE_PATHS, "/api/v1/workloads", "/api/v1/workloads/count"):
                response = anonymous_client.get(path, headers=headers)
                assert response.status_code == 403, response.text
            continue
        for deleted in (False, True):
            expected = {
                str(item["id"])
                for item in items
                if _visible(rules, item) and (item["deletedAt"] is not None) == deleted
            }
            listed = _walk(anonymous_client, headers, deleted)
            assert len(listed) == len(set(listed))
            assert set(listed) == expected
            count = anonymous_client.get(
                "/api/v1/workloads/count", params={"deleted": str(deleted).lower()}, headers=headers
            ).json()["count"]
            assert count == len(expected)
        live = [item for item in items if _visible(rules, item) and item["deletedAt"] is None]
        _check_telemetry(anonymous_client, headers, live)
        _check_organisation(anonymous_client, headers, rules, items)
        for item in items:
            expected_status = 200 if _visible(rules, item) else 404
            for suffix in ("", "/history", "/pods", "/metrics?" + METRICS_QUERY):
                response = anonymous_client.get(
                    f"/api/v1/workloads/{item['id']}{suffix}", headers=headers
                )
                assert response.status_code == expected_status, (suffix, response.text)


def _check_telemetry(client, headers, live: list[dict]) -> None:
    def total(kind: str, group_by: str | None = None) -> float:
        params = {"telemetryType": kind}
        if group_by:
            params["groupBy"] = group_by
        response = client.get("/api/v1/workloads/telemetry", params=params, headers=headers)
        assert response.status_code == 200, response.text
        return sum(float(v["value"]) for v in response.json()["values"])

    for group_by in (None, "ProjectId", "ClusterId,DepartmentId"):
        assert total("WORKLOADS_COUNT", group_by) == len(live)
        assert total("GPU_ALLOCATION", group_by) == pytest.approx(
            sum(item["allocatedResources"]["gpu"] for item in live)
        )


UNREADABLE_PATHS = (
    "/api/v1/clusters",
    "/api/v1/org-unit/projects",
    "/api/v1/org-unit/departments/count",
    "/api/v1/org-unit/projects/telemetry?telemetryType=GPU_ALLOCATION",
)


def _listed(client, headers, path: str, key: str) -> list[str]:
    ids, offset = [], 0
    while True:
        response = client.get(path, params={"limit": 2, "offset": offset}, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        ids += [unit["id"] for unit in body[key]]
        if "next" not in body:
            return ids
        offset = body["next"]


def _check_organisation(client, headers, rules: list[Rule], items: list[dict]) -> None:
    """Clusters, projects and departments: listed, counted, read and added up in scope."""
    seen_clusters = [c["uuid"] for c in client.get("/api/v1/clusters", headers=headers).json()]
    expected_clusters = {CLUSTERS[i] for i in range(len(CLUSTERS)) if _sees_cluster(rules, i)}
    assert sorted(seen_clusters) == sorted(expected_clusters)
    for index, cluster in enumerate(CLUSTERS):
        response = client.get(f"/api/v1/clusters/{cluster}", headers=headers)
        assert response.status_code == (200 if _sees_cluster(rules, index) else 404)

    expected_projects = {p for p in PROJECTS if _sees_project(rules, p)}
    projects_listed = _listed(client, headers, "/api/v1/org-unit/projects", "projects")
    assert sorted(projects_listed) == sorted(expected_projects)
    count = client.get("/api/v1/org-unit/projects/count", headers=headers).json()["count"]
    assert count == len(expected_projects)
    live = [item for item in items if item["deletedAt"] is None]
    for project in PROJECTS:
        response = client.get(f"/api/v1/org-unit/projects/{project}", headers=headers)
        if project not in expected_projects:
            assert response.status_code == 404
            continue
        allocated = response.json()["status"]["quotaStatus"]["allocated"]["gpu"]
        mine = [item for item in live if item["projectId"] == project]
        assert allocated == pytest.approx(sum(i["allocatedResources"]["gpu"] for i in mine))
    telemetry = client.get(
        "/api/v1/org-unit/projects/telemetry",
        params={"telemetryType": "GPU_ALLOCATION"},
        headers=headers,
    ).json()
    visible = [item for item in live if item["projectId"] in expected_projects]
    assert float(telemetry["values"][0]["value"]) == pytest.approx(
        sum(i["allocatedResources"]["gpu"] for i in visible)
    )

    expected_departments = {d for d in DEPARTMENTS if _sees_department(rules, d)}
    departments_listed = _listed(client, headers, "/api/v1/org-unit/departments", "departments")
    assert sorted(departments_listed) == sorted(expected_departments)
    for department in DEPARTMENTS:
        response = client.get(f"/api/v1/org-unit/departments/{department}", headers=headers)
        assert response.status_code == (200 if department in expected_departments else 404)


def test_unreadable_workload_is_indistinguishable_from_a_missing_one(app, client, anonymous_client):
    engine = app.state.gpufleet.engine
    (item,) = insert(engine, [workload(projectId="p1", departmentId="d1", clusterId=CLUSTERS[0])])
    headers = _service_account_with(client, [Rule("viewer", "project", "p2")])
    hidden = anonymous_client.get(f"/api/v1/workloads/{item['id']}", headers=headers)
    missing = anonymous_client.get(f"/api/v1/workloads/{uuid.uuid4()}", headers=headers)
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["message"].replace(str(item["id"]), "X") == missing.json()[
        "message"
    ].replace(missing.url.path.rsplit("/", 1)[1], "X")
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(workloads)).scalar_one() == 1
