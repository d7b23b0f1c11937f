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

from gpufleet.store.tables import access_keys, access_rules, workload_nodepools, workloads
from tests.support.access import bearer, grant, new_service_account, token_for
from tests.support.databases import ADMIN_ID
from tests.support.factories import BASE_TIME, insert, workload

CLUSTERS = ("11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222")
# project id -> (department id, cluster index)
PROJECTS = {"p1": ("d1", 0), "p2": ("d1", 1), "p3": ("d2", 0), "p4": ("d2", 1), "p5": ("d3", 0)}
DEPARTMENTS = ("d1", "d2", "d3")
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
        "callers": st.lists(st.lists(_rule_strategy(), max_size=3), min_size=1, max_size=3),
        "group_rules": st.lists(_rule_strategy(), max_size=2),
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
            for path in ("/api/v1/workloads", "/api/v1/workloads/count"):
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
