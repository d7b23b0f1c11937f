"""Users' access keys (Run:ai's ``/api/v1/access-keys``): a key speaks for the user who made it."""

from __future__ import annotations

import pytest

from tests.support.access import audit_entries, bearer, grant, token_for
from tests.support.databases import ADMIN_ID, ADMIN_SECRET
from tests.support.factories import insert, workload
from tests.support.jwks import IdentityProvider, oidc_test_client

KEYS = "/api/v1/access-keys"


@pytest.fixture(scope="module")
def idp():
    provider = IdentityProvider()
    yield provider
    provider.close()


@pytest.fixture
def oidc_client(database_url, idp):
    with oidc_test_client(database_url, idp) as client:
        client.headers["Authorization"] = f"Bearer {token_for(client, ADMIN_ID, ADMIN_SECRET)}"
        yield client


def _as(idp, user: str, groups: tuple[str, ...] = ()) -> dict[str, str]:
    return bearer(idp.token(sub=user, preferred_username=user, groups=list(groups)))


def test_a_users_key_sees_what_the_user_sees(oidc_client, idp):
    engine = oidc_client.app.state.gpufleet.engine
    (mine,) = insert(engine, [workload(projectId="10", projectName="vision")])
    insert(engine, [workload(projectId="11", projectName="nlp")])
    assert grant(oidc_client, "ann", "viewer", "project", "10", subject_type="user").is_success
    assert grant(oidc_client, "ml", "viewer", "project", "11", subject_type="group").is_success
    ann = _as(idp, "ann", ("ml",))

    created = oidc_client.post(KEYS, json={"name": "laptop"}, headers=ann)
    assert created.status_code == 201, created.text
    key = created.json()
    assert set(key) == {"id", "name", "clientId", "clientSecret", "createdAt"}
    again = oidc_client.post(KEYS, json={"name": "laptop"}, headers=ann)
    assert again.status_code == 409

    as_key = bearer(token_for(oidc_client, key["clientId"], key["clientSecret"]))
    listed = oidc_client.get("/api/v1/workloads", headers=as_key).json()["workloads"]
    # The user's own rule applies; the group's does not (groups come with a sign-in).
    assert [w["id"] for w in listed] == [str(mine["id"])]
    mine_rules = oidc_client.get("/api/v1/authorization/me/access-rules", headers=as_key).json()
    assert [r["subjectId"] for r in mine_rules["accessRules"]["accessRules"]] == ["ann"]

    shown = oidc_client.get(f"{KEYS}/{key['id']}", headers=ann).json()
    assert shown["lastLogin"] is not None and "clientSecret" not in shown
    assert [k["id"] for k in oidc_client.get(KEYS, headers=ann).json()["accessKeys"]] == [key["id"]]
    # Another user neither lists nor reaches it.
    bob = _as(idp, "bob")
    assert oidc_client.get(KEYS, headers=bob).json() == {"accessKeys": []}
    assert oidc_client.get(f"{KEYS}/{key['id']}", headers=bob).status_code == 404
    assert oidc_client.delete(f"{KEYS}/{key['id']}", headers=bob).status_code == 404

    rotated = oidc_client.post(f"{KEYS}/{key['id']}/secret", headers=ann)
    assert rotated.status_code == 200
    assert oidc_client.get("/api/v1/workloads", headers=as_key).status_code == 401
    token_for(oidc_client, key["clientId"], rotated.json()["clientSecret"])
    entries = audit_entries(oidc_client, "entity_type==access-key")
    assert [(e["action"], e["subject"], e["subject_type"]) for e in entries] == [
        ("create", "ann", "User"),
        ("update", "ann", "User"),
    ]


def test_administrators_list_and_delete_every_users_keys(oidc_client, idp):
    ann = _as(idp, "ann")
    key = oidc_client.post(KEYS, json={"name": "ci"}, headers=ann).json()
    listed = oidc_client.get("/api/v1/administration/access-keys").json()["accessKeys"]
    assert [(k["id"], k["createdBy"]) for k in listed] == [(key["id"], "ann")]
    by_creator = oidc_client.get(
        "/api/v1/administration/access-keys", params={"createdBy": "bob"}
    ).json()
    assert by_creator == {"accessKeys": []}
    assert oidc_client.get("/api/v1/administration/access-keys", headers=ann).status_code == 403
    deleted = oidc_client.delete(f"/api/v1/administration/access-keys/{key['id']}")
    assert deleted.status_code == 204
    assert oidc_client.get(KEYS, headers=ann).json() == {"accessKeys": []}
    refused = oidc_client.post(
        "/api/v1/token",
        json={
            "grantType": "client_credentials",
            "clientID": key["clientId"],
            "clientSecret": key["clientSecret"],
        },
    )
    assert refused.status_code == 400
