"""``POST /api/v1/token`` and the bearer tokens it issues: grants, refusals, SDK decoding."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import sys
import threading
import time
from datetime import UTC, datetime

import jwt
import pytest
import sqlalchemy as sa

from gpufleet.api.app import create_app
from gpufleet.auth import tokens as tokens_module
from gpufleet.auth.bootstrap import ensure_admin
from gpufleet.auth.secrets import generate_secret, hash_secret, verify_secret
from gpufleet.auth.tokens import AUDIENCE, ISSUER, InvalidToken, TokenService
from gpufleet.settings import Settings
from gpufleet.store import access_keys as access_key_store
from gpufleet.store.credentials import _new_rsa_key, load_signing_keys, put_access_key
from gpufleet.store.tables import access_keys, signing_keys
from tests.support.databases import ADMIN_ID, ADMIN_SECRET
from tests.support.shared_app import shared_app

TOKEN_URL = "/api/v1/token"
WORKLOADS_URL = "/api/v1/workloads"
SERVICE_ID, SERVICE_SECRET = "svc-reader", "s3cret-Ω-value"


@pytest.fixture(scope="module")
def server(request, tmp_path_factory):
    # Failure limits are tested elsewhere; here many refusals in a row are the point.
    limits = {"token_failure_limit": 10_000, "token_failure_address_limit": 100_000}
    with shared_app(request, tmp_path_factory, **limits) as app:
        engine = app.state.gpufleet.engine
        with engine.begin() as conn:
            put_access_key(
                conn, client_id=SERVICE_ID, name="svc", secret_hash=hash_secret(SERVICE_SECRET)
            )
            put_access_key(conn, client_id="svc-off", name="off", secret_hash=hash_secret("x1"))
            access_key_store.set_disabled(conn, "svc-off", True)
        yield app


@pytest.fixture
def http(server):
    from fastapi.testclient import TestClient

    with TestClient(server, raise_server_exceptions=False) as client:
        yield client


def _grant(http, body) -> dict:
    response = http.post(TOKEN_URL, json=body)
    assert response.status_code == 200, response.text
    return response.json()


def _sdk_exp(token: str) -> int:
    # Exactly what the official SDK's token refresher does with a token.
    payload = token.split(".")[1]
    return json.loads(base64.b64decode(payload + "=="))["exp"]


def _authorised(http, token: str) -> int:
    return http.get(WORKLOADS_URL, headers={"Authorization": f"Bearer {token}"}).status_code


def _assert_error(response, code: int) -> dict:
    assert response.status_code == code, response.text
    body = response.json()
    assert body["code"] == code
    assert isinstance(body["message"], str)
    assert body["message"]
    assert set(body) <= {"code", "message", "details"}
    assert "Traceback" not in response.text
    return body


@pytest.mark.parametrize(
    "body",
    [
        {"grantType": "client_credentials", "clientID": ADMIN_ID, "clientSecret": ADMIN_SECRET},
        {"grantType": "app_token", "appID": ADMIN_ID, "appSecret": ADMIN_SECRET},
        {"grantType": "app_token", "AppId": ADMIN_ID, "AppSecret": ADMIN_SECRET},
        {"grantType": "client_credentials", "clientID": SERVICE_ID, "clientSecret": SERVICE_SECRET},
        {"grantType": "app_token", "AppId": SERVICE_ID, "AppSecret": SERVICE_SECRET},
    ],
)
def test_grants_issue_working_tokens(http, body):
    granted = _grant(http, body)
    assert set(granted) == {"accessToken", "expiresIn"}
    assert granted["expiresIn"] == 3600
    token = granted["accessToken"]
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256"
    assert header["kid"]
    assert _sdk_exp(token) - time.time() == pytest.approx(3600, abs=60)
    assert _authorised(http, token) in (200, 403)
    if body.get("clientID", body.get("appID", body.get("AppId"))) == ADMIN_ID:
        assert _authorised(http, token) == 200


def test_sdk_can_read_every_issued_token(server, http):
    tokens = server.state.gpufleet.tokens
    # Subjects and groups of every length and with the characters that once broke decoding.
    alphabet = "ab~?>é日\x7f-_/+="
    for i in range(300):
        subject = "".join(alphabet[(i * 7 + j) % len(alphabet)] for j in range(i % 40 + 1))
        groups = tuple(alphabet[: i % 12] * (i % 5)) if i % 3 else ()
        token = tokens.issue(subject, subject_type="user", groups=groups)
        payload = token.split(".")[1]
        decoded = json.loads(base64.b64decode(payload + "=="))
        assert decoded["sub"] == subject
        assert decoded["exp"] > time.time()
        assert tokens.verify(token).subject == subject
    for _ in range(20):
        token = _grant(
            http, {"grantType": "app_token", "AppId": ADMIN_ID, "AppSecret": ADMIN_SECRET}
        )["accessToken"]
        assert _sdk_exp(token) > time.time()


@pytest.mark.parametrize(
    "body",
    [
        {"grantType": "client_credentials", "clientID": ADMIN_ID, "clientSecret": "wrong"},
        {"grantType": "client_credentials", "clientID": "nobody", "clientSecret": "x"},
        {"grantType": "app_token", "AppId": ADMIN_ID, "AppSecret": ADMIN_SECRET + " "},
        {"grantType": "client_credentials", "clientID": "svc-off", "clientSecret": "x1"},
        {
            "grantType": "client_credentials",
            "clientID": ADMIN_ID.upper(),
            "clientSecret": ADMIN_SECRET,
        },
        {
            "grantType": "client_credentials",
            "clientID": "' OR 1=1 --",
            "clientSecret": "' OR 1=1 --",
        },
        {"grantType": "client_credentials", "clientID": ADMIN_ID, "clientSecret": "x" * 100_000},
    ],
)
def test_bad_credentials_are_refused_alike(http, body):
    error = _assert_error(http.post(TOKEN_URL, json=body), 400)
    assert error["message"] == "Invalid client credentials."


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({}, "grantType"),
        ({"clientID": ADMIN_ID, "clientSecret": ADMIN_SECRET}, "grantType"),
        ({"grantType": "client_credentials", "clientID": ADMIN_ID}, "clientSecret"),
        ({"grantType": "client_credentials", "clientSecret": ADMIN_SECRET}, "clientID"),
        ({"grantType": "app_token", "appID": ADMIN_ID}, "appSecret"),
        ({"grantType": "client_credentials", "clientID": "", "clientSecret": ""}, "clientID"),
        ({"grantType": "password", "username": "u", "password": "p"}, "password"),
        ({"grantType": "bogus"}, "grantType"),
        ({"grantType": 7}, "grantType"),
        ({"grantType": "client_credentials", "clientID": 123, "clientSecret": "x"}, "clientID"),
        ({"grantType": "client_credentials", "clientID": ["a"], "clientSecret": "x"}, "clientID"),
    ],
)
def test_incomplete_requests_are_400_naming_what_is_wrong(http, body, fragment):
    error = _assert_error(http.post(TOKEN_URL, json=body), 400)
    assert fragment in error["message"]


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"{not json", "application/json"),
        (b"", "application/json"),
        (b"[1, 2]", "application/json"),
        (b'"client_credentials"', "application/json"),
        (b"null", "application/json"),
        (b"\xff\xfe\x00", "application/json"),
        (b"grantType=client_credentials", "text/plain"),
        (b'{"grantType": "client_credentials"' + b" " * 10_000, "application/json"),
    ],
)
def test_garbage_bodies_are_400_in_the_error_shape(http, content, content_type):
    response = http.post(TOKEN_URL, content=content, headers={"Content-Type": content_type})
    _assert_error(response, 400)


def _signing_key(server):
    with server.state.gpufleet.engine.connect() as conn:
        return load_signing_keys(conn)[0]


def _claims(**overrides) -> dict:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": ADMIN_ID,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": "t",
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _hs256_with_public_key(key) -> str:
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": key.kid}).encode())
    payload = _b64(json.dumps(_claims()).encode())
    signing_input = f"{header}.{payload}".encode()
    signature = hmac.new(key.public_pem.encode(), signing_input, hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(signature)}"


def _bad_tokens(server, http) -> dict[str, str]:
    key = _signing_key(server)
    good = _grant(
        http,
        {"grantType": "client_credentials", "clientID": ADMIN_ID, "clientSecret": ADMIN_SECRET},
    )["accessToken"]
    header, payload, signature = good.split(".")
    forged_payload = json.loads(base64.urlsafe_b64decode(payload + "=="))
    forged_payload["sub"] = "someone-else"
    stranger = _new_rsa_key()

    def sign(claims, pem=key.private_pem, kid=key.kid, alg="RS256"):
        return jwt.encode(claims, pem, algorithm=alg, headers={"kid": kid})

    return {
        "garbage": "not-a-token",
        "three garbage parts": "a.b.c",
        "empty parts": "..",
        "expired": sign(_claims(iat=1, nbf=1, exp=1000)),
        "not yet valid": sign(_claims(nbf=int(time.time()) + 3600)),
        "without exp": sign(_claims(exp=None)),
        "wrong audience": sign(_claims(aud="someone-else")),
        "wrong issuer": sign(_claims(iss="evil")),
        "tampered payload": f"{header}.{_b64(json.dumps(forged_payload).encode())}.{signature}",
        "tampered signature": f"{header}.{payload}.{signature[:-4]}AAAA",
        "stripped signature": f"{header}.{payload}.",
        "another key, same kid": sign(_claims(), pem=stranger.private_pem),
        "unknown kid": sign(_claims(), pem=stranger.private_pem, kid=stranger.kid),
        "alg none": jwt.encode(_claims(), None, algorithm="none", headers={"kid": key.kid}),
        "HS256 with the public key": _hs256_with_public_key(key),
        "refresh token": server.state.gpufleet.tokens.issue(ADMIN_ID, kind="refresh"),
        "huge": "a" * 20_000,
        "unicode": "ünïcödé.tøkén.x",
    }


def test_every_untrustworthy_token_is_401(server, http):
    for name, token in _bad_tokens(server, http).items():
        for path in (WORKLOADS_URL, f"{WORKLOADS_URL}/count", f"{WORKLOADS_URL}/{'0' * 32}"):
            header = f"Bearer {token}".encode()
            response = http.get(path, headers={"Authorization": header})
            _assert_error(response, 401)
            assert response.headers["WWW-Authenticate"].startswith("Bearer"), name


def _refusal(tokens: TokenService, token: str) -> str:
    with pytest.raises(InvalidToken) as refused:
        tokens.verify(token)
    return str(refused.value)


def test_a_remembered_header_refuses_every_token_the_full_check_refuses(server, http):
    """A token whose header verified before skips the header's parsing, never a check: each
    untrustworthy token is refused, in the same words, whether its header is new or known."""
    keys = [_signing_key(server)]
    known = TokenService(keys, 60)
    assert known.verify(known.issue(ADMIN_ID)).subject == ADMIN_ID
    for name, token in _bad_tokens(server, http).items():
        assert _refusal(known, token) == _refusal(TokenService(keys, 60), token), name
        assert known.verify_known(token) is None, name  # the event loop's check never admits it


def test_the_event_loop_check_leaves_every_doubt_to_the_full_one(engine):
    """``verify_known`` (no database, for the event loop) answers only for a header that
    verified before while the keys are fresh; otherwise the full check decides in a thread."""
    with engine.connect() as conn:
        active = load_signing_keys(conn)
    tokens = TokenService(list(active), 60, lambda: list(active), refresh_seconds=0.3)
    token = tokens.issue("someone", groups=("team",), generation=3)
    assert tokens.verify_known(token) is None  # a header not seen yet
    assert tokens.verify(token) == tokens.verify_known(token)
    assert tokens.verify_known(token).groups == ("team",)
    assert tokens.verify_known(token, kind="refresh") is None
    time.sleep(0.35)
    assert tokens.verify_known(token) is None  # the keys are due to be read again
    active[:] = [_new_rsa_key()]  # meanwhile the key was revoked
    assert _refusal(tokens, token) == "token signed by an unknown key"
    assert tokens.verify_known(token) is None


def test_a_parsed_key_is_dropped_with_its_key(engine):
    """Keys are parsed once, and tokens of a header seen before go straight to the key it
    names: a key deactivated elsewhere still refuses its tokens after the next read."""
    with engine.connect() as conn:
        active = load_signing_keys(conn)
    tokens = TokenService(list(active), 60, lambda: list(active), refresh_seconds=0.05)
    token = tokens.issue("someone")
    assert tokens.verify(token).subject == "someone"
    assert tokens.verify(token).subject == "someone"  # through the remembered header
    active[:] = [_new_rsa_key()]  # the old key revoked, another in its place
    time.sleep(0.1)
    assert _refusal(tokens, token) == "token signed by an unknown key"
    tokens.reload()
    assert _refusal(tokens, token) == "token signed by an unknown key"


def test_a_remembered_token_is_refused_once_it_expires(engine):
    """A token that verified is not decoded again, but its expiry and its key are checked on
    every use: past its expiry (and the leeway) it is refused in the full check's words."""
    with engine.connect() as conn:
        active = load_signing_keys(conn)
    tokens = TokenService(list(active), 60, lambda: list(active))
    # Expired two to three seconds ago (whole seconds), within the leeway of five; a busy machine
    # still has two seconds to verify it twice.
    token = tokens.issue("someone", expires_at=int(time.time()) - 2)
    assert tokens.verify(token).subject == "someone"
    assert tokens.verify_known(token).subject == "someone"
    deadline = time.time() + 10
    while tokens.verify_known(token) is not None:
        assert time.time() < deadline, "a remembered token outlived its expiry"
        time.sleep(0.2)
    assert _refusal(tokens, token) == "token has expired"


