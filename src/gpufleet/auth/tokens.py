"""Issuing and verifying the server's own access tokens (RS256 JWTs)."""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from jwt import api_jws

from gpufleet.auth.principal import Principal
from gpufleet.core.roles import SubjectType, subject_type_of
from gpufleet.store.credentials import SIGNING_ALGORITHM, SigningKeyRow

ISSUER = "gpufleet"
ACCESS = "access"
REFRESH = "refresh"
AUDIENCE = "gpufleet-api"
_LEEWAY_SECONDS = 5
# Headers remembered as verified; more than a few means keys rotated many times in one process.
_MAX_VERIFIED_HEADERS = 64
# Tokens remembered as verified: the callers active at once, about 2 KiB each.
_MAX_VERIFIED_TOKENS = 1024


def new_token_id() -> str:
    """A random ``jti``."""
    return secrets.token_hex(12)


class InvalidToken(Exception):
    """The bearer token cannot be trusted; the message says why, without secrets."""


@contextmanager
def rejected_as_invalid() -> Iterator[None]:
    """Turn PyJWT's refusal of a token's signature or claims into ``InvalidToken`` saying why."""
    try:
        yield
    except jwt.ExpiredSignatureError:
        raise InvalidToken("token has expired") from None
    except jwt.ImmatureSignatureError:
        raise InvalidToken("token is not valid yet") from None
    except jwt.InvalidSignatureError:
        raise InvalidToken("token rejected: its signature does not verify") from None
    except jwt.PyJWTError as exc:
        raise InvalidToken(f"token rejected: {exc}") from None


# For ASCII JSON only these characters, and only inside strings, can become the base64url
# digits '-' and '_'; a \u escape means the same to every JSON reader.
_SDK_UNSAFE = {ord(">"): "\\u003e", ord("?"): "\\u003f", ord("~"): "\\u007e"}


def sdk_readable_json(payload: dict) -> bytes:
    """The claims as JSON whose base64url encoding contains no '-' or '_'.

    The official SDK reads ``exp`` with ``base64.b64decode`` (standard alphabet, not URL-safe),
    which silently drops those two characters and garbles the rest; this encoding avoids them
    for every payload, whatever the subject or groups hold.
    """
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=True)
    return text.translate(_SDK_UNSAFE).encode("ascii")


@dataclass(frozen=True, slots=True)
class _VerifyingKey:
    """An active signing key with its public half parsed once, not on every token."""

    row: SigningKeyRow
    public_key: RSAPublicKey


def _verifying_key(row: SigningKeyRow, known: dict[str, _VerifyingKey]) -> _VerifyingKey:
    kept = known.get(row.kid)
    if kept is not None and kept.row == row:
        return kept
    public_key = serialization.load_pem_public_key(row.public_pem.encode())
    if not isinstance(public_key, RSAPublicKey):
        raise RuntimeError(f"signing key {row.kid} is not an RSA key")
    return _VerifyingKey(row, public_key)


