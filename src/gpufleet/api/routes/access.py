"""Access administration: access keys, access rules, roles and the audit log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from gpufleet.api.authorization import AuditAccess, CallerAccess, ManageAccess
from gpufleet.api.deps import CurrentPrincipal, Db, State
from gpufleet.api.responses import json_response
from gpufleet.api.routing import OffLoopJsonRoute
from gpufleet.auth import administration
from gpufleet.auth.access import Access
from gpufleet.auth.administration import Actor
from gpufleet.auth.principal import Principal
from gpufleet.core.roles import (
    ALLOWED_SCOPES,
    ROLE_DESCRIPTIONS,
    ROLE_PERMISSIONS,
    Role,
    ScopeType,
    SubjectType,
)
from gpufleet.schemas.access import (
    AccessKey,
    AccessKeyCreate,
    AccessKeyList,
    AccessKeyWithSecret,
    AccessRule,
    AccessRuleCreate,
    AccessRuleList,
    AuditLog,
    RoleList,
    SigningKeyList,
)
from gpufleet.schemas.errors import error_responses
from gpufleet.store import access_keys, access_rules, audit

router = APIRouter(prefix="/api/v1", tags=["Access"], route_class=OffLoopJsonRoute)
ClientIdParam = Annotated[str, Path(max_length=128, description="Client id of the access key.")]
RuleIdParam = Annotated[int, Path(ge=1, le=2**62, description="Id of the access rule.")]


def _actor(principal: Principal, access: Access, request: Request) -> Actor:
    return Actor(principal.subject, access, request.client.host if request.client else None)


@router.get("/access-keys", response_model=AccessKeyList, responses=error_responses(401, 403))
def list_access_keys(
    access: ManageAccess, principal: CurrentPrincipal, conn: Db, request: Request
) -> Response:
    administration.require_admin(_actor(principal, access, request))
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
    created = administration.create_key(conn, _actor(principal, access, request), body.name)
    conn.commit()
    return json_response(created, status_code=201)


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
    rotated = administration.rotate_key(conn, _actor(principal, access, request), clientId)
    conn.commit()
    return json_response(rotated)


@router.post(
    "/access-keys/{clientId}/disable",
    response_model=AccessKey,
    responses=error_responses(401, 403, 404),
)
def disable_access_key(
    access: ManageAccess,
    principal: CurrentPrincipal,
    conn: Db,
    request: Request,
    clientId: ClientIdParam,
) -> Response:
    key = administration.set_key_disabled(conn, _actor(principal, access, request), clientId, True)
    conn.commit()
    return json_response(key)


@router.post(
    "/access-keys/{clientId}/enable",
    response_model=AccessKey,
    responses=error_responses(401, 403, 404),
)
def enable_access_key(
    access: ManageAccess,
    principal: CurrentPrincipal,
    conn: Db,
    request: Request,
    clientId: ClientIdParam,
) -> Response:
    key = administration.set_key_disabled(conn, _actor(principal, access, request), clientId, False)
    conn.commit()
    return json_response(key)


@router.delete(
    "/access-keys/{clientId}", status_code=204, responses=error_responses(400, 401, 403, 404)
)
def delete_access_key(
    access: ManageAccess,
    principal: CurrentPrincipal,
    conn: Db,
    request: Request,
    clientId: ClientIdParam,
) -> Response:
    administration.delete_key(conn, _actor(principal, access, request), clientId)
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
    responses=error_responses(400, 401, 403),
)
def list_access_rules(
    access: ManageAccess,
    conn: Db,
    subjectType: Annotated[SubjectType | None, Query()] = None,
    subjectId: Annotated[str | None, Query(max_length=253)] = None,
) -> Response:
    rules = access_rules.list_rules(
        conn,
        subject_type=subjectType.value if subjectType else None,
        subject_id=subjectId,
        # A department administrator sees the rules inside its departments, nothing else.
        within_departments=None if access.manage_everything else access.manage_departments,
    )
    return json_response({"accessRules": [administration.rule_wire(r) for r in rules]})


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
    rule = administration.grant_rule(
        conn,
        _actor(principal, access, request),
        subject_type=SubjectType(body.subjectType),
        subject_id=body.subjectId,
        role=Role(body.roleName),
        scope_type=ScopeType(body.scopeType),
        scope_id=body.scopeId,
    )
    conn.commit()
    return json_response(rule, status_code=201)


@router.delete(
    "/authorization/access-rules/{ruleId}",
    status_code=204,
    responses=error_responses(400, 401, 403, 404),
)
def delete_access_rule(
    access: ManageAccess,
    principal: CurrentPrincipal,
    conn: Db,
    request: Request,
    ruleId: RuleIdParam,
) -> Response:
    administration.revoke_rule(conn, _actor(principal, access, request), ruleId)
    conn.commit()
    return Response(status_code=204)


@router.get("/signing-keys", response_model=SigningKeyList, responses=error_responses(401, 403))
def list_signing_keys(
    access: ManageAccess, principal: CurrentPrincipal, conn: Db, request: Request
) -> Response:
    keys = administration.signing_keys(conn, _actor(principal, access, request))
    return json_response({"signingKeys": keys})


@router.post(
    "/signing-keys",
    status_code=201,
    response_model=SigningKeyList,
    responses=error_responses(401, 403),
)
def rotate_signing_key(
    state: State, access: ManageAccess, principal: CurrentPrincipal, conn: Db, request: Request
) -> Response:
    actor = _actor(principal, access, request)
    administration.rotate_signing_key(conn, actor)
    conn.commit()
    state.tokens.reload()
    return json_response({"signingKeys": administration.signing_keys(conn, actor)}, status_code=201)


@router.post(
    "/signing-keys/{kid}/revoke",
    response_model=SigningKeyList,
    responses=error_responses(400, 401, 403, 404),
)
def revoke_signing_key(
    state: State,
    access: ManageAccess,
    principal: CurrentPrincipal,
    conn: Db,
    request: Request,
    kid: Annotated[str, Path(max_length=64)],
) -> Response:
    actor = _actor(principal, access, request)
    administration.revoke_signing_key(conn, actor, kid)
    conn.commit()
    state.tokens.reload()
    return json_response({"signingKeys": administration.signing_keys(conn, actor)})


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