def test_a_remembered_token_is_refused_once_its_key_is_gone(engine):
    with engine.connect() as conn:
        active = load_signing_keys(conn)
    tokens = TokenService(list(active), 60, lambda: list(active))
    token = tokens.issue("someone")
    assert tokens.verify(token).subject == "someone"
    active[:] = [_new_rsa_key()]
    tokens.reload()  # the key revoked in this process: no wait for the next read
    assert tokens.verify_known(token) is None
    assert _refusal(tokens, token) == "token signed by an unknown key"


def test_remembered_tokens_are_bounded(engine):
    with engine.connect() as conn:
        keys = load_signing_keys(conn)
    tokens = TokenService(keys, 60)
    issued = [tokens.issue(f"caller-{n}") for n in range(1100)]
    assert [tokens.verify(t).subject for t in issued] == [f"caller-{n}" for n in range(1100)]
    assert len(tokens._verified_tokens) <= 1024
    # The oldest were forgotten, and still verify through the full check.
    assert issued[0] not in tokens._verified_tokens
    assert tokens.verify(issued[0]).subject == "caller-0"


def test_remembering_tokens_from_many_threads_at_once_keeps_the_bound(engine, monkeypatch):
    # Requests verify in worker threads and on the event loop at once: evicting the oldest
    # while another thread adds or drops one must neither fail nor pass the bound.
    monkeypatch.setattr(tokens_module, "_MAX_VERIFIED_TOKENS", 8)
    with engine.connect() as conn:
        keys = load_signing_keys(conn)
    tokens = TokenService(keys, 60)
    key = next(iter(tokens._keys.values()))
    claims = {"exp": time.time() + 60, "iat": time.time()}
    errors: list[BaseException] = []
    stop = time.monotonic() + 1.5

    def remember(n: int) -> None:
        i = 0
        try:
            while time.monotonic() < stop:
                tokens._remember(f"{n}-{i}", key, claims)
                assert len(tokens._verified_tokens) <= 8
                i += 1
        except BaseException as exc:
            errors.append(exc)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        threads = [threading.Thread(target=remember, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert errors == []


def test_a_key_read_again_keeps_its_parsed_public_half(engine):
    with engine.connect() as conn:
        keys = load_signing_keys(conn)
    tokens = TokenService(keys, 60, lambda: keys)
    parsed = dict(tokens._keys)
    tokens.reload()
    assert all(tokens._keys[kid] is key for kid, key in parsed.items())


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer "},
        {"Authorization": f"Basic {base64.b64encode(b'a:b').decode()}"},
        {"Authorization": "Token abc"},
    ],
)
def test_missing_or_malformed_authorization_is_401(http, headers):
    for path in (WORKLOADS_URL, f"{WORKLOADS_URL}/count", f"{WORKLOADS_URL}/{'0' * 32}"):
        _assert_error(http.get(path, headers=headers), 401)


