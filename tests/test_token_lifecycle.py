"""Tokens end when they should, through real servers: two replicas on one database.

Rotating or disabling an access key revokes its tokens on every replica (enabling it again
does not bring them back); refresh tokens are single-use, a spent one presented again revokes
its session, sessions end at an absolute time, and groups are read again when the provider's
token is presented again. The bootstrap administrator survives restarts as administrators
left it.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest

from gpufleet.settings import Settings
from gpufleet.store.engine import create_store_engine
from gpufleet.store.tables import refresh_sessions
from tests.support.access import bearer
from tests.support.server import ServerProcess

SESSION_MAX_SECONDS = 600


@pytest.fixture(scope="module")
def replicas(module_database_url, identity_provider):
    env = {
        **identity_provider.server_env(),
        "GPUFLEET_SESSION_MAX_SECONDS": str(SESSION_MAX_SECONDS),
    }
    with (
        ServerProcess(module_database_url, extra_env=env) as first,
        ServerProcess(module_database_url, extra_env=env) as second,
    ):
        yield first, second


@pytest.fixture(scope="module")
def admin(replicas):
    return replicas[0].auth_headers()


def _post_token(server: ServerProcess, body: dict) -> httpx.Response:
    return httpx.post(server.base_url + "/api/v1/token", json=body, timeout=30.0)


def _key_token(server: ServerProcess, client_id: str, secret: str) -> httpx.Response:
    body = {"grantType": "client_credentials", "clientID": client_id, "clientSecret": secret}
    return _post_token(server, body)


def _roles(server: ServerProcess, token: str) -> int:
    url = server.base_url + "/api/v1/authorization/roles"
    return httpx.get(url, headers=bearer(token), timeout=30.0).status_code


def _new_key(server: ServerProcess, admin: dict) -> tuple[str, str]:
    url = server.base_url + "/api/v1/service-accounts"
    name = f"lifecycle-{next(_names)}"
    created = httpx.post(url, json={"name": name}, headers=admin, timeout=30.0)
    assert created.status_code == 201, created.text
    return created.json()["clientId"], created.json()["clientSecret"]


_names = itertools.count(1)


def _key_action(server: ServerProcess, admin: dict, client_id: str, action: str) -> dict:
    """Regenerate the secret of, disable or enable the service account with this client id."""
    accounts = server.base_url + "/api/v1/service-accounts"
    listed = httpx.get(accounts, headers=admin, timeout=30.0).json()
    url = f"{accounts}/{next(a['id'] for a in listed if a['clientId'] == client_id)}"
    if action == "secret":
        response = httpx.post(f"{url}/secret", headers=admin, timeout=30.0)
    else:
        body = {"enabled": action == "enable"}
        response = httpx.patch(url, json=body, headers=admin, timeout=30.0)
    assert response.status_code == 200, response.text
    return response.json() if response.content else {}


def test_rotation_revokes_outstanding_tokens_on_every_replica(replicas, admin):
    first, second = replicas
    client_id, secret = _new_key(first, admin)
    old = _key_token(first, client_id, secret).json()["accessToken"]
    assert _roles(first, old) == 200
    assert _roles(second, old) == 200

    rotated = _key_action(first, admin, client_id, "secret")
    assert _roles(first, old) == 401
    assert _roles(second, old) == 401
    new = _key_token(second, client_id, rotated["clientSecret"]).json()["accessToken"]
    assert _roles(first, new) == 200


def test_disable_then_enable_does_not_bring_tokens_back(replicas, admin):
    first, second = replicas
    client_id, secret = _new_key(first, admin)
    old = _key_token(first, client_id, secret).json()["accessToken"]
    _key_action(second, admin, client_id, "disable")
    assert _roles(first, old) == 401
    _key_action(second, admin, client_id, "enable")
    assert _roles(first, old) == 401
    assert _roles(second, old) == 401
    fresh = _key_token(first, client_id, secret).json()["accessToken"]
    assert _roles(second, fresh) == 200


def _exchange(server: ServerProcess, provider_token: str) -> dict:
    response = _post_token(
        server, {"grantType": "external_token_exchange", "externalToken": provider_token}
    )
    assert response.status_code == 200, response.text
    return response.json()


def _refresh(server: ServerProcess, refresh_token: str) -> httpx.Response:
    return _post_token(server, {"grantType": "refresh_token", "refreshToken": refresh_token})


def _claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def test_refresh_tokens_are_single_use_and_reuse_revokes_the_session(replicas, identity_provider):
    first, second = replicas
    issued = _exchange(first, identity_provider.token(sub="u-reuse", preferred_username="reuse"))
    spent = issued["refreshToken"]
    renewed = _refresh(second, spent)
    assert renewed.status_code == 200, renewed.text
    current = renewed.json()["refreshToken"]
    assert current != spent

    reused = _refresh(first, spent)
    assert reused.status_code == 400
    assert "already used" in reused.json()["message"]
    # The reuse revoked the session: the newer token, whoever holds it, is refused too.
    assert _refresh(second, current).status_code == 400


def test_sessions_end_at_an_absolute_time(replicas, identity_provider, module_database_url):
    first, _ = replicas
    issued = _exchange(first, identity_provider.token(sub="u-end", preferred_username="ender"))
    started = _claims(issued["refreshToken"])["iat"]
    token = issued["refreshToken"]
    for _ in range(3):
        token = _refresh(first, token).json()["refreshToken"]
        assert _claims(token)["exp"] <= started + SESSION_MAX_SECONDS

    # Move the session's end into the past, as time would: the next refresh is refused.
    session_id = _claims(token)["sid"]
    engine = create_store_engine(Settings(database_url=module_database_url))
    with engine.begin() as conn:
        conn.execute(
            refresh_sessions.update()
            .where(refresh_sessions.c.id == session_id)
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    engine.dispose()
    assert _refresh(first, token).status_code == 400


def test_groups_are_read_again_when_the_provider_token_is_presented_again(
    replicas, identity_provider
):
    first, second = replicas
    identity = {"sub": "u-groups", "preferred_username": "grouper"}
    before = _exchange(first, identity_provider.token(groups=["team-a"], **identity))
    assert _claims(before["accessToken"])["grp"] == ["team-a"]
    # The provider now says the user left team-a; the user signs in again somewhere.
    _exchange(second, identity_provider.token(groups=["team-b"], **identity))
    refreshed = _refresh(first, before["refreshToken"])
    assert refreshed.status_code == 200, refreshed.text
    assert _claims(refreshed.json()["accessToken"])["grp"] == ["team-b"]


def test_a_restart_leaves_the_bootstrap_administrator_as_administrators_left_it(
    database_url, tmp_path
):
    boss = {"admin_id": "boss", "admin_secret": "boss-secret-1", "log_dir": tmp_path}
    with ServerProcess(database_url, **boss) as server:
        boss_token = server.token()
        ops_id, ops_secret = _new_key(server, bearer(boss_token))
        grant = httpx.post(
            server.base_url + "/api/v1/authorization/access-rules",
            json={
                "subjectType": "service-account",
                "subjectId": ops_id,
                "roleId": 1,
                "scopeType": "tenant",
                "scopeId": "1",
            },
            headers=bearer(boss_token),
            timeout=30.0,
        )
        assert grant.status_code == 201, grant.text
        ops = bearer(server.token(ops_id, ops_secret))
        _key_action(server, ops, "boss", "secret")
        _key_action(server, ops, "boss", "disable")

    with ServerProcess(database_url, **boss) as restarted:
        assert _key_token(restarted, "boss", "boss-secret-1").status_code == 400
        assert "restore-admin" in restarted.output()

        env = {k: v for k, v in os.environ.items() if not k.startswith("GPUFLEET_")}
        env.update(
            GPUFLEET_DATABASE_URL=database_url,
            GPUFLEET_ADMIN_CLIENT_ID="boss",
            GPUFLEET_ADMIN_CLIENT_SECRET="boss-secret-1",
        )
        restore = [sys.executable, "-m", "gpufleet.cli", "access", "restore-admin"]
        done = subprocess.run(restore, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        restored = _key_token(restarted, "boss", "boss-secret-1")
        assert restored.status_code == 200, restored.text
        assert _roles(restarted, restored.json()["accessToken"]) == 200
        assert _roles(restarted, boss_token) == 401
