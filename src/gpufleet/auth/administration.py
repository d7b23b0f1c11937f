"""Changing access rules and signing keys, with the checks and the audit trail.

Shared by the HTTP API and the ``gpufleet access`` commands, so a change made either way is
validated and audited the same way. Credentials: ``auth/service_accounts.py`` and
``auth/user_access_keys.py``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gpufleet.auth.access import Access
from gpufleet.auth.secrets import generate_client_id, generate_secret, hash_secret
from gpufleet.core.errors import DomainError, Forbidden, Invalid, NotFound
from gpufleet.core.roles import (
    ALLOWED_SCOPES,
    ROLE_IDS,
    ROLE_NAMES,
    TENANT_ID,
    Role,
    ScopeType,
    SubjectType,
)
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
    subject_type: str = SubjectType.SERVICE_ACCOUNT.value

    @property
    def audit_subject_type(self) -> str:
        return "User" if self.subject_type == SubjectType.USER else "App"


# Who the audit log names for what gpufleet does on no caller's request ("App", no address):
# the first signing key and administrator; the commands that work on the database
# (restore-admin, clusters register); the demo's agents.
# Their names are reserved in settings.SYSTEM_ACTOR_NAMES, so no administrator can take one.
BOOTSTRAP_ACTOR = Actor("bootstrap", FULL_ACCESS)
CLI_ACTOR = Actor("cli", FULL_ACCESS)
DEMO_ACTOR = Actor("demo", FULL_ACCESS)


def record(
    conn: Connection, actor: Actor, action: str, target: str, name: str | None = None, **details
) -> None:
    """Write one change by ``actor`` to the audit log."""
    audit.record(
        conn,
        actor=actor.name,
        action=action,
        target=target,
        entity_name=name,
        subject_type=actor.audit_subject_type,
        source_ip=actor.source_ip,
        details=details or None,
    )


def new_credential(
    conn: Connection, actor: Actor, kind: str, name: str, owner: tuple[str, str] = ("", "")
) -> tuple[access_keys.CredentialRow, str]:
    """A new service account or access key, audited; its row and its secret (shown once)."""
    secret = generate_secret()
    row = access_keys.create_credential(
        conn,
        kind=kind,
        client_id=generate_client_id(),
        name=name,
        secret_hash=hash_secret(secret),
        created_by=actor.name,
        owner=owner,
    )
    record_creation(conn, actor, row)
    return row, secret


def record_creation(conn: Connection, actor: Actor, row: access_keys.CredentialRow) -> None:
    """Audit a new service account or access key, however it was made."""
    record(conn, actor, f"{_action(row.kind)}.create", row.client_id, row.name, id=row.id)


def renew_secret(conn: Connection, actor: Actor, row: access_keys.CredentialRow) -> str:
    """A new secret for a service account or access key (returned once), audited; tokens
    issued under the old one stop working."""
    secret = generate_secret()
    access_keys.replace_secret(conn, row.client_id, hash_secret(secret))
    record(conn, actor, f"{_action(row.kind)}.rotate", row.client_id, row.name, id=row.id)
    return secret


def _action(kind: str) -> str:
    """The audit action prefix of a credential kind: ``service_account``, ``access_key``."""
    return kind.replace("-", "_")


def require_admin(actor: Actor) -> None:
    if not actor.access.manage_everything:
        raise Forbidden("Only system administrators manage service accounts and access keys.")


def keep_an_administrator(
    conn: Connection,
    refusal: type[DomainError],
    change: str,
    *,
    rule_id: int | None = None,
    subject: tuple[str, str] | None = None,
) -> None:
    """Refuse ``change`` (of the rule ``rule_id``, or of every rule of ``subject``) when it would
    leave no subject that may sign in with System administrator on the tenant: nobody could
    manage access again short of ``gpufleet access restore-admin`` on the database.

    Called before the change; the administrators' rules stay held until commit, so two
    changes at once cannot each leave the other's administrator as the last.
    """
    administrators = access_rules.lock_administrators(conn)
    remaining = [
        rule
        for rule in administrators
        if rule.id != rule_id and (rule.subject_type, rule.subject_id) != subject
    ]
    if administrators and not remaining:
        raise refusal(
            f"{change}: no other enabled subject holds System administrator on the tenant, so "
            "nobody could administer gpufleet. Grant the role to another subject first."
        )


def _is_uuid(text: str | None) -> bool:
    try:
        uuid.UUID(str(text))
    except ValueError:
        return False
    return True


def rule_wire(rule: access_rules.AccessRuleRow) -> dict:
    """An access rule in Run:ai's ``AccessRule`` shape."""
    role = Role(rule.role)
    tenant = rule.scope_type == ScopeType.TENANT
    body = {
        "id": rule.id,
        "tenantId": TENANT_ID,
        "subjectId": rule.subject_id,
        "subjectType": rule.subject_type,
        "roleId": ROLE_IDS[role],
        "roleName": ROLE_NAMES[role],
        "scopeId": str(TENANT_ID) if tenant else rule.scope_id,
        "scopeType": rule.scope_type,
        "scopeName": rule.scope_name or rule.scope_id,
        "createdAt": format_rfc3339(rule.created_at),
        "updatedAt": format_rfc3339(rule.updated_at or rule.created_at),
        "createdBy": rule.created_by,
        "deletedAt": format_rfc3339(rule.deleted_at) if rule.deleted_at else None,
    }
    # Rules take effect at once on every replica: there is nothing to wait for in a cluster.
    if rule.deleted_at is None:
        body["status"] = {"phase": "Ready"}
    # Run:ai's clusterId is a UUID; a cluster reported under another id is not named.
    if _is_uuid(rule.cluster_id):
        body["clusterId"] = rule.cluster_id
    return body