def test_a_key_created_by_another_replica_is_picked_up(server, http):
    replica_key = _new_rsa_key()
    with server.state.gpufleet.engine.begin() as conn:
        conn.execute(
            signing_keys.insert().values(
                kid=replica_key.kid,
                algorithm="RS256",
                private_pem=replica_key.private_pem,
                public_pem=replica_key.public_pem,
                created_at=datetime.now(UTC),
                active=True,
            )
        )
    token = jwt.encode(
        _claims(), replica_key.private_pem, algorithm="RS256", headers={"kid": replica_key.kid}
    )
    # Unknown key ids re-read the key set at most once a second, so allow a few rounds.
    deadline = time.monotonic() + 10
    while _authorised(http, token) != 200 and time.monotonic() < deadline:
        time.sleep(0.25)
    assert _authorised(http, token) == 200
    with server.state.gpufleet.engine.begin() as conn:
        conn.execute(
            signing_keys.update().where(signing_keys.c.kid == replica_key.kid).values(active=False)
        )


class _HeldKeyRead:
    """A read of the signing keys that holds until ``go_on`` is set, counting the reads."""

    def __init__(self, keys: list) -> None:
        self.keys = keys
        self.reading, self.go_on = threading.Event(), threading.Event()
        self.reads: list[int] = []

    def __call__(self) -> list:
        self.reads.append(threading.get_ident())
        self.reading.set()
        self.go_on.wait(5)
        return self.keys


