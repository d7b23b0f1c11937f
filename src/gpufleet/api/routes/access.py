"""Access administration: access keys, access rules, roles and the audit log."""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response
from sqlalchemy.engine import Connection

from gpufleet.api.authorization import AuditAccess, CallerAccess, ManageAccess
from gpufleet.api.deps import CurrentPrincipal, Db
from gpufleet.api.errors import ApiError
from gpufleet.api.responses import json_response
from gpufleet.auth.access import Access
from gpufleet.auth.roles import (
    ALLOWED_SCOPES,
    ROLE_DESCRIPTIONS,
    ROLE_PERMISSIONS,
    Role,
    ScopeType,
    SubjectType,
)
from gpufleet.auth.secrets import generate_client_id, generate_secret, hash_secret
from gpufleet.schemas.access import (
    AccessKeyCreate,
    AccessKeyList,
    AccessKeyWithSecret,
    AccessRule,
    AccessRuleCreate,
    AccessRuleList,
    AuditLog,
    RoleList,
)
from gpufleet.schemas.errors import error_responses
from gpufleet.store import access_keys, access_rules, audit
from gpufleet.store.tables import projects
from gpufleet.store.workload_documents import format_timestamp

router = APIRouter(prefix="/api/v1", tags=["Access"])
ClientIdParam = Annotated[str, Path(max_length=128, description="Client id of the access key.")]
# Department administrators may hand out these roles inside their department.
_DELEGABLE = frozenset({Role.RESEARCHER, Role.VIEWER})


def _client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def _require_admin(access: Access) -> None:
    if not access.manage_everything:
        raise ApiError(403, "Only system administrators manage access keys.")


def _rule_wire(rule: access_rules.AccessRule) -> dict:
    return {
        "id": rule.id,
        "subjectType": rule.subject_type,
        "subjectId": rule.subject_id,
        "roleName": rule.role,
        "scopeType": rule.scope_type,
        "scopeId": rule.scope_id,
        "createdAt": format_timestamp(rule.created_at),
        "createdBy": rule.created_by,
    }


def _department_of_project(conn: Connection, project_id: str) -> str | None:
    statement = sa.select(projects.c.department_id).where(projects.c.id == project_id)
    return conn.execute(statement).scalar_one_or_none()


def _check_rule_allowed(
    conn: Connection, access: Access, role: Role, scope: ScopeType, scope_id: str
) -> None:
    if scope not in ALLOWED_SCOPES[role]:
        allowed = ", ".join(sorted(ALLOWED_SCOPES[role]))
        raise ApiError(400, f"Role {role.value!r} can only be granted in scope(s): {allowed}.")
    if scope is not ScopeType.TENANT and not scope_id:
        raise ApiError(400, f"scopeId is required for scope type {scope.value!r}.")
    if access.manage_everything:
        return
    department = scope_id if scope is ScopeType.DEPARTMENT else None
    if scope is ScopeType.PROJECT:
        department = _department_of_project(conn, scope_id)
    if role not in _DELEGABLE or department not in access.manage_departments:
        raise ApiError(403, "You may only grant researcher or viewer roles within your department.")


def _audit(
    conn: Connection, principal, request: Request, action: str, target: str, **details
) -> None:
    audit.record(
        conn,
        actor=principal.subject,
        action=action,
        target=target,
        source_ip=_client_ip(request),
        details=details or None,
    )


@router.get("/access-keys", response_model=AccessKeyList, responses=error_responses(401, 403))
def list_access_keys(access: ManageAccess, conn: Db) -> Response:
    _require_admin(access)
    return json_response({"accessKeys": access_keys.list_access_keys(conn)})


@router.post(
    "/access-keys",
    status_code=201,
    response_model=AccessKeyWithSecret,
    responses=error_responses(400, 401, 403),
)
def create_access_key(
    access: ManageAccess,
    principal: CurrentPrincipal,
    conn: Db,
    request: Request,
    body: AccessKeyCreate,
) -> Response:
    _require_admin(access)
    client_id, secret = generate_client_id(), generate_secret()
    created = access_keys.create_access_key(
        conn, client_id=client_id, name=body.name, secret_hash=hash_secret(secret)
    )
    _audit(conn, principal, request, "access_key.create", client_id, name=body.name)
    conn.commit()
    return json_response({**created, "clientSecret": secret}, status_code=201)


@router.post(
    "/access-keys/{clientId}/secret",
    response_model=AccessKeyWithSecret,
    responses=error_responses(401, 403, 404),
)
def rotate_secret(
    access: ManageAccess,
    principal: CurrentPrincipal,
    conn: Db,
    request: Request,
    clientId: ClientIdParam,
) -> Response:
    _require_admin(access)
    secret = generate_secret()
    if not access_keys.replace_secret(conn, clientId, hash_secret(secret)):
        raise ApiError(404, f"Access key {clientId} not found.")
    _audit(conn, principal, request, "access_key.rotate", clientId)
    conn.commit()
    return json_response(
        {**access_keys.describe_access_key(conn, clientId), "clientSecret": secret}
    )


