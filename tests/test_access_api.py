"""The access administration API: access keys, access rules, roles, audit log."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gpufleet.store.tables import projects
from tests.support.access import bearer, token_for


def _new_key(client, name: str = "ci") -> dict:
    response = client.post("/api/v1/access-keys", json={"name": name})
    assert response.status_code == 201, response.text
    return response.json()


def _grant(client, subject_id: str, role: str, scope_type: str, scope_id: str = "", **kw) -> dict:
    body = {
        "subjectType": kw.get("subject_type", "accessKey"),
        "subjectId": subject_id,
        "roleName": role,
        "scopeType": scope_type,
        "scopeId": scope_id,
    }
    return client.post("/api/v1/authorization/access-rules", json=body, headers=kw.get("headers"))


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


def test_secret_is_shown_once_and_works(client):
    key = _new_key(client, "build-bot")
    assert key["clientSecret"] and key["name"] == "build-bot" and key["disabled"] is False
    listed = client.get("/api/v1/access-keys").json()["accessKeys"]
    mine = next(k for k in listed if k["clientId"] == key["clientId"])
    assert "clientSecret" not in mine and "secretHash" not in str(listed)
    assert mine["lastUsedAt"] is None
    token_for(client, key["clientId"], key["clientSecret"])
    mine = next(
        k
        for k in client.get("/api/v1/access-keys").json()["accessKeys"]
        if k["clientId"] == key["clientId"]
    )
    assert mine["lastUsedAt"] is not None


def test_rotation_replaces_the_secret(client):
    key = _new_key(client)
    rotated = client.post(f"/api/v1/access-keys/{key['clientId']}/secret")
    assert rotated.status_code == 200
    new_secret = rotated.json()["clientSecret"]
    assert new_secret != key["clientSecret"]
    old = client.post(
        "/api/v1/token",
        json={
            "grantType": "client_credentials",
            "clientID": key["clientId"],
            "clientSecret": key["clientSecret"],
        },
    )
    assert old.status_code == 400
    token_for(client, key["clientId"], new_secret)


def test_disable_revokes_tokens_for_good_and_enable_allows_new_ones(client):
    key = _new_key(client)
    assert _grant(client, key["clientId"], "viewer", "tenant").status_code == 201
    token = token_for(client, key["clientId"], key["clientSecret"])
    assert client.get("/api/v1/authorization/roles", headers=bearer(token)).status_code == 200
    assert client.post(f"/api/v1/access-keys/{key['clientId']}/disable").json()["disabled"] is True
    revoked = client.get("/api/v1/authorization/roles", headers=bearer(token))
    assert revoked.status_code == 401
    assert revoked.json()["code"] == 401
    refused = client.post(
        "/api/v1/token",
        json={
            "grantType": "client_credentials",
            "clientID": key["clientId"],
            "clientSecret": key["clientSecret"],
        },
    )
    assert refused.status_code == 400
    assert client.post(f"/api/v1/access-keys/{key['clientId']}/enable").json()["disabled"] is False
    assert client.get("/api/v1/authorization/roles", headers=bearer(token)).status_code == 401
    fresh = token_for(client, key["clientId"], key["clientSecret"])
    assert client.get("/api/v1/authorization/roles", headers=bearer(fresh)).status_code == 200


def test_delete_removes_key_and_its_rules(client):
    key = _new_key(client)
    _grant(client, key["clientId"], "viewer", "tenant")
    token = token_for(client, key["clientId"], key["clientSecret"])
    assert client.delete(f"/api/v1/access-keys/{key['clientId']}").status_code == 204
    assert client.get("/api/v1/authorization/roles", headers=bearer(token)).status_code == 401
    rules = client.get("/api/v1/authorization/access-rules").json()["accessRules"]
    assert all(r["subjectId"] != key["clientId"] for r in rules)
    assert client.delete(f"/api/v1/access-keys/{key['clientId']}").status_code == 404


def test_unknown_key_operations_are_404(client):
    for path in ("secret", "disable", "enable"):
        response = client.post(f"/api/v1/access-keys/nope/{path}")
        assert response.status_code == 404
        assert "nope" in response.json()["message"]


@pytest.mark.parametrize(
    ("role", "scope_type", "scope_id", "status"),
    [
        ("viewer", "project", "p1", 201),
        ("researcher", "department", "d1", 201),
        ("cluster-agent", "cluster", "c", 201),
        ("system-administrator", "tenant", "", 201),
        ("system-administrator", "project", "p1", 400),
        ("cluster-agent", "tenant", "", 400),
        ("viewer", "project", "", 400),
        ("no-such-role", "tenant", "", 400),
        ("viewer", "galaxy", "x", 400),
    ],
)
def test_rule_validation(client, role, scope_type, scope_id, status):
    response = _grant(client, "someone", role, scope_type, scope_id)
    assert response.status_code == status, response.text
    if status == 400:
        assert response.json()["code"] == 400 and response.json()["message"]


def test_department_administrator_grants_only_inside_the_department(client, org):
    key = _new_key(client, "dept-admin")
    assert (
        _grant(client, key["clientId"], "department-administrator", "department", "d1").status_code
        == 201
    )
    token = bearer(token_for(client, key["clientId"], key["clientSecret"]))
    assert _grant(client, "bob", "viewer", "project", "p1", headers=token).status_code == 201
    assert _grant(client, "bob", "researcher", "department", "d1", headers=token).status_code == 201
    assert _grant(client, "bob", "viewer", "project", "p2", headers=token).status_code == 403
    assert _grant(client, "bob", "viewer", "department", "d2", headers=token).status_code == 403
    assert _grant(client, "bob", "viewer", "tenant", headers=token).status_code == 403
    assert (
        _grant(
            client, "bob", "department-administrator", "department", "d1", headers=token
        ).status_code
        == 403
    )
    assert client.get("/api/v1/access-keys", headers=token).status_code == 403
    assert client.post("/api/v1/access-keys", json={"name": "x"}, headers=token).status_code == 403
    assert client.get("/api/v1/audit-log", headers=token).status_code == 403


def test_department_administrator_lists_only_the_rules_inside_the_department(client, org):
    key = _new_key(client, "dept-admin")
    _grant(client, key["clientId"], "department-administrator", "department", "d1")
    inside = {
        _grant(client, "ann", "viewer", "department", "d1").json()["id"],
        _grant(client, "ann", "researcher", "project", "p1").json()["id"],
        _grant(client, "devs", "viewer", "project", "p1", subject_type="group").json()["id"],
    }
    outside = [
        _grant(client, "ann", "viewer", "department", "d2"),
        _grant(client, "ann", "viewer", "project", "p2"),
        _grant(client, "ann", "viewer", "cluster", "c"),
        _grant(client, "ann", "viewer", "tenant"),
        # A project id that exists in no department is outside every department.
        _grant(client, "ann", "viewer", "project", "p-unknown"),
    ]
    assert all(rule.status_code == 201 for rule in outside)
    own_rule = next(
        r["id"]
        for r in client.get("/api/v1/authorization/access-rules").json()["accessRules"]
        if r["subjectId"] == key["clientId"]
    )
    token = bearer(token_for(client, key["clientId"], key["clientSecret"]))

    listed = client.get("/api/v1/authorization/access-rules", headers=token)
    assert listed.status_code == 200, listed.text
    # Its own rule lies inside d1 too; the administrator's tenant rule and d2's do not.
    assert {r["id"] for r in listed.json()["accessRules"]} == inside | {own_rule}
    by_subject = client.get(
        "/api/v1/authorization/access-rules",
        params={"subjectType": "accessKey", "subjectId": "test-admin"},
        headers=token,
    )
    assert by_subject.json()["accessRules"] == []
    # The system administrator still sees everything.
    everything = client.get("/api/v1/authorization/access-rules").json()["accessRules"]
    assert {r["id"] for r in everything} >= inside | {r.json()["id"] for r in outside}


def test_callers_without_rules_are_forbidden(client):
    key = _new_key(client)
    token = bearer(token_for(client, key["clientId"], key["clientSecret"]))
    for method, path in [
        ("get", "/api/v1/access-keys"),
        ("get", "/api/v1/authorization/access-rules"),
        ("post", "/api/v1/authorization/access-rules"),
        ("get", "/api/v1/audit-log"),
    ]:
        response = getattr(client, method)(path, headers=token)
        assert response.status_code == 403, (path, response.text)
        assert response.json()["code"] == 403


def test_anonymous_callers_are_unauthorized(anonymous_client):
    for path in ("/api/v1/access-keys", "/api/v1/authorization/access-rules", "/api/v1/audit-log"):
        response = anonymous_client.get(path)
        assert response.status_code == 401
        assert response.json()["code"] == 401


def test_rule_deletion_and_audit_trail(client):
    key = _new_key(client, "audited")
    rule = _grant(client, key["clientId"], "viewer", "tenant").json()
    assert client.delete(f"/api/v1/authorization/access-rules/{rule['id']}").status_code == 204
    assert client.delete(f"/api/v1/authorization/access-rules/{rule['id']}").status_code == 404
    assert client.delete("/api/v1/authorization/access-rules/abc").status_code == 400
    entries = client.get("/api/v1/audit-log?limit=500").json()["entries"]
    actions = [(e["action"], e["target"]) for e in entries]
    assert ("access_key.create", key["clientId"]) in actions
    assert ("access_rule.create", str(rule["id"])) in actions
    assert ("access_rule.delete", str(rule["id"])) in actions
    assert entries == sorted(entries, key=lambda e: (e["at"], e["id"]), reverse=True)


def test_audit_log_pages(client):
    for i in range(5):
        _new_key(client, f"k{i}")
    first = client.get("/api/v1/audit-log?limit=2").json()
    assert len(first["entries"]) == 2 and first["next"] == 2
    everything = client.get("/api/v1/audit-log?limit=500").json()
    assert "next" not in everything
    second = client.get("/api/v1/audit-log?limit=2&offset=2").json()
    assert [e["id"] for e in first["entries"] + second["entries"]] == [
        e["id"] for e in everything["entries"][:4]
    ]


@pytest.mark.parametrize(
    "body", [{}, {"name": ""}, {"name": "x" * 300}, {"name": "ok", "extra": 1}]
)
def test_bad_key_bodies_are_400(client, body):
    response = client.post("/api/v1/access-keys", json=body)
    assert response.status_code == 400
    assert response.json()["code"] == 400
