"""Failed token requests, through a real server: attacks lock out the attacker, never the owner.

The module's server believes ``X-Forwarded-For`` from loopback (``trusted_proxies``), so one
test process can speak from many addresses; a second server with the default setting shows
that the header is otherwise ignored.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from gpufleet.api.client_address import forwarded_client
from gpufleet.auth.rate_limit import FailureLimiter, LimitKey
from gpufleet.core.errors import Invalid, TooManyRequests
from gpufleet.settings import parse_networks
from tests.support.access import audit_entries, new_service_account
from tests.support.databases import ADMIN_ID, ADMIN_SECRET
from tests.support.server import ServerProcess

LIMIT, ADDRESS_LIMIT = 10, 30


@pytest.fixture(scope="module")
def server(module_database_url, identity_provider):
    env = {
        "GPUFLEET_TRUSTED_PROXIES": "127.0.0.1",
        "GPUFLEET_TOKEN_FAILURE_LIMIT": str(LIMIT),
        "GPUFLEET_TOKEN_FAILURE_ADDRESS_LIMIT": str(ADDRESS_LIMIT),
        # These tests are about the limiter, not the pool: on a busy machine sixty concurrent
        # logins may wait longer than the default for a connection, which would answer 503.
        "GPUFLEET_DB_POOL_TIMEOUT_SECONDS": "60",
        **identity_provider.server_env(),
    }
    with ServerProcess(module_database_url, extra_env=env) as process:
        yield process


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server.base_url, timeout=60.0) as client:
        yield client


def _credentials(client_id: str, secret: str) -> dict:
    return {"grantType": "client_credentials", "clientID": client_id, "clientSecret": secret}


def _token(http, body: dict, address: str) -> httpx.Response:
    return http.post("/api/v1/token", json=body, headers={"X-Forwarded-For": address})


def _new_key(http, server) -> tuple[str, str]:
    created = new_service_account(_Authed(http, server.auth_headers()), "victim")
    return created["clientId"], created["clientSecret"]


class _Authed:
    """``http`` with the administrator's headers on every POST (what the helper needs)."""

    def __init__(self, http, headers) -> None:
        self.http, self.headers = http, headers

    def post(self, path: str, json: dict):
        return self.http.post(path, json=json, headers=self.headers)


def test_a_correct_login_from_another_address_succeeds_during_an_attack(http, server):
    client_id, secret = _new_key(http, server)
    statuses = [_token(http, _credentials(client_id, "guess"), "10.0.0.66") for _ in range(12)]
    assert [r.status_code for r in statuses] == [400] * LIMIT + [429] * 2
    assert "retry in" in statuses[-1].json()["message"]

    assert _token(http, _credentials(client_id, secret), "10.0.0.7").status_code == 200
    # The attacking address stays locked for this id, even with the right secret.
    assert _token(http, _credentials(client_id, secret), "10.0.0.66").status_code == 429
    # The administrator is untouched by an attack on another id.
    assert _token(http, _credentials(ADMIN_ID, ADMIN_SECRET), "10.0.0.66").status_code == 200


# Six times the limit at once, more than the server's 40 worker threads: exactly the limit is
# evaluated and the rest refused, however many arrive together (the limiter admits and counts
# in one step). Those beyond the database pool wait for admission on the event loop, not in a
# worker thread (tests/test_admission.py), so none of them holds up the others.
GUESSES = 6 * LIMIT


def test_concurrent_guesses_never_exceed_the_limit(http, server):
    client_id, _ = _new_key(http, server)
    with ThreadPoolExecutor(GUESSES) as pool:
        responses = list(
            pool.map(
                lambda _: _token(http, _credentials(client_id, "guess"), "10.0.1.1"),
                range(GUESSES),
            )
        )
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(400) == LIMIT, statuses
    assert statuses.count(429) == GUESSES - LIMIT, statuses


def test_concurrent_correct_logins_are_all_answered(http, server):
    client_id, secret = _new_key(http, server)
    with ThreadPoolExecutor(3 * LIMIT) as pool:
        responses = list(
            pool.map(
                lambda _: _token(http, _credentials(client_id, secret), "10.0.1.2"),
                range(3 * LIMIT),
            )
        )
    assert [r.status_code for r in responses] == [200] * (3 * LIMIT)


def test_garbage_refresh_tokens_lock_out_no_other_user(http, identity_provider):
    for n in range(LIMIT + 5):
        garbage = {"grantType": "refresh_token", "refreshToken": f"not.a.token{n}"}
        assert _token(http, garbage, "10.0.2.1").status_code == 400
    exchanged = _token(
        http,
        {"grantType": "external_token_exchange", "externalToken": identity_provider.token()},
        "10.0.2.2",
    )
    assert exchanged.status_code == 200, exchanged.text
    refresh = {"grantType": "refresh_token", "refreshToken": exchanged.json()["refreshToken"]}
    assert _token(http, refresh, "10.0.2.2").status_code == 200

    # One token presented again and again is limited by itself.
    same = {"grantType": "refresh_token", "refreshToken": "the.same.garbage"}
    statuses = [_token(http, same, "10.0.2.3").status_code for _ in range(LIMIT + 1)]
    assert statuses == [400] * LIMIT + [429]


