"""Token grants beyond client credentials: external token exchange, refresh, abuse limits."""

from __future__ import annotations

import pytest

from tests.support.access import audit_entries, new_service_account
from tests.support.databases import ADMIN_ID, ADMIN_SECRET
from tests.support.jwks import IdentityProvider, oidc_test_client


@pytest.fixture(scope="module")
def idp():
    provider = IdentityProvider()
    yield provider
    provider.close()


@pytest.fixture
def oidc_client(database_url, idp):
    limits = {"token_failure_limit": 3, "token_failure_window_seconds": 60}
    with oidc_test_client(database_url, idp, **limits) as client:
        yield client


def _admin(client) -> dict:
    token = client.post(
        "/api/v1/token",
        json={
            "grantType": "client_credentials",
            "clientID": ADMIN_ID,
            "clientSecret": ADMIN_SECRET,
        },
    ).json()["accessToken"]
    return {"Authorization": f"Bearer {token}"}


def _roles(client, token: str):
    return client.get("/api/v1/authorization/roles", headers={"Authorization": f"Bearer {token}"})


def test_external_token_exchange_gives_access_and_refresh_tokens(oidc_client, idp):
    response = oidc_client.post(
        "/api/v1/token",
        json={"grantType": "external_token_exchange", "externalToken": idp.token(groups=["ml"])},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["accessToken"]
    assert body["refreshToken"]
    assert body["expiresIn"] > 0
    # The exchanged token identifies the user; with no rules the user may do nothing yet.
    assert _roles(oidc_client, body["accessToken"]).status_code == 200

    refreshed = oidc_client.post(
        "/api/v1/token", json={"grantType": "refresh_token", "refreshToken": body["refreshToken"]}
    )
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["accessToken"] != body["accessToken"]


def test_refresh_token_is_not_an_access_token_and_vice_versa(oidc_client, idp):
    body = oidc_client.post(
        "/api/v1/token",
        json={"grantType": "external_token_exchange", "externalToken": idp.token()},
    ).json()
    assert _roles(oidc_client, body["refreshToken"]).status_code == 401
    wrong = oidc_client.post(
        "/api/v1/token", json={"grantType": "refresh_token", "refreshToken": body["accessToken"]}
    )
    assert wrong.status_code == 400
    assert "refresh" in wrong.json()["message"]


@pytest.mark.parametrize(
    "overrides", [{"iss": "https://other.example.test"}, {"aud": "x"}, {"exp": 1_000_000}]
)
def test_bad_external_tokens_are_refused(oidc_client, idp, overrides):
    response = oidc_client.post(
        "/api/v1/token",
        json={"grantType": "external_token_exchange", "externalToken": idp.token(**overrides)},
    )
    assert response.status_code == 400
    assert response.json()["message"].startswith("External token rejected")


def test_oidc_tokens_are_accepted_as_bearer_tokens_directly(oidc_client, idp):
    assert _roles(oidc_client, idp.token()).status_code == 200
    assert _roles(oidc_client, idp.token(exp=1_000_000)).status_code == 401


def test_group_rules_apply_to_external_users(oidc_client, idp):
    admin = _admin(oidc_client)
    grant = oidc_client.post(
        "/api/v1/authorization/access-rules",
        json={
            "subjectType": "group",
            "subjectId": "platform",
            "roleId": 1,
            "scopeType": "tenant",
            "scopeId": "1",
        },
        headers=admin,
    )
    assert grant.status_code == 201
    outsider = {"Authorization": f"Bearer {idp.token(groups=['ml'])}"}
    member = {"Authorization": f"Bearer {idp.token(groups=['platform'])}"}
    accounts = "/api/v1/service-accounts"
    assert oidc_client.get(accounts, headers=outsider).status_code == 403
    assert oidc_client.get(accounts, headers=member).status_code == 200


def test_failed_token_requests_are_rate_limited_per_client(oidc_client):
    bad = {"grantType": "client_credentials", "clientID": "guess", "clientSecret": "wrong"}
    for _ in range(3):
        assert oidc_client.post("/api/v1/token", json=bad).status_code == 400
    limited = oidc_client.post("/api/v1/token", json=bad)
    assert limited.status_code == 429
    assert limited.json()["code"] == 429
    assert "retry" in limited.json()["message"]


def test_a_refresh_token_outside_any_session_is_refused(client):
    # client_credentials tokens carry no refresh token; one signed by the server's own key but
    # belonging to no session (as a forged or leaked-from-elsewhere one would) is refused.
    tokens = client.app.state.gpufleet.tokens
    created = new_service_account(client, "r")
    refresh = tokens.issue(created["clientId"], kind="refresh")
    refused = client.post(
        "/api/v1/token", json={"grantType": "refresh_token", "refreshToken": refresh}
    )
    assert refused.status_code == 400
    assert "session" in refused.json()["message"]


def test_every_issued_token_is_audited(client):
    issued = audit_entries(client, "action==sign-in")
    assert issued
    assert (issued[0]["subject"], issued[0]["subject_type"]) == (ADMIN_ID, "App")
    assert issued[0]["metadata"]["grantType"] == "client_credentials"


def test_external_exchange_without_a_provider_is_400(client):
    response = client.post(
        "/api/v1/token", json={"grantType": "external_token_exchange", "externalToken": "x.y.z"}
    )
    assert response.status_code == 400
    assert "identity provider" in response.json()["message"]
