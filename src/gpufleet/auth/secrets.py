"""Hashing and checking client secrets (scrypt, constant-time comparison)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

# scrypt's cost parameters. The suite lowers SCRYPT_COST: it hashes thousands of secrets, and what
# it checks is that hashing and constant-time comparison happen, not the work factor.
SCRYPT_COST, _R, _P = 2**14, 8, 1
_SCHEME = "scrypt"


def generate_secret() -> str:
    """32 random bytes, URL-safe. Never starting with ``-``: a secret passed as the value of a
    command-line flag (``--client-secret -x…``) would be read as another flag."""
    while (secret := secrets.token_urlsafe(32)).startswith("-"):
        pass
    return secret


def generate_client_id(prefix: str = "gf") -> str:
    return f"{prefix}-{secrets.token_hex(8)}"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def hash_secret(secret: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=SCRYPT_COST, r=_R, p=_P, dklen=32)
    return f"{_SCHEME}${SCRYPT_COST}${_R}${_P}${_b64(salt)}${_b64(digest)}"


# Checked when the client id is unknown, so a miss costs as much time as a hit.
_DUMMY_HASH = hash_secret(secrets.token_urlsafe(16))


def verify_secret(secret: str, stored: str | None) -> bool:
    """True when ``secret`` matches ``stored``; takes the same time whether or not it does."""
    scheme, n, r, p, salt, expected = (stored or _DUMMY_HASH).split("$")
    if scheme != _SCHEME:
        return False
    digest = hashlib.scrypt(
        secret.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=32
    )
    return hmac.compare_digest(digest, base64.b64decode(expected)) and stored is not None
