"""Credentials: service accounts and users' access keys (list, create, rotate, disable, delete).

Both kinds are a client id and a secret hash in one table; they differ in whom a token speaks
for (a service account for itself, an access key for its owner), see ``tables.access_keys``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from gpufleet.core.errors import Conflict
from gpufleet.store.rows import row_as
from gpufleet.store.tables import access_keys

SERVICE_ACCOUNT = "service-account"
ACCESS_KEY = "access-key"


@dataclass(frozen=True, slots=True)
class CredentialRow:
    """A stored credential, without its secret hash."""

    id: str
    client_id: str
    kind: str
    name: str
    owner_type: str
    owner_id: str
    created_by: str
    created_at: datetime
    updated_at: datetime | None
    last_used_at: datetime | None
    disabled: bool


def _row(row) -> CredentialRow:
    return row_as(CredentialRow, row, disabled=row["disabled_at"] is not None)


def list_credentials(
    conn: Connection,
    kind: str,
    *,
    owner: tuple[str, str] | None = None,
    client_id: str | None = None,
    created_by: str | None = None,
) -> list[CredentialRow]:
    """Credentials of one kind, oldest first; optionally one owner's, one client id, one creator."""
    statement = (
        sa.select(access_keys)
        .where(access_keys.c.kind == kind)
        .order_by(access_keys.c.created_at, access_keys.c.client_id)
    )
    if owner is not None:
        statement = statement.where(
            access_keys.c.owner_type == owner[0], access_keys.c.owner_id == owner[1]
        )
    if client_id is not None:
        statement = statement.where(access_keys.c.client_id == client_id)
    if created_by is not None:
        statement = statement.where(access_keys.c.created_by == created_by)
    return [_row(row) for row in conn.execute(statement).mappings()]


def get_credential(conn: Connection, kind: str, credential_id: str) -> CredentialRow | None:
    """The credential of this kind with Run:ai id ``credential_id``."""
    statement = sa.select(access_keys).where(
        access_keys.c.kind == kind, access_keys.c.id == credential_id
    )
    row = conn.execute(statement).mappings().first()
    return None if row is None else _row(row)


def get_by_client_id(conn: Connection, client_id: str) -> CredentialRow | None:
    statement = sa.select(access_keys).where(access_keys.c.client_id == client_id)
    row = conn.execute(statement).mappings().first()
    return None if row is None else _row(row)


def create_credential(
    conn: Connection,
    *,
    kind: str,
    client_id: str,
    name: str,
    secret_hash: str,
    created_by: str,
    owner: tuple[str, str] = ("", ""),
) -> CredentialRow:
    """Insert a credential; a name its kind (and owner) already uses is a ``Conflict``."""
    now = datetime.now(UTC)
    values = {
        "id": str(uuid.uuid4()),
        "client_id": client_id,
        "kind": kind,
        "owner_type": owner[0],
        "owner_id": owner[1],
        "name": name,
        "secret_hash": secret_hash,
        "created_by": created_by,
        "created_at": now,
        "updated_at": now,
    }
    try:
        # A savepoint, so a refused insert leaves the caller's transaction usable.
        with conn.begin_nested():
            conn.execute(access_keys.insert().values(**values))
    except IntegrityError:
        what = "service account" if kind == SERVICE_ACCOUNT else "access key"
        raise Conflict(f"A {what} named {name!r} already exists.") from None
    return get_by_client_id(conn, client_id)


_NEXT_GENERATION = access_keys.c.token_generation + 1


def replace_secret(conn: Connection, client_id: str, secret_hash: str) -> bool:
    """A new secret; every token issued under the old one is refused from now on."""
    statement = (
        access_keys.update()
        .where(access_keys.c.client_id == client_id)
        .values(
            secret_hash=secret_hash,
            token_generation=_NEXT_GENERATION,
            updated_at=datetime.now(UTC),
        )
    )
    return conn.execute(statement).rowcount > 0


def set_disabled(conn: Connection, client_id: str, disabled: bool) -> bool:
    """Switch a credential off (revoking its tokens for good) or on (issuing works again)."""
    now = datetime.now(UTC)
    values = {"disabled_at": now if disabled else None, "updated_at": now}
    if disabled:
        values["token_generation"] = _NEXT_GENERATION
    statement = access_keys.update().where(access_keys.c.client_id == client_id).values(**values)
    return conn.execute(statement).rowcount > 0


def delete_credential(conn: Connection, client_id: str) -> bool:
    statement = access_keys.delete().where(access_keys.c.client_id == client_id)
    return conn.execute(statement).rowcount > 0


def delete_owned_by(conn: Connection, owner_type: str, owner_id: str) -> int:
    """Delete the access keys that speak for this subject."""
    statement = access_keys.delete().where(
        access_keys.c.kind == ACCESS_KEY,
        access_keys.c.owner_type == owner_type,
        access_keys.c.owner_id == owner_id,
    )
    return conn.execute(statement).rowcount


def service_accounts_named(conn: Connection, name: str) -> list[str]:
    """Client ids of the service accounts with this name (at most one)."""
    statement = (
        sa.select(access_keys.c.client_id)
        .where(access_keys.c.kind == SERVICE_ACCOUNT, access_keys.c.name == name)
        .order_by(access_keys.c.client_id)
    )
    return list(conn.execute(statement).scalars())
