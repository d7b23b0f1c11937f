"""Issuing and verifying the server's own access tokens (RS256 JWTs)."""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Callable

import jwt

from gpufleet.auth.principal import Principal
from gpufleet.store.credentials import SIGNING_ALGORITHM, SigningKey

ISSUER = "gpufleet"
ACCESS = "access"
REFRESH = "refresh"
AUDIENCE = "gpufleet-api"
_LEEWAY_SECONDS = 5


class InvalidToken(Exception):
    """The bearer token cannot be trusted; the message says why, without secrets."""


def _sdk_readable(payload: dict) -> bool:
    # The official SDK reads ``exp`` with base64.b64decode (standard alphabet, not URL-safe),
    # which silently drops '-' and '_'. Only payload encodings without them decode intact.
    # Serialised exactly as PyJWT does, so the check sees the bytes that get signed.
    raw = json.dumps(payload, separators=(",", ":")).encode()
    encoded = base64.urlsafe_b64encode(raw).rstrip(b"=")
    return b"-" not in encoded and b"_" not in encoded


class TokenService:
    """Signs with the oldest active key, verifies with any active key.

    ``reload_keys`` is called when a token names a key id this process has not seen, so a key
    created by another replica is picked up without a restart.
    """

    def __init__(
        self,
        keys: list[SigningKey],
        ttl_seconds: int,
        reload_keys: Callable[[], list[SigningKey]] | None = None,
    ) -> None:
        self._keys = {k.kid: k for k in keys}
        self._signer = keys[0]
        self._ttl = ttl_seconds
        self._reload = reload_keys

    @property
    def ttl_seconds(self) -> int:
        return self._ttl

    def issue(
        self,
        subject: str,
        *,
        subject_type: str = "accessKey",
        groups: tuple[str, ...] = (),
        kind: str = ACCESS,
        ttl_seconds: int | None = None,
    ) -> str:
        """Sign a token for ``subject``; ``kind`` is ACCESS or REFRESH."""
        now = int(time.time())
        payload = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": subject,
            "sbt": subject_type,
            "typ": kind,
            "iat": now,
            "nbf": now,
            "exp": now + (ttl_seconds or self._ttl),
        }
        if groups:
            payload["grp"] = list(groups)
        while True:
            payload["jti"] = secrets.token_hex(12)
            if not _sdk_readable(payload):
                continue
            token = jwt.encode(
                payload,
                self._signer.private_pem,
                algorithm=SIGNING_ALGORITHM,
                headers={"kid": self._signer.kid},
            )
            segment = token.split(".")[1]
            if "-" not in segment and "_" not in segment:
                return token

    def _key_for(self, kid: str) -> SigningKey:
        key = self._keys.get(kid)
        if key is None and self._reload is not None:
            self._keys = {k.kid: k for k in self._reload()}
            key = self._keys.get(kid)
        if key is None:
            raise InvalidToken("token signed by an unknown key")
        return key

    def verify(self, token: str, kind: str = ACCESS) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidToken("malformed bearer token") from None
        if header.get("alg") != SIGNING_ALGORITHM:
            raise InvalidToken("token algorithm is not accepted")
        key = self._key_for(str(header.get("kid", "")))
        try:
            claims = jwt.decode(
                token,
                key.public_pem,
                algorithms=[SIGNING_ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                leeway=_LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("token has expired") from None
        except jwt.ImmatureSignatureError:
            raise InvalidToken("token is not valid yet") from None
        except jwt.InvalidSignatureError:
            raise InvalidToken("token signature does not verify") from None
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"token rejected: {exc}") from None
        if claims.get("typ", ACCESS) != kind:
            raise InvalidToken(f"not an {kind} token")
        groups = claims.get("grp") or []
        return Principal(
            subject=str(claims["sub"]),
            token_id=str(claims.get("jti", "")),
            subject_type=str(claims.get("sbt", "accessKey")),
            groups=tuple(str(g) for g in groups) if isinstance(groups, list) else (),
        )
