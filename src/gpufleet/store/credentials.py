"""Signing keys and access keys, kept in the database so every replica shares them."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy.engine import Connection

from gpufleet.store.dialect import lock_rows
from gpufleet.store.tables import access_keys, signing_keys

SIGNING_ALGORITHM = "RS256"


@dataclass(frozen=True, slots=True)
class SigningKeyRow:
    kid: str
    algorithm: str
    private_pem: str
    public_pem: str


@dataclass(frozen=True, slots=True)
class AccessKeyRow:
    client_id: str
    name: str
    secret_hash: str
    disabled: bool
    token_generation: int = 0
    # "service-account", or "access-key" for a key speaking for ``owner_type``/``owner_id``.
    kind: str = "service-account"
    owner_type: str = ""
    owner_id: str = ""


def _new_rsa_key() -> SigningKeyRow:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return SigningKeyRow(secrets.token_hex(8), SIGNING_ALGORITHM, private_pem, public_pem)


def lock_signing_keys(conn: Connection) -> list[SigningKeyRow]:
    """``load_signing_keys``, with the active keys held until the transaction ends: two
    revocations at once take turns, so they cannot each leave the other's key as the last."""
    lock_rows(conn, signing_keys, signing_keys.c.active.is_(True))
    return load_signing_keys(conn)


def load_signing_keys(conn: Connection) -> list[SigningKeyRow]:
    """Active keys, oldest first: the newest signs, all verify."""
    rows = conn.execute(
        sa.select(signing_keys)
        .where(signing_keys.c.active.is_(True))
        .order_by(signing_keys.c.created_at, signing_keys.c.kid)
    ).mappings()
    return [
        SigningKeyRow(r["kid"], r["algorithm"], r["private_pem"], r["public_pem"]) for r in rows
    ]


def list_signing_keys(conn: Connection) -> list[dict]:
    """Every key, active or revoked, as the API shows it (never the private part)."""
    rows = conn.execute(
        sa.select(
            signing_keys.c.kid,
            signing_keys.c.algorithm,
            signing_keys.c.created_at,
            signing_keys.c.active,
        ).order_by(signing_keys.c.created_at, signing_keys.c.kid)
    ).mappings()
    return [
        {
            "kid": r["kid"],
            "algorithm": r["algorithm"],
            "createdAt": r["created_at"],
            "active": r["active"],
        }
        for r in rows
    ]


def add_signing_key(conn: Connection) -> SigningKeyRow:
    """A new key; being the newest, it signs from now on."""
    key = _new_rsa_key()
    conn.execute(
        signing_keys.insert().values(
            kid=key.kid,
            algorithm=key.algorithm,
            private_pem=key.private_pem,
            public_pem=key.public_pem,
            created_at=datetime.now(UTC),
            active=True,
        )
    )
    return key


def revoke_signing_key(conn: Connection, kid: str) -> bool:
    """Stop trusting a key; tokens it signed are refused from then on."""
    statement = (
        signing_keys.update()
        .where(signing_keys.c.kid == kid, signing_keys.c.active.is_(True))
        .values(active=False)
    )
    return conn.execute(statement).rowcount > 0


def ensure_signing_key(conn: Connection) -> SigningKeyRow | None:
    """Create the server's signing key on first start; the key created, if one was."""
    if load_signing_keys(conn):
        return None
    return add_signing_key(conn)


# Read on every request of an access key's token: built once, not per request.
_ACCESS_KEY = sa.select(access_keys).where(access_keys.c.client_id == sa.bindparam("client_id"))


def get_access_key(conn: Connection, client_id: str) -> AccessKeyRow | None:
    row = conn.execute(_ACCESS_KEY, {"client_id": client_id}).mappings().first()
    if row is None:
        return None
    return AccessKeyRow(
        row["client_id"],
        row["name"],
        row["secret_hash"],
        row["disabled_at"] is not None,
        row["token_generation"],
        row["kind"],
        row["owner_type"],
        row["owner_id"],
    )


def _service_account_name_taken(conn: Connection, name: str) -> bool:
    taken = sa.select(access_keys.c.client_id).where(
        access_keys.c.kind == "service-account",
        access_keys.c.owner_type == "",
        access_keys.c.owner_id == "",
        access_keys.c.name == name,
    )
    return conn.execute(taken).first() is not None


def put_access_key(
    conn: Connection, *, client_id: str, name: str, secret_hash: str, created_by: str = "bootstrap"
) -> bool:
    """Create the service account, or replace its secret when it exists (enabling it again and
    revoking every token issued before); true when it was created.

    A new account whose ``name`` another service account already holds (a former bootstrap
    administrator, or one an administrator created) is named ``name client_id`` instead:
    service-account names are unique, and the break-glass path must not fail on that.
    """
    existing = get_access_key(conn, client_id)
    now = datetime.now(UTC)
    if existing is None:
        if _service_account_name_taken(conn, name):
            name = f"{name} {client_id}"
        conn.execute(
            access_keys.insert().values(
                client_id=client_id,
                id=str(uuid.uuid4()),
                name=name,
                secret_hash=secret_hash,
                created_by=created_by,
                created_at=now,
                updated_at=now,
            )
        )
        return True
    conn.execute(
        access_keys.update()
        .where(access_keys.c.client_id == client_id)
        .values(
            secret_hash=secret_hash,
            disabled_at=None,
            updated_at=now,
            token_generation=access_keys.c.token_generation + 1,
        )
    )
    return False


def touch_access_key(conn: Connection, client_id: str) -> None:
    conn.execute(
        access_keys.update()
        .where(access_keys.c.client_id == client_id)
        .values(last_used_at=datetime.now(UTC))
    )