class TokenService:
    """Signs with the newest active key, verifies with any active key.

    The key set is read again from the database every ``refresh_seconds`` and whenever a token
    names a key id this process has not seen, so a key rotated or revoked through any replica
    takes effect on all of them without a restart. One thread at a time reads them while the
    others go on with the keys they have: requests arriving together do not each take a
    database connection (in a worker thread, outside the requests' admission) for the same read.

    Verifying a token parses nothing twice: each key's public half is parsed when the key set is
    installed, and the header of a token that verified is remembered by its encoded text, so a
    later token with the same header (every token this server signs with one key has the
    same) goes straight to the signature check with the key it names. A token that verified is
    remembered whole with its claims and key: until it expires, and while its key stays active,
    it is not decoded again (the claims of a signed token cannot change; only time and the key
    set can make it invalid, and both are checked on every use).
    """

    def __init__(
        self,
        keys: list[SigningKeyRow],
        ttl_seconds: int,
        reload_keys: Callable[[], list[SigningKeyRow]] | None = None,
        refresh_seconds: float = 30.0,
        refresh_ttl_seconds: int = 24 * 3600,
    ) -> None:
        self._ttl = ttl_seconds
        self.refresh_ttl_seconds = refresh_ttl_seconds
        self._reload = reload_keys
        self._refresh_seconds = refresh_seconds
        self._reloading = threading.Lock()
        self._signer: SigningKeyRow | None = None
        self._keys: dict[str, _VerifyingKey] = {}
        # The encoded header of tokens that verified, and the key id it names. Only a header
        # whose token carried a valid signature of one of our keys gets here, so this holds a
        # few entries (one per key this server signed with), whatever callers send.
        self._verified_headers: dict[str, str] = {}
        # Tokens that verified: their key and claims (only valid tokens, at most a bound).
        # Read without the lock; changed only under it (an eviction walks the dict).
        self._verified_tokens: dict[str, tuple[_VerifyingKey, dict]] = {}
        self._verified_tokens_lock = threading.Lock()
        self._install(keys)

    def _install(self, keys: list[SigningKeyRow]) -> None:
        if not keys:
            raise RuntimeError("no active signing key in the database")
        # One assignment: a thread verifying meanwhile sees the old set or the new one whole.
        self._keys = {k.kid: _verifying_key(k, self._keys) for k in keys}
        if self._signer is None or self._signer.kid != keys[-1].kid:
            self._signer = keys[-1]
            # Parsing an RSA private key checks it at length (~0.1 s); once per key, not per token.
            self._signing_key = serialization.load_pem_private_key(
                self._signer.private_pem.encode(), password=None
            )
        self._loaded_at = time.monotonic()

    def reload(self) -> None:
        """Read the active keys again now (after a rotation or revocation in this process)."""
        if self._reload is not None:
            self._install(self._reload())

    def _age(self) -> float:
        """Seconds since the keys were read."""
        return time.monotonic() - self._loaded_at

    def _refresh_if_stale(self, minimum_age: float | None = None, *, wait: bool = False) -> None:
        """Read the keys again if they are older than ``minimum_age`` (default: the refresh
        interval). While another thread reads them, go on with these, or with ``wait`` (a key
        id not among them) wait for that read."""
        age = self._age()
        if self._reload is None or age < (minimum_age or self._refresh_seconds):
            return
        if not self._reloading.acquire(blocking=wait):
            return  # another thread is reading them right now
        try:
            if time.monotonic() - self._loaded_at >= age:  # nobody read them meanwhile
                self.reload()
        finally:
            self._reloading.release()

    @property
    def ttl_seconds(self) -> int:
        return self._ttl

    def issue(
        self,
        subject: str,
        *,
        subject_type: str = SubjectType.SERVICE_ACCOUNT.value,
        groups: tuple[str, ...] = (),
        credential: str = "",
        kind: str = ACCESS,
        ttl_seconds: int | None = None,
        generation: int = 0,
        session_id: str = "",
        jti: str | None = None,
        expires_at: int | None = None,
    ) -> str:
        """Sign a token for ``subject``; ``kind`` is ACCESS or REFRESH.

        ``credential`` is the client id the token was obtained with, when it is not the subject
        itself (a user's access key); ``generation`` is the credential's token generation (a
        token of an older one is refused); a refresh token names its ``session_id`` and
        carries ``jti``. ``expires_at`` (epoch seconds) caps the lifetime, for sessions with an
        absolute end.
        """
        self._refresh_if_stale()
        now = int(time.time())
        exp = now + (ttl_seconds or self._ttl)
        if expires_at is not None:
            exp = min(exp, expires_at)
        payload = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": subject,
            "sbt": subject_type,
            "typ": kind,
            "iat": now,
            "nbf": now,
            "exp": exp,
        }
        if groups:
            payload["grp"] = list(groups)
        if credential and credential != subject:
            payload["cid"] = credential
        if generation:
            payload["gen"] = generation
        if session_id:
            payload["sid"] = session_id
        payload["jti"] = jti or new_token_id()
        return api_jws.encode(
            sdk_readable_json(payload),
            self._signing_key,
            algorithm=SIGNING_ALGORITHM,
            headers={"kid": self._signer.kid, "typ": "JWT"},
        )

    def _key_for(self, kid: str) -> _VerifyingKey:
        self._refresh_if_stale()
        key = self._keys.get(kid)
        if key is None:
            # At most once a second, so made-up key ids cannot turn into a query flood.
            self._refresh_if_stale(minimum_age=1.0, wait=True)
            key = self._keys.get(kid)
        if key is None:
            raise InvalidToken("token signed by an unknown key")
        return key

    def verify(self, token: str, kind: str = ACCESS) -> Principal:
        """The principal of a valid token of ``kind``, or ``InvalidToken`` saying why not."""
        self._refresh_if_stale()
        claims = self._claims_of_known_header(token)
        if claims is None:
            claims = self._claims(token)
        return _principal(claims, kind)

    def verify_known(self, token: str, kind: str = ACCESS) -> Principal | None:
        """``verify`` without reading anything, for the event loop: the principal of a valid
        token whose header verified before, or None when ``verify`` must decide (the keys are
        due to be read again, the header is new, or the token is refused: ``verify`` says
        why). Never a principal that ``verify`` would refuse."""
        if self._reload is not None and self._age() >= self._refresh_seconds:
            return None
        claims = self._claims_of_known_header(token)
        if claims is None:
            return None
        try:
            return _principal(claims, kind)
        except InvalidToken:
            return None

    def _claims_of_known_header(self, token: str) -> dict | None:
        """The claims of a token that verified before, or whose header did, with a key still
        active, or None when the full path must decide (a new header, or any refusal: the full
        path words it)."""
        remembered = self._verified_tokens.get(token)
        if remembered is not None:
            key, claims = remembered
            if self._keys.get(key.row.kid) is key and _in_force(claims, time.time()):
                return claims
            with self._verified_tokens_lock:
                self._verified_tokens.pop(token, None)
        header = token.partition(".")[0]
        key = self._keys.get(self._verified_headers.get(header, ""))
        if key is None:
            return None
        try:
            claims = _decode(token, key)
        except jwt.PyJWTError:
            return None
        self._remember(token, key, claims)
        return claims

    def _remember(self, token: str, key: _VerifyingKey, claims: dict) -> None:
        verified = self._verified_tokens
        with self._verified_tokens_lock:
            while len(verified) >= _MAX_VERIFIED_TOKENS:
                del verified[next(iter(verified))]  # the oldest
            verified[token] = (key, claims)

    def _claims(self, token: str) -> dict:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidToken("malformed bearer token") from None
        if header.get("alg") != SIGNING_ALGORITHM:
            raise InvalidToken("token algorithm is not accepted")
        kid = str(header.get("kid", ""))
        key = self._key_for(kid)
        with rejected_as_invalid():
            claims = _decode(token, key)
        if len(self._verified_headers) < _MAX_VERIFIED_HEADERS:
            self._verified_headers[token.partition(".")[0]] = kid
        self._remember(token, key, claims)
        return claims


