"""Rotating and revoking the keys that sign access tokens, across replicas."""

from __future__ import annotations

import threading

import jwt
from fastapi.testclient import TestClient

from gpufleet.api.app import create_app
from gpufleet.auth import administration
from gpufleet.auth.administration import FULL_ACCESS, Actor
from gpufleet.core.errors import Invalid
from gpufleet.settings import Settings
from gpufleet.store import credentials
from tests.support.access import audit_entries, bearer, key_with_role
from tests.support.databases import ADMIN_ID, ADMIN_SECRET


def _kid(token: str) -> str:
    return jwt.get_unverified_header(token)["kid"]


def _fresh_admin_token(client) -> str:
    response = client.post(
        "/api/v1/token",
        json={
            "grantType": "client_credentials",
            "clientID": ADMIN_ID,
            "clientSecret": ADMIN_SECRET,
        },
    )
    return response.json()["accessToken"]


def _get(client, token: str):
    return client.get("/api/v1/workloads", headers={"Authorization": f"Bearer {token}"})


def test_rotation_then_revocation(client, admin_token):
    old_kid = _kid(admin_token)
    rotated = client.post("/api/v1/gpufleet/signing-keys")
    assert rotated.status_code == 201
    keys = rotated.json()["signingKeys"]
    assert [k["active"] for k in keys] == [True, True]
    new_kid = keys[-1]["kid"]
    assert new_kid != old_kid

    new_token = _fresh_admin_token(client)
    assert _kid(new_token) == new_kid
    assert _get(client, admin_token).status_code == 200  # old tokens keep working

    revoked = client.post(
        f"/api/v1/gpufleet/signing-keys/{old_kid}/revoke", headers=bearer(new_token)
    )
    assert revoked.status_code == 200
    assert {k["kid"]: k["active"] for k in revoked.json()["signingKeys"]} == {
        old_kid: False,
        new_kid: True,
    }
    refused = _get(client, admin_token)
    assert refused.status_code == 401
    assert refused.json()["code"] == 401
    assert _get(client, new_token).status_code == 200

    entries = audit_entries(client, "entity_type==signing-key", headers=bearer(new_token))
    actions = [(e["metadata"]["operation"], e["action"], e["entity_id"]) for e in entries]
    assert actions == [
        ("signing_key.rotate", "create", new_kid),
        ("signing_key.revoke", "update", old_kid),
    ]


def test_the_last_key_cannot_be_revoked_and_unknown_is_404(client, admin_token):
    kid = _kid(admin_token)
    last = client.post(f"/api/v1/gpufleet/signing-keys/{kid}/revoke")
    assert last.status_code == 400
    assert "rotate" in last.json()["message"]
    assert client.post("/api/v1/gpufleet/signing-keys/nope/revoke").status_code == 404


def test_non_administrators_cannot_touch_signing_keys(client):
    viewer = key_with_role(client, "viewer", "tenant")
    for method, path in [
        ("get", "/api/v1/gpufleet/signing-keys"),
        ("post", "/api/v1/gpufleet/signing-keys"),
    ]:
        assert getattr(client, method)(path, headers=viewer).status_code == 403


def test_replicas_follow_rotation_and_revocation(settings, client, admin_token):
    replica_settings = Settings(**{**settings.model_dump(), "signing_key_refresh_seconds": 0})
    replica = create_app(replica_settings)
    try:
        with TestClient(replica, raise_server_exceptions=False) as other:
            assert _get(other, admin_token).status_code == 200
            old_kid = _kid(admin_token)
            client.post("/api/v1/gpufleet/signing-keys")
            new_token = _fresh_admin_token(client)
            # The replica has never seen the new key id; it reads the keys again and accepts it.
            assert _get(other, new_token).status_code == 200
            # Tokens the replica signs now use the newest key too.
            assert _kid(_fresh_admin_token(other)) == _kid(new_token)
            client.post(
                f"/api/v1/gpufleet/signing-keys/{old_kid}/revoke", headers=bearer(new_token)
            )
            assert _get(other, admin_token).status_code == 401
    finally:
        replica.state.gpufleet.engine.dispose()


def test_two_keys_revoked_at_once_leave_one(client, app):
    """The second revocation waits for the first to commit, then sees the last key left."""
    assert client.post("/api/v1/gpufleet/signing-keys").status_code == 201
    engine = app.state.gpufleet.engine
    with engine.connect() as conn:
        first_kid, second_kid = [key.kid for key in credentials.load_signing_keys(conn)]
    actor = Actor("test", FULL_ACCESS)
    outcome: dict[str, object] = {}

    def revoke_second() -> None:
        with engine.connect() as second:
            try:
                administration.revoke_signing_key(second, actor, second_kid)
                second.commit()
                outcome["second"] = "revoked"
            except Invalid as error:
                outcome["second"] = error

    with engine.connect() as first:
        administration.revoke_signing_key(first, actor, first_kid)
        racer = threading.Thread(target=revoke_second)
        racer.start()
        racer.join(1.0)
        assert racer.is_alive(), "the second revocation did not wait for the first"
        first.commit()
    racer.join(30)
    assert isinstance(outcome["second"], Invalid), outcome
    with engine.connect() as conn:
        assert [key.kid for key in credentials.load_signing_keys(conn)] == [second_kid]
