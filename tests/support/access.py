"""Service accounts with rules, through the administration API, for tests of who may do what."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from gpufleet.core.roles import ROLE_IDS, Role

_numbers = itertools.count(1)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def token_for(client, client_id: str, client_secret: str) -> str:
    """A token for a service account or access key, through ``POST /api/v1/token``."""
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


def new_service_account(client, name: str = "ci") -> dict:
    """A new service account (``client`` is the admin); names get a unique suffix."""
    response = client.post("/api/v1/service-accounts", json={"name": f"{name}-{next(_numbers)}"})
    assert response.status_code == 201, response.text
    return response.json()


def grant(client, subject_id: str, role: str, scope_type: str, scope_id: str = "", **kw):
    """``POST /api/v1/authorization/access-rules`` for a role given by its gpufleet name."""
    body = {
        "subjectType": kw.get("subject_type", "service-account"),
        "subjectId": subject_id,
        "roleId": ROLE_IDS[Role(role)],
        "scopeType": scope_type,
        "scopeId": scope_id or ("1" if scope_type == "tenant" else ""),
    }
    return client.post("/api/v1/authorization/access-rules", json=body, headers=kw.get("headers"))


def key_with_role(client, role: str, scope_type: str, scope_id: str = "") -> dict[str, str]:
    """Headers of a new service account granted ``role`` in one scope (``client`` is the admin)."""
    account = new_service_account(client, f"{role}-{scope_type}")
    rule = grant(client, account["clientId"], role, scope_type, scope_id)
    assert rule.status_code == 201, rule.text
    return bearer(token_for(client, account["clientId"], account["clientSecret"]))


def audit_window() -> dict[str, str]:
    """``start`` and ``end`` of the audit log from an hour ago to an hour ahead."""
    now = datetime.now(UTC)
    return {
        "start": (now - timedelta(hours=1)).isoformat(),
        "end": (now + timedelta(hours=1)).isoformat(),
    }


def audit_entries(client, *filters: str, headers=None, **params) -> list[dict]:
    """Audit log entries of the last hour (up to 1,000), oldest first unless sorted."""
    response = client.get(
        "/api/v1/audit/log",
        params={**audit_window(), "numberOfSamples": 1000, "filterBy": list(filters), **params},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    return response.json()["audit_logs"]