def _decode(token: str, key: _VerifyingKey) -> dict:
    return jwt.decode(
        token,
        key.public_key,
        algorithms=[SIGNING_ALGORITHM],
        audience=AUDIENCE,
        issuer=ISSUER,
        leeway=_LEEWAY_SECONDS,
        options={"require": ["exp", "iat", "sub", "iss", "aud"]},
    )


def _in_force(claims: dict, now: float) -> bool:
    """Whether verified claims are still in force at ``now``, as ``_decode`` checks them: not
    expired, and not before their start (with the same leeway)."""
    started = max(claims["iat"], claims.get("nbf", claims["iat"]))
    return claims["exp"] > now - _LEEWAY_SECONDS and started <= now + _LEEWAY_SECONDS


def _principal(claims: dict, kind: str) -> Principal:
    """The caller a verified token's claims name, if they make sense for ``kind``."""
    if claims.get("typ", ACCESS) != kind:
        raise InvalidToken(f"not an {kind} token")
    groups = claims.get("grp") or []
    subject = str(claims["sub"])
    try:
        # Tokens issued before service accounts had their name say "accessKey".
        subject_type = subject_type_of(str(claims.get("sbt", SubjectType.SERVICE_ACCOUNT)))
    except ValueError:
        raise InvalidToken("token names an unknown subject type") from None
    credential = str(claims.get("cid", ""))
    if not credential and subject_type is SubjectType.SERVICE_ACCOUNT:
        credential = subject
    return Principal(
        subject=subject,
        token_id=str(claims.get("jti", "")),
        subject_type=subject_type.value,
        credential=credential,
        groups=tuple(str(g) for g in groups) if isinstance(groups, list) else (),
        generation=generation if isinstance(generation := claims.get("gen", 0), int) else -1,
        session_id=str(claims.get("sid", "")),
    )