def _department_of_project(conn: Connection, project_id: str) -> str | None:
    statement = sa.select(projects.c.department_id).where(projects.c.id == project_id)
    return conn.execute(statement).scalar_one_or_none()


def check_rule_shape(role: Role, scope: ScopeType, scope_id: str) -> None:
    """Refuse a rule that no actor may grant: a role outside its scope types, a missing id."""
    if scope not in ALLOWED_SCOPES[role]:
        allowed = ", ".join(sorted(ALLOWED_SCOPES[role]))
        raise Invalid(f"Role {ROLE_NAMES[role]!r} can only be granted in scope(s): {allowed}.")
    if scope is not ScopeType.TENANT and not scope_id:
        raise Invalid(f"scopeId is required for scope type {scope.value!r}.")


def tenant_scope_id(scope_id: str) -> str:
    """The stored scope id of a tenant rule; only this installation's tenant exists."""
    if scope_id not in ("", str(TENANT_ID)):
        raise NotFound(f"No tenant {scope_id!r}; this server's tenant is {TENANT_ID}.")
    return ""


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


def rules_visible_to(actor: Actor) -> frozenset[str] | None:
    """None for a system administrator; else the departments whose rules the actor may see."""
    return None if actor.access.manage_everything else actor.access.manage_departments


def visible_rule(conn: Connection, actor: Actor, rule_id: int) -> access_rules.AccessRuleRow:
    """The rule, revoked or not; one outside what the actor administers is answered exactly
    like an unknown id, whatever is asked of it."""
    rule = access_rules.get_rule(conn, rule_id)
    departments = rules_visible_to(actor)
    if rule is None or (
        departments is not None and not access_rules.is_inside(conn, rule_id, departments)
    ):
        raise NotFound(f"Access rule {rule_id} not found.")
    return rule


def _require_subject(conn: Connection, subject_type: SubjectType, subject_id: str) -> None:
    """A service account must exist; users and groups live in the identity provider."""
    if subject_type is not SubjectType.SERVICE_ACCOUNT:
        return
    row = access_keys.get_by_client_id(conn, subject_id)
    if row is None or row.kind != access_keys.SERVICE_ACCOUNT:
        raise NotFound(f"No service account has the client id {subject_id!r}.")


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
    if scope_type is ScopeType.TENANT:
        scope_id = tenant_scope_id(scope_id)
    _check_rule_allowed(conn, actor, role, scope_type, scope_id)
    _require_subject(conn, subject_type, subject_id)
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
    record(conn, actor, "access_rule.create", str(rule.id), **_summary(wire))
    return wire


def _summary(wire: dict) -> dict:
    keys = ("subjectType", "subjectId", "roleId", "roleName", "scopeType", "scopeId")
    return {key: wire[key] for key in keys}


def revoke_rule(conn: Connection, actor: Actor, rule_id: int) -> None:
    rule = visible_rule(conn, actor, rule_id)
    if rule.deleted_at is not None:
        raise NotFound(f"Access rule {rule_id} not found.")
    # Inside its departments, a department administrator revokes what it could have granted.
    if not actor.access.manage_everything and Role(rule.role) not in DELEGABLE_ROLES:
        raise Forbidden("You may only revoke researcher or viewer rules within your department.")
    # Run:ai's contract answers a refused revocation with 403 (it lists no 400 or 409).
    keep_an_administrator(
        conn, Forbidden, f"Access rule {rule_id} cannot be revoked", rule_id=rule_id
    )
    access_rules.delete_rule(conn, rule_id)
    record(conn, actor, "access_rule.delete", str(rule_id), **_summary(rule_wire(rule)))


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
    record(conn, actor, "signing_key.rotate", key.kid)
    return key.kid


def revoke_signing_key(conn: Connection, actor: Actor, kid: str) -> None:
    """Refuse every token the key signed; the last active key cannot be revoked."""
    require_admin(actor)
    active = [key.kid for key in credentials.lock_signing_keys(conn)]
    if kid not in active:
        raise NotFound(f"No active signing key {kid}.")
    if len(active) == 1:
        raise Invalid("The last active signing key cannot be revoked; rotate first.")
    credentials.revoke_signing_key(conn, kid)
    record(conn, actor, "signing_key.revoke", kid)