def test_keys_are_read_again_by_one_thread_at_a_time(engine):
    """Requests that find the keys stale together do not each take a connection to read them:
    one reads, the others go on with the keys they have."""
    with engine.connect() as conn:
        read = _HeldKeyRead(load_signing_keys(conn))
    tokens = TokenService(read.keys, 60, read, refresh_seconds=0.05)
    token = tokens.issue("someone")
    time.sleep(0.1)
    first = threading.Thread(target=tokens.verify, args=(token,))
    first.start()
    try:
        assert read.reading.wait(30)
        assert tokens.verify(token).subject == "someone"
        assert tokens.issue("someone else")
    finally:
        read.go_on.set()
        first.join()
    assert len(read.reads) == 1


def test_a_new_key_id_waits_for_the_read_under_way(engine):
    """A token of a key this process has not seen, arriving while another thread reads the keys,
    waits for that read instead of being refused with the keys from before it."""
    with engine.connect() as conn:
        keys = load_signing_keys(conn)
    rotated = _new_rsa_key()
    read = _HeldKeyRead([*keys, rotated])
    tokens = TokenService(keys, 60, read, refresh_seconds=0.05)
    old = tokens.issue("someone")
    new = jwt.encode(
        _claims(sub="someone"), rotated.private_pem, algorithm="RS256",
        headers={"kid": rotated.kid},
    )  # fmt: skip
    time.sleep(1.1)
    first = threading.Thread(target=tokens.verify, args=(old,))
    first.start()
    verified = []
    try:
        assert read.reading.wait(30)
        second = threading.Thread(target=lambda: verified.append(tokens.verify(new)))
        second.start()
        time.sleep(0.2)
        assert verified == []  # waiting for the read under way
    finally:
        read.go_on.set()
        first.join()
    second.join(30)
    assert [p.subject for p in verified] == ["someone"]
    assert len(read.reads) == 1