def _set_disabled(access, principal, conn, request, client_id: str, disabled: bool) -> Response:
    _require_admin(access)
    if not access_keys.set_disabled(conn, client_id, disabled):
        raise ApiError(404, f"Access key {client_id} not found.")
    _audit(
        conn,
        principal,
        request,
        "access_key.disable" if disabled else "access_key.enable",
        client_id,
    )
    conn.commit()
    return json_response(access_keys.describe_access_key(conn, client_id))


@router.post("/access-keys/{clientId}/disable", responses=error_responses(401, 403, 404))
def disable_access_key(
    access: ManageAccess,
    principal: CurrentPrincipal,
    conn: Db,
    request: Request,
    clientId: ClientIdParam,
) -> Response:
    return _set_disabled(access, principal, conn, request, clientId, True)


@router.post("/access-keys/{clientId}/enable", responses=error_responses(401, 403, 404))
def enable_access_key(
    access: ManageAccess,
    principal: CurrentPrincipal,
    conn: Db,
    request: Request,
    clientId: ClientIdParam,
) -> Response:
    return _set_disabled(access, principal, conn, request, clientId, False)


@router.delete("/access-keys/{clientId}", status_code=204, responses=error_responses(401, 403, 404))
def delete_access_key(
    access: ManageAccess,
    principal: CurrentPrincipal,
    conn: Db,
    request: Request,
    clientId: ClientIdParam,
) -> Response:
    _require_admin(access)
    if clientId == principal.subject:
        raise ApiError(400, "An access key cannot delete itself.")
    if not access_keys.delete_access_key(conn, clientId):
        raise ApiError(404, f"Access key {clientId} not found.")
    removed = access_rules.delete_rules_of(conn, SubjectType.ACCESS_KEY.value, clientId)
    _audit(conn, principal, request, "access_key.delete", clientId, rulesRemoved=removed)
    conn.commit()
    return Response(status_code=204)


@router.get("/authorization/roles", response_model=RoleList, responses=error_responses(401))
def list_roles(_access: CallerAccess) -> Response:
    roles = [
        {
            "name": role.value,
            "description": ROLE_DESCRIPTIONS[role],
            "permissions": sorted(p.value for p in ROLE_PERMISSIONS[role]),
            "scopeTypes": sorted(s.value for s in ALLOWED_SCOPES[role]),
        }
        for role in Role
    ]
    return json_response({"roles": roles})


@router.get(
    "/authorization/access-rules",
    response_model=AccessRuleList,
    responses=error_responses(401, 403),
)
def list_access_rules(
    _access: ManageAccess,
    conn: Db,
    subjectType: Annotated[SubjectType | None, Query()] = None,
    subjectId: Annotated[str | None, Query(max_length=253)] = None,
) -> Response:
    rules = access_rules.list_rules(
        conn, subject_type=subjectType.value if subjectType else None, subject_id=subjectId
    )
    return json_response({"accessRules": [_rule_wire(r) for r in rules]})


@router.post(
    "/authorization/access-rules",
    status_code=201,
    response_model=AccessRule,
    responses=error_responses(400, 401, 403),
)
def create_access_rule(
    access: ManageAccess,
    principal: CurrentPrincipal,
    conn: Db,
    request: Request,
    body: AccessRuleCreate,
) -> Response:
    role, scope = Role(body.roleName), ScopeType(body.scopeType)
    scope_id = "" if scope is ScopeType.TENANT else body.scopeId
    _check_rule_allowed(conn, access, role, scope, scope_id)
    rule = access_rules.create_rule(
        conn,
        subject_type=body.subjectType,
        subject_id=body.subjectId,
        role=role.value,
        scope_type=scope.value,
        scope_id=scope_id,
        created_by=principal.subject,
    )
    _audit(conn, principal, request, "access_rule.create", str(rule.id), **_rule_wire(rule))
    conn.commit()
    return json_response(_rule_wire(rule), status_code=201)


@router.delete(
    "/authorization/access-rules/{ruleId}",
    status_code=204,
    responses=error_responses(401, 403, 404),
)
def delete_access_rule(
    access: ManageAccess,
    principal: CurrentPrincipal,
    conn: Db,
    request: Request,
    ruleId: Annotated[int, Path(ge=1, le=2**62)],
) -> Response:
    rule = access_rules.get_rule(conn, ruleId)
    if rule is None:
        raise ApiError(404, f"Access rule {ruleId} not found.")
    _check_rule_allowed(conn, access, Role(rule.role), ScopeType(rule.scope_type), rule.scope_id)
    access_rules.delete_rule(conn, ruleId)
    _audit(conn, principal, request, "access_rule.delete", str(ruleId), **_rule_wire(rule))
    conn.commit()
    return Response(status_code=204)


@router.get("/audit-log", response_model=AuditLog, responses=error_responses(400, 401, 403))
def read_audit_log(
    _access: AuditAccess,
    conn: Db,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Response:
    entries, next_offset = audit.list_entries(conn, offset=offset, limit=limit)
    body = (
        {"entries": entries} if next_offset is None else {"next": next_offset, "entries": entries}
    )
    return json_response(body)
