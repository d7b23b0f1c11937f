"""The external-issuer verifier against a JWKS served by the tests from keys they generate."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest
from cryptography.hazmat.primitives import serialization

from gpufleet.auth.oidc import OidcConfig, OidcVerifier
from gpufleet.auth.tokens import InvalidToken
from tests.support.jwks import AUDIENCE, ISSUER, IdentityProvider


@pytest.fixture(scope="module")
def idp():
    provider = IdentityProvider()
    yield provider
    provider.close()


@pytest.fixture
def verifier(idp):
    return OidcVerifier(OidcConfig(issuer=ISSUER, audience=AUDIENCE, jwks_url=idp.url))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(header: dict, claims: dict) -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"


def _claims(**overrides) -> dict:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "u", "iat": now, "exp": now + 300}
    claims.update(overrides)
    return claims


@pytest.mark.parametrize("kid", ["rsa-1", "ec-1"])
def test_valid_tokens_give_user_and_groups(idp, verifier, kid):
    identity = verifier.verify(idp.token(kid, groups=["ml-team", "ops"]))
    assert identity.username == "alice@example.test"
    assert identity.groups == ("ml-team", "ops")


def test_username_falls_back_to_sub_and_groups_claim_is_configurable(idp):
    verifier = OidcVerifier(
        OidcConfig(issuer=ISSUER, audience=AUDIENCE, jwks_url=idp.url, groups_claim="roles")
    )
    identity = verifier.verify(idp.token(preferred_username=None, roles=["admins"]))
    assert identity.username == "u-123"
    assert identity.groups == ("admins",)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"iss": "https://evil.example.test"}, "(?i)issuer"),
        ({"aud": "someone-else"}, "(?i)audience"),
        ({"exp": -120}, "expired"),
        ({"nbf": 600}, "not valid yet"),
        ({"exp": None}, "exp"),
    ],
)
def test_claims_that_do_not_check_out_are_refused(idp, verifier, overrides, reason):
    # Times are offsets from now, taken when the test runs (not when it is collected).
    now = int(time.time())
    overrides = {
        claim: now + value if claim in ("exp", "nbf") and value is not None else value
        for claim, value in overrides.items()
    }
    with pytest.raises(InvalidToken, match=reason):
        verifier.verify(idp.token(**overrides))


def test_alg_none_is_refused(verifier):
    token = _unsigned({"alg": "none", "kid": "rsa-1"}, _claims()) + "."
    with pytest.raises(InvalidToken, match="algorithm"):
        verifier.verify(token)


def test_hmac_signed_with_the_public_key_is_refused(idp, verifier):
    public_pem = (
        idp.keys["rsa-1"]
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    signing_input = _unsigned({"alg": "HS256", "kid": "rsa-1", "typ": "JWT"}, _claims())
    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    with pytest.raises(InvalidToken, match="algorithm"):
        verifier.verify(f"{signing_input}.{_b64(signature)}")


def test_algorithm_outside_the_allowlist_is_refused(idp):
    only_ec = OidcVerifier(
        OidcConfig(issuer=ISSUER, audience=AUDIENCE, jwks_url=idp.url, algorithms=("ES256",))
    )
    assert only_ec.verify(idp.token("ec-1")).username
    with pytest.raises(InvalidToken, match="algorithm"):
        only_ec.verify(idp.token("rsa-1"))


def test_symmetric_algorithms_cannot_be_configured(idp):
    with pytest.raises(ValueError, match="asymmetric"):
        OidcVerifier(OidcConfig(ISSUER, AUDIENCE, idp.url, algorithms=("HS256",)))


def test_tampered_payload_is_refused(idp, verifier):
    header, payload, signature = idp.token().split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["groups"] = ["admins"]
    forged = f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"
    with pytest.raises(InvalidToken, match="rejected"):
        verifier.verify(forged)


def test_rs_token_claiming_an_ec_key_is_refused(idp, verifier):
    _header, payload, signature = idp.token("rsa-1").split(".")
    swapped = _b64(json.dumps({"alg": "RS256", "kid": "ec-1", "typ": "JWT"}).encode())
    with pytest.raises(InvalidToken):
        verifier.verify(f"{swapped}.{payload}.{signature}")


def test_keys_are_cached_and_refreshed_on_an_unknown_kid(idp, verifier):
    verifier.verify(idp.token("rsa-1"))
    fetches = idp.fetches
    verifier.verify(idp.token("ec-1"))
    assert idp.fetches == fetches  # served from the cache
    idp.add_rsa_key("rsa-2")
    try:
        verifier._fetched_at = 0  # the minimum refresh interval has passed
        assert verifier.verify(idp.token("rsa-2")).username
        assert idp.fetches == fetches + 1
    finally:
        idp.remove_key("rsa-2")


def test_unknown_kids_cannot_flood_the_issuer(idp, verifier):
    verifier.verify(idp.token("rsa-1"))
    fetches = idp.fetches
    token = idp.token("rsa-1")
    _header, payload, signature = token.split(".")
    for i in range(20):
        fake = _b64(json.dumps({"alg": "RS256", "kid": f"made-up-{i}"}).encode())
        with pytest.raises(InvalidToken, match="does not publish"):
            verifier.verify(f"{fake}.{payload}.{signature}")
    assert idp.fetches <= fetches + 1


def test_revoked_key_is_refused_after_refresh(idp, verifier):
    idp.add_rsa_key("rsa-old")
    token = idp.token("rsa-old")
    verifier._fetched_at = 0
    assert verifier.verify(token).username
    idp.remove_key("rsa-old")
    fresh = OidcVerifier(OidcConfig(ISSUER, AUDIENCE, idp.url))
    with pytest.raises(InvalidToken, match="does not publish"):
        fresh.verify(token)
