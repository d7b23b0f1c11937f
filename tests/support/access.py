"""Access keys with rules, through the administration API, for tests of who may do what."""

from __future__ import annotations


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def token_for(client, client_id: str, client_secret: str) -> str:
    """A token for an access key, through ``POST /api/v1/token``."""
    response = client.post(
        "/api/v1/token",
        json={
            "grantType": "client_credentials",
            "clientID": client_id,
            "clientSecret": client_secret,
        },
        headers={"Authorization": ""},
    )
    assert response.status_code == 200, response.text
    return response.json()["accessToken"]


def key_with_role(client, role: str, scope_type: str, scope_id: str = "") -> dict[str, str]:
    """Headers of a new access key granted ``role`` in one scope (``client`` is the admin)."""
    key = client.post("/api/v1/access-keys", json={"name": f"{role}-{scope_id or scope_type}"})
    assert key.status_code == 201, key.text
    key = key.json()
    rule = client.post(
        "/api/v1/authorization/access-rules",
        json={
            "subjectType": "accessKey",
            "subjectId": key["clientId"],
            "roleName": role,
            "scopeType": scope_type,
            "scopeId": scope_id,
        },
    )
    assert rule.status_code == 201, rule.text
    return bearer(token_for(client, key["clientId"], key["clientSecret"]))
