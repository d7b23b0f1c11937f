"""Users' access keys (Run:ai's per-user access keys): a credential that speaks for its owner.

Anyone signed in may create access keys for themselves; a token obtained with one carries the
owner's identity, so it grants what the owner's own access rules grant (rules on the owner's
groups do not apply: groups come from the identity provider at sign-in). Administrators list
and delete every user's keys.
"""

from __future__ import annotations

from sqlalchemy.engine import Connection

from gpufleet.auth.administration import (
    Actor,
    new_credential,
    record,
    renew_secret,
    require_admin,
)
from gpufleet.core.errors import Forbidden, NotFound
from gpufleet.core.roles import SubjectType
from gpufleet.core.times import format_rfc3339
from gpufleet.store import access_keys
from gpufleet.store.access_keys import ACCESS_KEY, CredentialRow

_ACTION = "access_key"


def _owner(actor: Actor) -> tuple[str, str]:
    if actor.subject_type not in (SubjectType.USER, SubjectType.SERVICE_ACCOUNT):
        raise Forbidden("Access keys belong to users and service accounts.")
    return actor.subject_type, actor.name


def access_key_wire(row: CredentialRow, *, administration: bool = False) -> dict:
    """Run:ai's ``AccessKey`` (with ``createdBy`` in the administration listing)."""
    body = {
        "id": row.id,
        "name": row.name,
        "clientId": row.client_id,
        "createdAt": format_rfc3339(row.created_at),
        "lastLogin": format_rfc3339(row.last_used_at) if row.last_used_at else None,
    }
    if administration:
        body["createdBy"] = row.created_by
    return body


def my_access_keys(conn: Connection, actor: Actor) -> list[dict]:
    rows = access_keys.list_credentials(conn, ACCESS_KEY, owner=_owner(actor))
    return [access_key_wire(row) for row in rows]


def my_access_key(conn: Connection, actor: Actor, key_id: str) -> CredentialRow:
    """One of the caller's own keys; another's is answered like an unknown id."""
    row = access_keys.get_credential(conn, ACCESS_KEY, key_id)
    if row is None or (row.owner_type, row.owner_id) != _owner(actor):
        raise NotFound(f"Access key {key_id} not found.")
    return row


def create_access_key(conn: Connection, actor: Actor, name: str) -> dict:
    """A new key for the caller; the returned dict carries the secret, which is not stored."""
    row, secret = new_credential(conn, actor, ACCESS_KEY, name, owner=_owner(actor))
    shown = {key: value for key, value in access_key_wire(row).items() if key != "lastLogin"}
    return {**shown, "clientSecret": secret}


def regenerate_secret(conn: Connection, actor: Actor, key_id: str) -> str:
    """A new secret for one of the caller's keys (returned once)."""
    return renew_secret(conn, actor, my_access_key(conn, actor, key_id))


def _delete(conn: Connection, actor: Actor, row: CredentialRow) -> None:
    access_keys.delete_credential(conn, row.client_id)
    record(conn, actor, f"{_ACTION}.delete", row.client_id, row.name, owner=row.owner_id)


def delete_my_access_key(conn: Connection, actor: Actor, key_id: str) -> None:
    _delete(conn, actor, my_access_key(conn, actor, key_id))


def all_access_keys(
    conn: Connection, actor: Actor, *, client_id: str | None, created_by: str | None
) -> list[dict]:
    """Every user's keys, for an administrator."""
    require_admin(actor)
    rows = access_keys.list_credentials(
        conn, ACCESS_KEY, client_id=client_id, created_by=created_by
    )
    return [access_key_wire(row, administration=True) for row in rows]


def delete_any_access_key(conn: Connection, actor: Actor, key_id: str) -> None:
    require_admin(actor)
    row = access_keys.get_credential(conn, ACCESS_KEY, key_id)
    if row is None:
        raise NotFound(f"Access key {key_id} not found.")
    _delete(conn, actor, row)
