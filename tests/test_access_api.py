"""Access administration in Run:ai's shapes: service accounts, access rules by role id, roles,
permissions, the caller's own rules and the audit log."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from gpufleet.auth import administration
from gpufleet.auth.administration import FULL_ACCESS, Actor
from gpufleet.core.errors import Invalid
from gpufleet.core.roles import Role, ScopeType, SubjectType
from gpufleet.store.tables import access_rules, projects
from tests.support.access import (
    audit_entries,
    audit_window,
    bearer,
    grant,
    new_service_account,
    token_for,
)
from tests.support.databases import ADMIN_ID

SERVICE_ACCOUNTS = "/api/v1/service-accounts"
RULES = "/api/v1/authorization/access-rules"


@pytest.fixture
def org(engine):
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            projects.insert(),
            [
                {
                    "id": "p1",
                    "name": "vision",
                    "department_id": "d1",
                    "cluster_id": "c",
                    "namespace": "runai-vision",
                    "updated_at": now,
                },
                {
                    "id": "p2",
                    "name": "nlp",
                    "department_id": "d2",
                    "cluster_id": "c",
                    "namespace": "runai-nlp",
                    "updated_at": now,
                },
            ],
        )


def test_service_account_secret_is_shown_once_and_works(client):
    account = new_service_account(client, "build-bot")
    assert set(account) == {"id", "name", "clientId", "clientSecret"}
    shown = client.get(f"{SERVICE_ACCOUNTS}/{account['id']}").json()
    assert "clientSecret" not in shown and "secret" not in str(client.get(SERVICE_ACCOUNTS).json())
    assert shown["lastLogin"] is None and shown["enabled"] is True
    assert shown["createdBy"] == ADMIN_ID
    token_for(client, account["clientId"], account["clientSecret"])
    assert client.get(f"{SERVICE_ACCOUNTS}/{account['id']}").json()["lastLogin"] is not None


def test_names_are_unique_and_follow_runai_rule(client):
    first = client.post(SERVICE_ACCOUNTS, json={"name": "deployer"})
    assert first.status_code == 201
    again = client.post(SERVICE_ACCOUNTS, json={"name": "deployer"})
    assert again.status_code == 409 and "deployer" in again.json()["message"]
    for bad in ("Deployer", "-x", "x-", "a b", "", "x" * 300):
        refused = client.post(SERVICE_ACCOUNTS, json={"name": bad})
        assert refused.status_code == 400, bad
        assert refused.json()["code"] == 400


def test_regenerating_the_secret_revokes_tokens_of_the_old_one(client):
    account = new_service_account(client)
    assert grant(client, account["clientId"], "viewer", "tenant").status_code == 201
    token = bearer(token_for(client, account["clientId"], account["clientSecret"]))
    rotated = client.post(f"{SERVICE_ACCOUNTS}/{account['id']}/secret")
    assert rotated.status_code == 200 and set(rotated.json()) == {"clientSecret"}
    assert client.get("/api/v1/authorization/permissions", headers=token).status_code == 401
    token_for(client, account["clientId"], rotated.json()["clientSecret"])


def test_disabling_revokes_tokens_for_good_and_enabling_allows_new_ones(client):
    account = new_service_account(client)
    grant(client, account["clientId"], "viewer", "tenant")
    token = bearer(token_for(client, account["clientId"], account["clientSecret"]))
    assert client.get("/api/v1/authorization/roles", headers=token).status_code == 200
    patched = client.patch(f"{SERVICE_ACCOUNTS}/{account['id']}", json={"enabled": False})
    assert patched.status_code == 200
    assert client.get(f"{SERVICE_ACCOUNTS}/{account['id']}").json()["enabled"] is False
    assert client.get("/api/v1/authorization/roles", headers=token).status_code == 401
    refused = client.post(
        "/api/v1/token",
        json={
            "grantType": "client_credentials",
            "clientID": account["clientId"],
            "clientSecret": account["clientSecret"],
        },
    )
    assert refused.status_code == 400
    client.patch(f"{SERVICE_ACCOUNTS}/{account['id']}", json={"enabled": True})
    assert client.get("/api/v1/authorization/roles", headers=token).status_code == 401
    fresh = bearer(token_for(client, account["clientId"], account["clientSecret"]))
    assert client.get("/api/v1/authorization/roles", headers=fresh).status_code == 200


def test_a_disabled_accounts_token_is_refused_everywhere_it_would_read(client):
    account = new_service_account(client)
    grant(client, account["clientId"], "viewer", "tenant")
    token = bearer(token_for(client, account["clientId"], account["clientSecret"]))
    paths = [
        "/api/v1/workloads",
        "/api/v1/nodes",
        "/api/v1/org-unit/projects",
        "/api/v1/authorization/me/access-rules",
        "/api/v1/authorization/me/access-rules/count",
    ]
    assert [client.get(path, headers=token).status_code for path in paths] == [200] * 5
    client.patch(f"{SERVICE_ACCOUNTS}/{account['id']}", json={"enabled": False})
    assert [client.get(path, headers=token).status_code for path in paths] == [401] * 5


def test_deleting_removes_the_account_and_revokes_its_rules(client):
    account = new_service_account(client)
    rule = grant(client, account["clientId"], "viewer", "tenant").json()
    token = bearer(token_for(client, account["clientId"], account["clientSecret"]))
    assert client.delete(f"{SERVICE_ACCOUNTS}/{account['id']}").status_code == 204
    assert client.get("/api/v1/authorization/roles", headers=token).status_code == 401
    live = client.get(RULES, params={"subjectIds": account["clientId"]}).json()
    assert live["accessRules"] == [] and live["totalRecords"] == 0
    kept = client.get(RULES, params={"subjectIds": account["clientId"], "includeDeleted": True})
    (revoked,) = kept.json()["accessRules"]
    assert revoked["id"] == rule["id"] and revoked["deletedAt"] is not None
    assert client.delete(f"{SERVICE_ACCOUNTS}/{account['id']}").status_code == 404


def test_unknown_service_account_operations_are_404(client):
    for method, suffix in [("get", ""), ("delete", ""), ("post", "/secret")]:
        response = getattr(client, method)(f"{SERVICE_ACCOUNTS}/nope{suffix}")
        assert response.status_code == 404
        assert "nope" in response.json()["message"]
    patched = client.patch(f"{SERVICE_ACCOUNTS}/nope", json={"enabled": False})
    assert patched.status_code == 404


@pytest.mark.parametrize(
    ("role_id", "scope_type", "scope_id", "status"),
    [
        (4, "project", "p1", 201),
        (3, "department", "d1", 201),
        (1001, "cluster", "c", 201),
        (1, "tenant", "1", 201),
        (1, "tenant", "", 201),
        (1, "tenant", "2", 404),
        (1, "project", "p1", 400),
        (1001, "tenant", "1", 400),
        (4, "project", "", 400),
        (99, "tenant", "1", 404),
        (4, "galaxy", "x", 400),
        (4, "system", "x", 400),
    ],
)
def test_rule_validation(client, role_id, scope_type, scope_id, status):
    body = {
        "subjectType": "user",
        "subjectId": "someone",
        "roleId": role_id,
        "scopeType": scope_type,
        "scopeId": scope_id,
    }
    response = client.post(RULES, json=body)
    assert response.status_code == status, response.text
    if status >= 400:
        assert response.json()["code"] == status and response.json()["message"]
    if scope_type == "system":
        # A body field, not a query parameter.
        assert response.json()["message"].startswith("Invalid request body: scopeType 'system'")


def test_a_rule_names_an_existing_service_account(client):
    refused = grant(client, "no-such-client", "viewer", "tenant")
    assert refused.status_code == 404 and "no-such-client" in refused.json()["message"]
    account = new_service_account(client)
    legacy = grant(client, account["clientId"], "viewer", "tenant", subject_type="app")
    assert legacy.status_code == 201
    assert legacy.json()["subjectType"] == "service-account"


def test_rules_carry_role_ids_names_and_scope_names(client, org):
    rule = grant(client, "ann", "researcher", "project", "p1", subject_type="user").json()
    assert (rule["roleId"], rule["roleName"]) == (3, "L1 researcher")
    assert (rule["scopeName"], rule["status"]) == ("vision", {"phase": "Ready"})
    by_id = client.get(f"{RULES}/{rule['id']}").json()
    assert by_id["scopePath"] == "gpufleet/d1/vision"
    tenant = grant(client, "ann", "viewer", "tenant", subject_type="user").json()
    assert (tenant["scopeId"], tenant["scopeName"], tenant["tenantId"]) == ("1", "gpufleet", 1)


def test_listing_filters_sorts_and_pages(client, org):
    ids = [
        grant(client, name, "viewer", "project", "p1", subject_type="user").json()["id"]
        for name in ("carol", "alice", "bob")
    ]
    grant(client, "dave", "researcher", "project", "p2", subject_type="user")
    by_name = client.get(
        RULES, params={"filterBy": "roleName==Viewer,scopeName==vision", "sortBy": "subjectId"}
    ).json()
    assert [r["subjectId"] for r in by_name["accessRules"]] == ["alice", "bob", "carol"]
    assert by_name["totalRecords"] == by_name["displayRecords"] == 3
    page = client.get(
        RULES,
        params={"roleId": 4, "sortBy": "subjectId", "sortOrder": "desc", "limit": 2, "offset": 1},
    ).json()
    assert [r["subjectId"] for r in page["accessRules"]] == ["bob", "alice"]
    assert (page["totalRecords"], page["displayRecords"]) == (3, 2)
    assert client.get(f"{RULES}/count", params={"filterBy": "roleId>=3"}).json() == {"count": 4}
    assert client.get(f"{RULES}/count", params={"search": "DAV"}).json() == {"count": 1}
    contains = client.get(RULES, params={"subjectIdFilter": "o", "subjectType": "user"}).json()
    assert {r["subjectId"] for r in contains["accessRules"]} == {"carol", "bob"}
    assert client.delete(f"{RULES}/{ids[0]}").status_code == 204
    assert client.get(f"{RULES}/count", params={"filterBy": "roleId==4"}).json()["count"] == 2
    deleted = client.get(
        f"{RULES}/count", params={"filterBy": "roleId==4", "includeDeleted": "true"}
    )
    assert deleted.json()["count"] == 3
    for bad in ({"filterBy": "nope==1"}, {"filterBy": "roleId=@x"}, {"sortBy": "nope"}):
        refused = client.get(RULES, params=bad)
        assert refused.status_code == 400 and refused.json()["code"] == 400


def test_department_administrator_grants_only_inside_the_department(client, org):
    account = new_service_account(client, "dept-admin")
    assert (
        grant(
            client, account["clientId"], "department-administrator", "department", "d1"
        ).status_code
        == 201
    )
    token = bearer(token_for(client, account["clientId"], account["clientSecret"]))

    def as_dept(role, scope_type, scope_id=""):
        return grant(client, "bob", role, scope_type, scope_id, subject_type="user", headers=token)

    assert as_dept("viewer", "project", "p1").status_code == 201
    assert as_dept("researcher", "department", "d1").status_code == 201
    assert as_dept("viewer", "project", "p2").status_code == 403
    assert as_dept("viewer", "department", "d2").status_code == 403
    assert as_dept("viewer", "tenant").status_code == 403
    assert as_dept("department-administrator", "department", "d1").status_code == 403
    assert client.get(SERVICE_ACCOUNTS, headers=token).status_code == 403
    assert client.post(SERVICE_ACCOUNTS, json={"name": "x1"}, headers=token).status_code == 403
    assert client.get("/api/v1/audit/log", params=audit_window(), headers=token).status_code == 403


def test_callers_without_rules_are_forbidden(client):
    account = new_service_account(client)
    token = bearer(token_for(client, account["clientId"], account["clientSecret"]))
    for method, path, params in [
        ("get", SERVICE_ACCOUNTS, {}),
        ("get", "/api/v1/administration/access-keys", {}),
        ("get", RULES, {}),
        ("get", f"{RULES}/count", {}),
        ("get", "/api/v1/audit/log", audit_window()),
    ]:
        response = getattr(client, method)(path, params=params, headers=token)
        assert response.status_code == 403, (path, response.text)
        assert response.json()["code"] == 403
    # Its own (empty) rules and permissions, and the roles, it may read.
    mine = client.get("/api/v1/authorization/me/access-rules", headers=token).json()
    assert mine == {"accessRules": {"totalRecords": 0, "displayRecords": 0, "accessRules": []}}
    assert client.get("/api/v1/authorization/permissions", headers=token).json() == []


def test_anonymous_callers_are_unauthorized(anonymous_client):
    for path in (SERVICE_ACCOUNTS, "/api/v1/access-keys", RULES, "/api/v1/authorization/roles"):
        response = anonymous_client.get(path)
        assert response.status_code == 401
        assert response.json()["code"] == 401


def test_me_permissions_and_roles(client):
    account = new_service_account(client)
    grant(client, account["clientId"], "viewer", "project", "p9")
    grant(client, account["clientId"], "cluster-agent", "cluster", "c9")
    token = bearer(token_for(client, account["clientId"], account["clientSecret"]))
    mine = client.get("/api/v1/authorization/me/access-rules", headers=token).json()
    assert {r["roleName"] for r in mine["accessRules"]["accessRules"]} == {
        "Viewer",
        "Cluster agent",
    }
    count = client.get("/api/v1/authorization/me/access-rules/count", headers=token).json()
    assert count == {"count": 2}
    permissions = client.get("/api/v1/authorization/permissions", headers=token).json()
    assert {(p["resourceType"], tuple(p["actions"])) for p in permissions} == {
        ("workloads", ("read",)),
        ("cluster", ("sync",)),
    }
    roles = client.get("/api/v1/authorization/roles", headers=token).json()
    assert [(r["id"], r["name"]) for r in roles] == [
        (1, "System administrator"),
        (2, "Department administrator"),
        (3, "L1 researcher"),
        (4, "Viewer"),
        (1001, "Cluster agent"),
    ]
    assert client.get("/api/v1/authorization/roles/4", headers=token).json()["name"] == "Viewer"
    assert client.get("/api/v1/authorization/roles/5", headers=token).status_code == 404


def test_changes_are_in_the_audit_log(client):
    account = new_service_account(client, "audited")
    rule = grant(client, account["clientId"], "viewer", "tenant").json()
    assert client.delete(f"{RULES}/{rule['id']}").status_code == 204
    assert client.delete(f"{RULES}/{rule['id']}").status_code == 404
    assert client.delete(f"{RULES}/abc").status_code == 400
    entries = audit_entries(client)
    seen = [(e["action"], e.get("entity_type"), e.get("entity_id")) for e in entries]
    assert ("create", "service-account", account["clientId"]) in seen
    assert ("create", "access-rule", str(rule["id"])) in seen
    assert ("delete", "access-rule", str(rule["id"])) in seen
    assert ("sign-in", "token", ADMIN_ID) in seen
    assert entries == sorted(entries, key=lambda e: e["timestamp"])
    named = audit_entries(client, "entity_name==" + account["name"])
    assert [e["metadata"]["operation"] for e in named] == ["service_account.create"]
    newest = audit_entries(client, "action==delete", sortBy="timestamp", sortOrder="desc")
    assert [e["entity_id"] for e in newest] == [str(rule["id"])]


def test_audit_log_pages_and_counts(client):
    for _ in range(5):
        new_service_account(client)
    window = audit_window()
    first = client.get("/api/v1/audit/log", params={**window, "numberOfSamples": 2}).json()
    assert len(first["audit_logs"]) == 2 and first["next"] == 2 and first["total"] >= 6
    assert first["logs"] == first["audit_logs"]
    rest = client.get(
        "/api/v1/audit/log", params={**window, "numberOfSamples": 1000, "offset": 2}
    ).json()
    assert "next" not in rest and len(rest["audit_logs"]) == first["total"] - 2
    past = {"start": "2001-01-01T00:00:00Z", "end": "2001-01-02T00:00:00Z"}
    assert client.get("/api/v1/audit/log", params=past).json()["total"] == 0
    for bad in ({}, {**window, "filterBy": "nope==1"}, {**window, "sortBy": "nope"}):
        assert client.get("/api/v1/audit/log", params=bad).status_code == 400


def test_audit_log_file(client):
    account = new_service_account(client, "exported")
    window = audit_window()
    csv = client.get("/api/v1/audit/log/file", params=window)
    assert csv.status_code == 200
    assert csv.headers["content-type"] == "application/octet-stream"
    lines = csv.text.splitlines()
    assert lines[0].startswith("timestamp,subject,subject_type,action")
    assert any(account["clientId"] in line for line in lines[1:])
    as_json = client.get("/api/v1/audit/log/file", params={**window, "file_type": "JSON"})
    assert any(e.get("entity_id") == account["clientId"] for e in as_json.json())
    # The official SDK's spelling of the parameter.
    assert client.get("/api/v1/audit/log/file", params={**window, "fileType": "JSON"}).json()


def test_old_paths_are_redirected_for_one_release(client):
    moved = client.get("/api/v1/audit-log", params={"limit": 5}, follow_redirects=False)
    assert moved.status_code == 308
    assert moved.headers["location"] == "/api/v1/audit/log?limit=5"
    signing = client.post("/api/v1/signing-keys", follow_redirects=False)
    assert (signing.status_code, signing.headers["location"]) == (
        308,
        "/api/v1/gpufleet/signing-keys",
    )


def test_batches_grant_and_revoke_rule_by_rule(client, org):
    account = new_service_account(client)
    created = client.post(
        f"{RULES}/batch-create",
        json={
            "payload": {
                "roleId": 4,
                "subjects": [
                    {"subjectId": "ann", "subjectType": "user"},
                    {"subjectId": account["clientId"], "subjectType": "service-account"},
                    {"subjectId": "gf-missing", "subjectType": "service-account"},
                ],
                "scopes": [
                    {"scopeId": "p1", "scopeType": "project"},
                    {"scopeId": "", "scopeType": "project"},
                ],
            }
        },
    )
    assert created.status_code == 200, created.text
    body = created.json()
    assert {(r["subjectId"], r["scopeName"]) for r in body["succeeded"]} == {
        ("ann", "vision"),
        (account["clientId"], "vision"),
    }
    assert sorted(f["code"] for f in body["failed"]) == [400, 400, 400, 404]
    ids = [str(r["id"]) for r in body["succeeded"]]

    checked = client.post(f"{RULES}/batch", json={"ids": [*ids, "x"], "action": "validate_delete"})
    assert checked.json()["succeeded"] == ids
    assert [f["id"] for f in checked.json()["failed"]] == ["x"]
    assert client.get(f"{RULES}/count", params={"filterBy": "scopeName==vision"}).json() == {
        "count": 2
    }
    deleted = client.post(f"{RULES}/batch", json={"ids": [*ids, "999999"], "action": "delete"})
    assert deleted.json()["succeeded"] == ids
    assert [(f["id"], f["code"]) for f in deleted.json()["failed"]] == [("999999", 404)]
    assert client.get(f"{RULES}/count", params={"filterBy": "scopeName==vision"}).json() == {
        "count": 0
    }
    assert client.post(f"{RULES}/batch", json={"ids": [], "action": "delete"}).status_code == 400


def test_a_rule_in_force_is_granted_once(client, org):
    first = grant(client, "ann", "viewer", "project", "p1", subject_type="user")
    assert first.status_code == 201
    again = grant(client, "ann", "viewer", "project", "p1", subject_type="user")
    assert again.status_code == 400
    rule_id = first.json()["id"]
    assert again.json()["message"] == (
        f"Access rule {rule_id} grants this already; it was not granted again."
    )
    batch = client.post(
        f"{RULES}/batch-create",
        json={
            "payload": {
                "roleId": 4,
                "subjects": [{"subjectId": "ann", "subjectType": "user"}],
                "scopes": [
                    {"scopeId": "p1", "scopeType": "project"},
                    {"scopeId": "p2", "scopeType": "project"},
                ],
            }
        },
    ).json()
    assert [r["scopeId"] for r in batch["succeeded"]] == ["p2"]
    assert [(f["payload"]["scopeId"], f["code"]) for f in batch["failed"]] == [("p1", 400)]
    listed = client.get(RULES, params={"subjectIds": "ann", "scopeId": "p1"}).json()
    assert [r["id"] for r in listed["accessRules"]] == [rule_id]
    # Another role, or the same one once revoked, is a new grant.
    assert (
        grant(client, "ann", "researcher", "project", "p1", subject_type="user").status_code == 201
    )
    assert client.delete(f"{RULES}/{rule_id}").status_code == 204
    assert grant(client, "ann", "viewer", "project", "p1", subject_type="user").status_code == 201


def test_the_same_rule_granted_at_once_is_stored_once(engine, org):
    """The second grant waits for the first on the index of the rules in force, then is
    refused: no check read before the insert could see a grant not yet committed."""
    actor = Actor("test", FULL_ACCESS)
    fields = {
        "subject_type": SubjectType.USER,
        "subject_id": "ann",
        "role": Role.VIEWER,
        "scope_type": ScopeType.PROJECT,
        "scope_id": "p1",
    }
    outcome: dict[str, object] = {}

    def grant_again() -> None:
        with engine.connect() as second:
            try:
                administration.grant_rule(second, actor, **fields)
                second.commit()
                outcome["second"] = "granted"
            except Invalid as error:
                outcome["second"] = error

    with engine.connect() as first:
        administration.grant_rule(first, actor, **fields)
        racer = threading.Thread(target=grant_again)
        racer.start()
        racer.join(1.0)
        assert racer.is_alive(), "the second grant did not wait for the first"
        first.commit()
    racer.join(30)
    assert isinstance(outcome["second"], Invalid), outcome
    with engine.connect() as conn:
        stored = conn.execute(
            sa.select(sa.func.count())
            .select_from(access_rules)
            .where(access_rules.c.subject_id == "ann")
        ).scalar()
    assert stored == 1
