"""Changing credentials and access rules, with the checks and the audit trail.

Shared by the HTTP API (``api/routes/access.py``) and the ``gpufleet access`` commands, so a
change made either way is validated and audited the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gpufleet.auth.access import Access
from gpufleet.auth.secrets import generate_client_id, generate_secret, hash_secret
from gpufleet.core.errors import Forbidden, Invalid, NotFound
from gpufleet.core.roles import ALLOWED_SCOPES, Role, ScopeType, SubjectType
from gpufleet.core.times import format_rfc3339
from gpufleet.store import access_keys, access_rules, audit, credentials
from gpufleet.store.tables import projects

# Department administrators may hand out these roles inside their department.
DELEGABLE_ROLES = frozenset({Role.RESEARCHER, Role.VIEWER})
FULL_ACCESS = Access(manage_everything=True, read_audit=True, ingest_everywhere=True)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who makes a change, and what they may change."""

    name: str
    access: Access
    source_ip: str | None = None


def rule_wire(rule: access_rules.AccessRuleRow) -> dict:
    return {
        "id": rule.id,
        "subjectType": rule.subject_type,
        "subjectId": rule.subject_id,
        "roleName": rule.role,
        "scopeType": rule.scope_type,
        "scopeId": rule.scope_id,
        "createdAt": format_rfc3339(rule.created_at),
        "createdBy": rule.created_by,
    }


def _audit(conn: Connection, actor: Actor, action: str, target: str, **details) -> None:
    audit.record(
        conn,
        actor=actor.name,
        action=action,
        target=target,
        source_ip=actor.source_ip,
        details=details or None,
    )


def require_admin(actor: Actor) -> None:
    if not actor.access.manage_everything:
        raise Forbidden("Only system administrators manage access keys.")


def create_key(conn: Connection, actor: Actor, name: str) -> dict:
    """A new access key; the returned dict carries the secret, which is not stored."""
    require_admin(actor)
    client_id, secret = generate_client_id(), generate_secret()
    created = access_keys.create_access_key(
        conn, client_id=client_id, name=name, secret_hash=hash_secret(secret)
    )
    _audit(conn, actor, "access_key.create", client_id, name=name)
    return {**created, "clientSecret": secret}


def rotate_key(conn: Connection, actor: Actor, client_id: str) -> dict:
    require_admin(actor)
    secret = generate_secret()
    if not access_keys.replace_secret(conn, client_id, hash_secret(secret)):
        raise NotFound(f"Access key {client_id} not found.")
    _audit(conn, actor, "access_key.rotate", client_id)
    return {**access_keys.describe_access_key(conn, client_id), "clientSecret": secret}


def set_key_disabled(conn: Connection, actor: Actor, client_id: str, disabled: bool) -> dict:
    require_admin(actor)
    if not access_keys.set_disabled(conn, client_id, disabled):
        raise NotFound(f"Access key {client_id} not found.")
    _audit(conn, actor, "access_key.disable" if disabled else "access_key.enable", client_id)
    return access_keys.describe_access_key(conn, client_id)


def delete_key(conn: Connection, actor: Actor, client_id: str) -> None:
    require_admin(actor)
    if client_id == actor.name:
        raise Invalid("An access key cannot delete itself.")
    if not access_keys.delete_access_key(conn, client_id):
        raise NotFound(f"Access key {client_id} not found.")
    removed = access_rules.delete_rules_of(conn, SubjectType.ACCESS_KEY.value, client_id)
    _audit(conn, actor, "access_key.delete", client_id, rulesRemoved=removed)


def _department_of_project(conn: Connection, project_id: str) -> str | None:
    statement = sa.select(projects.c.department_id).where(projects.c.id == project_id)
    return conn.execute(statement).scalar_one_or_none()


def check_rule_shape(role: Role, scope: ScopeType, scope_id: str) -> None:
    """Refuse a rule that no actor may grant: a role outside its scope types, a missing id."""
    if scope not in ALLOWED_SCOPES[role]:
        allowed = ", ".join(sorted(ALLOWED_SCOPES[role]))
        raise Invalid(f"Role {role.value!r} can only be granted in scope(s): {allowed}.")
    if scope is not ScopeType.TENANT and not scope_id:
        raise Invalid(f"scopeId is required for scope type {scope.value!r}.")


def _check_rule_allowed(
    conn: Connection, actor: Actor, role: Role, scope: ScopeType, scope_id: str
) -> None:
    check_rule_shape(role, scope, scope_id)
    if actor.access.manage_everything:
        return
    department = scope_id if scope is ScopeType.DEPARTMENT else None
    if scope is ScopeType.PROJECT:
        department = _department_of_project(conn, scope_id)
    if role not in DELEGABLE_ROLES or department not in actor.access.manage_departments:
        raise Forbidden("You may only grant researcher or viewer roles within your department.")


def grant_rule(
    conn: Connection,
    actor: Actor,
    *,
    subject_type: SubjectType,
    subject_id: str,
    role: Role,
    scope_type: ScopeType,
    scope_id: str,
) -> dict:
    scope_id = "" if scope_type is ScopeType.TENANT else scope_id
    _check_rule_allowed(conn, actor, role, scope_type, scope_id)
    rule = access_rules.create_rule(
        conn,
        subject_type=subject_type.value,
        subject_id=subject_id,
        role=role.value,
        scope_type=scope_type.value,
        scope_id=scope_id,
        created_by=actor.name,
    )
    wire = rule_wire(rule)
    _audit(conn, actor, "access_rule.create", str(rule.id), **wire)
    return wire


def revoke_rule(conn: Connection, actor: Actor, rule_id: int) -> None:
    rule = access_rules.get_rule(conn, rule_id)
    if rule is None:
        raise NotFound(f"Access rule {rule_id} not found.")
    _check_rule_allowed(conn, actor, Role(rule.role), ScopeType(rule.scope_type), rule.scope_id)
    access_rules.delete_rule(conn, rule_id)
    _audit(conn, actor, "access_rule.delete", str(rule_id), **rule_wire(rule))


def signing_keys(conn: Connection, actor: Actor) -> list[dict]:
    require_admin(actor)
    return [
        {**key, "createdAt": format_rfc3339(key["createdAt"])}
        for key in credentials.list_signing_keys(conn)
    ]


def rotate_signing_key(conn: Connection, actor: Actor) -> str:
    """Add a signing key that signs from now on; older keys keep verifying until revoked."""
    require_admin(actor)
    key = credentials.add_signing_key(conn)
    _audit(conn, actor, "signing_key.rotate", key.kid)
    return key.kid


def revoke_signing_key(conn: Connection, actor: Actor, kid: str) -> None:
    """Refuse every token the key signed; the last active key cannot be revoked."""
    require_admin(actor)
    active = [key.kid for key in credentials.load_signing_keys(conn)]
    if kid not in active:
        raise NotFound(f"No active signing key {kid}.")
    if len(active) == 1:
        raise Invalid("The last active signing key cannot be revoked; rotate first.")
    credentials.revoke_signing_key(conn, kid)
    _audit(conn, actor, "signing_key.revoke", kid)