def test_generated_admin_is_returned_once_and_stored_as_a_hash(database_url):
    settings = Settings(database_url=database_url)
    first = create_app(settings)
    try:
        generated = first.state.generated_admin
        assert generated is not None
        assert generated.client_id
        assert len(generated.client_secret) >= 32
        with first.state.gpufleet.engine.connect() as conn:
            stored = conn.execute(
                sa.select(access_keys.c.secret_hash).where(
                    access_keys.c.client_id == generated.client_id
                )
            ).scalar_one()
        assert generated.client_secret not in stored
        assert verify_secret(generated.client_secret, stored)
        assert ensure_admin(first.state.gpufleet.engine, settings) is None
        from fastapi.testclient import TestClient

        with TestClient(first, raise_server_exceptions=False) as http:
            token = _grant(
                http,
                {
                    "grantType": "client_credentials",
                    "clientID": generated.client_id,
                    "clientSecret": generated.client_secret,
                },
            )["accessToken"]
            assert _authorised(http, token) == 200
    finally:
        first.state.gpufleet.engine.dispose()
    second = create_app(settings)
    try:
        assert second.state.generated_admin is None
    finally:
        second.state.gpufleet.engine.dispose()


def test_a_restart_does_not_reset_the_administrators_secret(database_url):
    first = create_app(
        Settings(database_url=database_url, admin_client_id="boss", admin_client_secret="one-1")
    )
    first.state.gpufleet.engine.dispose()
    second = create_app(
        Settings(database_url=database_url, admin_client_id="boss", admin_client_secret="two-2")
    )
    try:
        assert second.state.generated_admin is None
        with second.state.gpufleet.engine.connect() as conn:
            stored = conn.execute(
                sa.select(access_keys.c.secret_hash).where(access_keys.c.client_id == "boss")
            ).scalar_one()
        # Changing it is an administrator's act (rotate) or the operator's (restore-admin).
        assert verify_secret("one-1", stored)
        assert not verify_secret("two-2", stored)
    finally:
        second.state.gpufleet.engine.dispose()


def test_verify_secret():
    stored = hash_secret("right")
    assert verify_secret("right", stored)
    assert not verify_secret("wrong", stored)
    assert not verify_secret("right", None)
    assert hash_secret("right") != stored
    assert not verify_secret(secrets.token_urlsafe(8), stored)


def test_generated_secrets_can_be_passed_as_a_flag_value():
    # One in 64 URL-safe secrets would start with "-", which argparse reads as a flag: over
    # 2,000 secrets such a start would be missed by chance with a probability of about 1e-14.
    secrets = [generate_secret() for _ in range(2000)]
    assert not [s for s in secrets if s.startswith("-")]
    assert len(set(secrets)) == len(secrets)
    assert {len(s) for s in secrets} == {43}
