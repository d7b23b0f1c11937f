"""Service accounts: the credentials automation uses (scripts, the cluster agent).

A service account is a subject of its own: its access rules name it by client id (subject type
``service-account``), and a token obtained with its secret carries those rules only.
"""

from __future__ import annotations

from sqlalchemy.engine import Connection

from gpufleet.auth.administration import (
    Actor,
    keep_an_administrator,
    new_credential,
    record,
    renew_secret,
    require_admin,
)
from gpufleet.core.errors import Invalid, NotFound
from gpufleet.core.roles import TENANT_ID, SubjectType
from gpufleet.core.times import format_rfc3339
from gpufleet.store import access_keys, access_rules
from gpufleet.store.access_keys import SERVICE_ACCOUNT, CredentialRow

_ACTION = "service_account"


def _time(value) -> str | None:
    return format_rfc3339(value) if value else None


def service_account_wire(row: CredentialRow) -> dict:
    """Run:ai's ``ServiceAccount``."""
    return {
        "id": row.id,
        "name": row.name,
        "clientId": row.client_id,
        "tenantId": str(TENANT_ID),
        "enabled": not row.disabled,
        "createdBy": row.created_by,
        "createdAt": _time(row.created_at),
        "updatedAt": _time(row.updated_at),
        "lastLogin": _time(row.last_used_at),
    }


def list_service_accounts(conn: Connection, actor: Actor) -> list[dict]:
    require_admin(actor)
    return [service_account_wire(r) for r in access_keys.list_credentials(conn, SERVICE_ACCOUNT)]


def get_service_account(conn: Connection, actor: Actor, account_id: str) -> CredentialRow:
    """The service account with this id, for an administrator."""
    require_admin(actor)
    row = access_keys.get_credential(conn, SERVICE_ACCOUNT, account_id)
    if row is None:
        raise NotFound(f"Service account {account_id} not found.")
    return row


def create_service_account(conn: Connection, actor: Actor, name: str) -> dict:
    """A new service account; the returned dict carries the secret, which is not stored."""
    require_admin(actor)
    row, secret = new_credential(conn, actor, SERVICE_ACCOUNT, name)
    return {"id": row.id, "name": row.name, "clientId": row.client_id, "clientSecret": secret}


def regenerate_secret(conn: Connection, actor: Actor, account_id: str) -> str:
    """A new secret (returned once); tokens issued under the old one stop working."""
    return renew_secret(conn, actor, get_service_account(conn, actor, account_id))


def set_enabled(conn: Connection, actor: Actor, account_id: str, enabled: bool) -> CredentialRow:
    """Disabling revokes every token for good; enabling lets the secret obtain tokens again."""
    row = get_service_account(conn, actor, account_id)
    if not enabled and not row.disabled:
        _keep_an_administrator(conn, row, "disabled")
    if enabled == row.disabled:
        access_keys.set_disabled(conn, row.client_id, not enabled)
        verb = "enable" if enabled else "disable"
        record(conn, actor, f"{_ACTION}.{verb}", row.client_id, row.name, id=row.id)
    return access_keys.get_credential(conn, SERVICE_ACCOUNT, account_id)


def delete_service_account(conn: Connection, actor: Actor, account_id: str) -> None:
    """Delete the account, its access rules and any access keys that speak for it."""
    row = get_service_account(conn, actor, account_id)
    if row.client_id == actor.name:
        raise Invalid("A service account cannot delete itself.")
    _keep_an_administrator(conn, row, "deleted")
    subject = SubjectType.SERVICE_ACCOUNT.value
    access_keys.delete_owned_by(conn, subject, row.client_id)
    access_keys.delete_credential(conn, row.client_id)
    removed = access_rules.delete_rules_of(conn, subject, row.client_id)
    record(conn, actor, f"{_ACTION}.delete", row.client_id, row.name, rulesRemoved=removed)


def _keep_an_administrator(conn: Connection, row: CredentialRow, done: str) -> None:
    subject = (SubjectType.SERVICE_ACCOUNT.value, row.client_id)
    change = f"Service account {row.name!r} cannot be {done}"
    keep_an_administrator(conn, Invalid, change, subject=subject)


def resolve_service_account(conn: Connection, client_id_or_name: str) -> str:
    """The client id of the service account with this client id, or else with this name."""
    row = access_keys.get_by_client_id(conn, client_id_or_name)
    if row is not None and row.kind == SERVICE_ACCOUNT:
        return row.client_id
    named = access_keys.service_accounts_named(conn, client_id_or_name)
    if named:
        return named[0]
    raise NotFound(f"No service account has the client id or name {client_id_or_name!r}.")