def test_one_address_has_a_ceiling_over_every_id(http):
    for n in range(ADDRESS_LIMIT):
        assert _token(http, _credentials(f"id-{n}", "guess"), "10.0.3.1").status_code == 400
    assert _token(http, _credentials(ADMIN_ID, ADMIN_SECRET), "10.0.3.1").status_code == 429
    assert _token(http, _credentials(ADMIN_ID, ADMIN_SECRET), "10.0.3.2").status_code == 200


def _audited_sources(http, server) -> list[str]:
    entries = audit_entries(http, headers=server.auth_headers(), sortOrder="desc")[:5]
    return [e.get("source_ip") for e in entries if e["action"] == "sign-in"]


def test_a_trusted_proxy_names_the_client_in_the_audit_log(http, server):
    _token(http, _credentials(ADMIN_ID, ADMIN_SECRET), "198.51.100.4, 127.0.0.1")
    # auth_headers() itself asks for a token (from 127.0.0.1), newest first.
    assert _audited_sources(http, server)[1] == "198.51.100.4"


def test_forwarded_addresses_are_ignored_by_default(tmp_path, module_database_url):
    with (
        ServerProcess(module_database_url, log_dir=tmp_path) as plain,
        httpx.Client(base_url=plain.base_url, timeout=60.0) as http,
    ):
        admin = plain.auth_headers()
        for n in range(LIMIT):
            spoofed = f"192.0.2.{n + 1}"
            assert _token(http, _credentials(ADMIN_ID, "guess"), spoofed).status_code == 400
        # Every guess counted against the real peer, whatever address it claimed.
        locked = _token(http, _credentials(ADMIN_ID, ADMIN_SECRET), "192.0.2.200")
        assert locked.status_code == 429
        created = new_service_account(_Authed(http, admin), "spoofer")
        client_id, secret = created["clientId"], created["clientSecret"]
        assert _token(http, _credentials(client_id, secret), "192.0.2.201").status_code == 200
        entries = audit_entries(http, headers=admin)
        issued = [e for e in entries if e["subject"] == client_id and e["action"] == "sign-in"]
        assert [e["source_ip"] for e in issued] == ["127.0.0.1"]


# The pieces on their own.


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("127.0.0.1", ["203.0.113.5"], "203.0.113.5"),
        ("127.0.0.1", ["203.0.113.5, 10.9.0.1"], "10.9.0.1"),
        ("127.0.0.1", ["203.0.113.5, 127.0.0.1"], "203.0.113.5"),
        ("127.0.0.1", ["203.0.113.5", "127.0.0.1"], "203.0.113.5"),
        ("127.0.0.1", ["not-an-address"], None),
        ("127.0.0.1", [], None),
        ("10.9.0.1", ["203.0.113.5"], None),
    ],
)
def test_forwarded_client(peer, forwarded, client):
    assert forwarded_client(peer, forwarded, parse_networks("127.0.0.1")) == client


def test_the_limiter_admits_and_counts_in_one_step():
    limiter = FailureLimiter(window_seconds=300)
    keys = [LimitKey("client:x", 3), LimitKey("address:a", 100)]
    start = threading.Barrier(20)
    evaluated: list[int] = []
    refused: list[int] = []

    def guess(n: int) -> None:
        start.wait()
        try:
            with limiter.attempt(keys):
                evaluated.append(n)
                time.sleep(0.01)  # an evaluation takes a while; others arrive meanwhile
                raise Invalid("wrong secret")
        except Invalid:
            pass
        except TooManyRequests:
            refused.append(n)

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(evaluated) == 3
    assert len(refused) == 17
    # Another id at the same address is still admitted; the address has room left.
    with limiter.attempt([LimitKey("client:y", 3), LimitKey("address:a", 100)]):
        pass


def test_success_forgets_the_failures_of_what_it_presented():
    limiter = FailureLimiter(window_seconds=300)
    keys = [LimitKey("client:x", 2), LimitKey("address:a", 3)]
    with pytest.raises(Invalid), limiter.attempt(keys):
        raise Invalid("typo")
    with limiter.attempt(keys, reset_on_success=["client:x"]):
        pass
    with pytest.raises(Invalid), limiter.attempt(keys):
        raise Invalid("typo")
    with pytest.raises(Invalid), limiter.attempt(keys):
        raise Invalid("typo")
    # client:x holds two failures now, the address three: both exhausted.
    with pytest.raises(TooManyRequests), limiter.attempt(keys):
        pass
