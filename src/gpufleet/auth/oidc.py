"""Verifying tokens from an external OpenID Connect issuer through its JWKS.

Only asymmetric algorithms from an allowlist are accepted, and the key's type must match the
algorithm, so ``alg: none`` and HMAC-signed-with-the-public-key tokens are refused. Keys are
cached and fetched again when a token names a key id the cache does not hold (rate-limited,
so a flood of made-up key ids cannot turn into a flood of JWKS requests).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import httpx
import jwt

from gpufleet.auth.tokens import InvalidToken, rejected_as_invalid

ASYMMETRIC_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "ES256", "ES384", "PS256"})
_KEY_TYPE = {"RS": "RSA", "PS": "RSA", "ES": "EC"}
_MIN_REFRESH_INTERVAL_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class OidcConfig:
    issuer: str
    audience: str
    jwks_url: str
    username_claim: str = "preferred_username"
    groups_claim: str = "groups"
    algorithms: tuple[str, ...] = ("RS256", "ES256")
    timeout_seconds: float = 5.0
    leeway_seconds: int = 5


@dataclass(frozen=True, slots=True)
class ExternalIdentity:
    username: str
    groups: tuple[str, ...]


class OidcVerifier:
    def __init__(self, config: OidcConfig, http: httpx.Client | None = None) -> None:
        unknown = set(config.algorithms) - ASYMMETRIC_ALGORITHMS
        if unknown:
            raise ValueError(f"OIDC algorithms must be asymmetric; refused: {sorted(unknown)}")
        self.config = config
        self._http = http or httpx.Client(timeout=config.timeout_seconds)
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = 0.0
        self._lock = threading.Lock()

    def _refresh(self) -> None:
        with self._lock:
            if time.monotonic() - self._fetched_at < _MIN_REFRESH_INTERVAL_SECONDS and self._keys:
                return
            try:
                response = self._http.get(self.config.jwks_url)
                response.raise_for_status()
                document = response.json()
            except (httpx.HTTPError, ValueError):
                raise InvalidToken("the identity provider's keys cannot be fetched") from None
            keys: dict[str, jwt.PyJWK] = {}
            for entry in document.get("keys", []):
                try:
                    key = jwt.PyJWK(entry)
                except jwt.PyJWTError:
                    continue  # keys of algorithms we do not accept
                keys[str(entry.get("kid", ""))] = key
            self._keys = keys
            self._fetched_at = time.monotonic()

    def _key(self, kid: str) -> jwt.PyJWK:
        if kid not in self._keys:
            self._refresh()
        key = self._keys.get(kid)
        if key is None:
            raise InvalidToken("token signed by a key the identity provider does not publish")
        return key

    def verify(self, token: str) -> ExternalIdentity:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidToken("malformed bearer token") from None
        algorithm = str(header.get("alg", ""))
        if algorithm not in self.config.algorithms:
            raise InvalidToken("token algorithm is not accepted")
        key = self._key(str(header.get("kid", "")))
        if _KEY_TYPE.get(algorithm[:2]) != key.key_type:
            raise InvalidToken("token algorithm does not match its key")
        with rejected_as_invalid():
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[algorithm],
                audience=self.config.audience,
                issuer=self.config.issuer,
                leeway=self.config.leeway_seconds,
                options={"require": ["exp", "iss", "aud"]},
            )
        username = claims.get(self.config.username_claim) or claims.get("sub")
        if not isinstance(username, str) or not username:
            raise InvalidToken(f"token has no {self.config.username_claim!r} claim")
        groups = claims.get(self.config.groups_claim) or []
        if isinstance(groups, str):
            groups = [groups]
        return ExternalIdentity(username, tuple(str(g) for g in groups if isinstance(g, str | int)))
