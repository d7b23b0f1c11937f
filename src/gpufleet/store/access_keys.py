"""Managing access keys (service accounts): list, create, rotate, disable, delete."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gpufleet.core.times import format_rfc3339
from gpufleet.store.tables import access_keys


def _public(row) -> dict:
    """An access key as the API shows it: never the secret or its hash."""
    return {
        "clientId": row["client_id"],
        "name": row["name"],
        "createdAt": format_rfc3339(row["created_at"]),
        "lastUsedAt": format_rfc3339(row["last_used_at"]) if row["last_used_at"] else None,
        "disabled": row["disabled_at"] is not None,
    }


def list_access_keys(conn: Connection) -> list[dict]:
    rows = conn.execute(
        sa.select(access_keys).order_by(access_keys.c.created_at, access_keys.c.client_id)
    )
    return [_public(row) for row in rows.mappings()]


def describe_access_key(conn: Connection, client_id: str) -> dict | None:
    row = (
        conn.execute(sa.select(access_keys).where(access_keys.c.client_id == client_id))
        .mappings()
        .first()
    )
    return None if row is None else _public(row)


def create_access_key(conn: Connection, *, client_id: str, name: str, secret_hash: str) -> dict:
    conn.execute(
        access_keys.insert().values(
            client_id=client_id,
            name=name,
            secret_hash=secret_hash,
            created_at=datetime.now(UTC),
        )
    )
    return describe_access_key(conn, client_id)


_NEXT_GENERATION = access_keys.c.token_generation + 1


def replace_secret(conn: Connection, client_id: str, secret_hash: str) -> bool:
    """A new secret; every token issued under the old one is refused from now on."""
    statement = (
        access_keys.update()
        .where(access_keys.c.client_id == client_id)
        .values(secret_hash=secret_hash, token_generation=_NEXT_GENERATION)
    )
    return conn.execute(statement).rowcount > 0


def set_disabled(conn: Connection, client_id: str, disabled: bool) -> bool:
    """Switch a key off (revoking its tokens for good) or on (issuing works again)."""
    values = {"disabled_at": datetime.now(UTC) if disabled else None}
    if disabled:
        values["token_generation"] = _NEXT_GENERATION
    statement = access_keys.update().where(access_keys.c.client_id == client_id).values(**values)
    return conn.execute(statement).rowcount > 0


def delete_access_key(conn: Connection, client_id: str) -> bool:
    statement = access_keys.delete().where(access_keys.c.client_id == client_id)
    return conn.execute(statement).rowcount > 0


def client_ids_named(conn: Connection, name: str) -> list[str]:
    """Client ids of the access keys with this name (names are not unique)."""
    statement = (
        sa.select(access_keys.c.client_id)
        .where(access_keys.c.name == name)
        .order_by(access_keys.c.client_id)
    )
    return list(conn.execute(statement).scalars())
