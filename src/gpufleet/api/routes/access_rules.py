"""Run:ai's access rules, and the caller's own (``/authorization/me/access-rules``).

A department administrator lists, counts and reads only the rules inside its departments;
a system administrator all of them. Revoked rules stay listed with ``includeDeleted``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from gpufleet.api.authorization import ManagingActor
from gpufleet.api.deps import CurrentPrincipal, Db
from gpufleet.api.parameters import LimitParam, OffsetParam, SearchParam, sort_field_enum
from gpufleet.api.responses import json_response
from gpufleet.api.routing import OffLoopJsonRoute
from gpufleet.auth import administration
from gpufleet.auth.administration import Actor
from gpufleet.core.access_fields import ACCESS_RULE_FIELDS
from gpufleet.core.errors import Invalid, NotFound
from gpufleet.core.roles import ROLES_BY_ID, ScopeType, subject_type_of
from gpufleet.query.access import (
    AccessRuleSelection,
    build_access_rule_page,
    build_access_rule_selection,
    split_list,
)
from gpufleet.query.errors import QueryError
from gpufleet.schemas.access import (
    AccessRule,
    AccessRuleById,
    AccessRuleCreationFields,
    AccessRules,
    Count,
    MeAccessRulesResponse,
)
from gpufleet.schemas.enums import SortOrder
from gpufleet.schemas.errors import error_responses
from gpufleet.store import access_rules

router = APIRouter(
    prefix="/api/v1/authorization", tags=["Access rules"], route_class=OffLoopJsonRoute
)

AccessRuleSortField = sort_field_enum("AccessRuleSortField", ACCESS_RULE_FIELDS)
RuleFilterParam = Annotated[
    list[str] | None,
    Query(
        description=(
            "Filter results by a parameter, as field-name operator value. Fields: "
            + ", ".join(ACCESS_RULE_FIELDS)
            + ". Operators: `==` `!=` `<=` `>=` `=@` `!@` `=^` `=$` (dates and roleId: the first "
            "four)."
        ),
        examples=["roleName==Viewer"],
    ),
]
IncludeDeletedParam = Annotated[
    bool, Query(description="True to include deleted objects in the result.")
]
RuleIdParam = Annotated[
    int, Path(ge=0, le=2**31 - 1, description="The id of the access rule to retrieve")
]


def _rules_page(conn, selection: AccessRuleSelection, **paging) -> dict:
    page = build_access_rule_page(selection, **paging)
    rows = access_rules.page_rules(conn, page)
    return {
        "totalRecords": access_rules.count_rules(conn, selection),
        "displayRecords": len(rows),
        "accessRules": [administration.rule_wire(row) for row in rows],
    }


@router.get(
    "/access-rules",
    operation_id="get_access_rules",
    summary="List the access rules.",
    response_model=AccessRules,
    responses=error_responses(400, 401, 403, 500, 503),
)
def get_access_rules(
    actor: ManagingActor,
    conn: Db,
    subjectType: Annotated[str | None, Query(max_length=32)] = None,
    subjectIdFilter: Annotated[str | None, Query(max_length=253, deprecated=True)] = None,
    subjectIds: Annotated[list[str] | None, Query()] = None,
    limit: LimitParam = 50,
    offset: OffsetParam = 0,
    lastUpdated: Annotated[str | None, Query(max_length=64)] = None,
    includeDeleted: IncludeDeletedParam = False,
    clusterId: Annotated[str | None, Query(max_length=64)] = None,
    scopeType: Annotated[str | None, Query(max_length=32, deprecated=True)] = None,
    scopeId: Annotated[str | None, Query(max_length=64)] = None,
    roleId: Annotated[int | None, Query(ge=1, le=2**31 - 1, deprecated=True)] = None,
    sortOrder: Annotated[SortOrder, Query()] = SortOrder.ASC,
    sortBy: Annotated[AccessRuleSortField | None, Query()] = None,
    filterBy: RuleFilterParam = None,
    search: SearchParam = None,
) -> Response:
    try:
        subject_type = subject_type_of(subjectType).value if subjectType else None
    except ValueError:
        raise QueryError("subjectType", f"{subjectType!r} is not a subject type") from None
    selection = build_access_rule_selection(
        filter_by=filterBy,
        search=search,
        include_deleted=includeDeleted,
        last_updated=lastUpdated,
        subject_type=subject_type,
        subject_id_part=subjectIdFilter,
        subject_ids=split_list(subjectIds),
        scope_type=scopeType,
        scope_id=scopeId,
        role_id=roleId,
        cluster_id=clusterId,
        within_departments=administration.rules_visible_to(actor),
    )
    sort = sortBy.value if sortBy else None
    body = _rules_page(
        conn, selection, sort_by=sort, sort_order=sortOrder.value, offset=offset, limit=limit
    )
    return json_response(body)


def grant_by_role_id(conn, actor: Actor, body: AccessRuleCreationFields) -> dict:
    """Grant the rule Run:ai's creation fields describe; the rule in Run:ai's shape."""
    role = ROLES_BY_ID.get(body.roleId)
    if role is None:
        raise NotFound(f"Role {body.roleId} not found; GET /api/v1/authorization/roles lists them.")
    if body.scopeType == "system":
        raise Invalid(
            "Invalid request body: scopeType 'system': this server has no system scope; use tenant"
        )
    return administration.grant_rule(
        conn,
        actor,
        subject_type=subject_type_of(body.subjectType),
        subject_id=body.subjectId,
        role=role,
        scope_type=ScopeType(body.scopeType),
        scope_id=body.scopeId,
    )


@router.post(
    "/access-rules",
    operation_id="create_access_rule",
    summary="Create an access rule.",
    status_code=201,
    response_model=AccessRule,
    responses=error_responses(400, 401, 403, 404, 500, 503),
)
def create_access_rule(actor: ManagingActor, conn: Db, body: AccessRuleCreationFields) -> Response:
    rule = grant_by_role_id(conn, actor, body)
    conn.commit()
    return json_response(rule, status_code=201)


@router.get(
    "/access-rules/count",
    operation_id="count_access_rules",
    summary="Count access rules.",
    response_model=Count,
    responses=error_responses(400, 401, 403, 500, 503),
)
def count_access_rules(
    actor: ManagingActor,
    conn: Db,
    includeDeleted: IncludeDeletedParam = False,
    filterBy: RuleFilterParam = None,
    search: SearchParam = None,
) -> Response:
    selection = build_access_rule_selection(
        filter_by=filterBy,
        search=search,
        include_deleted=includeDeleted,
        within_departments=administration.rules_visible_to(actor),
    )
    return json_response({"count": access_rules.count_rules(conn, selection)})


@router.get(
    "/access-rules/{accessRuleId}",
    operation_id="get_access_rule",
    summary="Get an access rule.",
    response_model=AccessRuleById,
    responses=error_responses(401, 403, 404, 500, 503),
)
def get_access_rule(actor: ManagingActor, conn: Db, accessRuleId: RuleIdParam) -> Response:
    rule = administration.visible_rule(conn, actor, accessRuleId)
    body = {**administration.rule_wire(rule), "scopePath": access_rules.scope_path(conn, rule)}
    return json_response(body)


@router.delete(
    "/access-rules/{accessRuleId}",
    operation_id="delete_access_rule",
    summary="Delete an access rule.",
    status_code=204,
    response_class=Response,
    responses={204: {"description": "No Content."}, **error_responses(401, 403, 404, 500, 503)},
)
def delete_access_rule(actor: ManagingActor, conn: Db, accessRuleId: RuleIdParam) -> Response:
    administration.revoke_rule(conn, actor, accessRuleId)
    conn.commit()
    return Response(status_code=204)


def _me_selection(principal, search: str | None) -> AccessRuleSelection:
    pairs = principal.subjects()
    return build_access_rule_selection(search=search, subjects=tuple(pairs))


_ME_FIELDS = (
    "id",
    "tenantId",
    "subjectId",
    "subjectType",
    "roleId",
    "roleName",
    "scopeId",
    "scopeType",
    "scopeName",
    "clusterId",
)


@router.get(
    "/me/access-rules",
    operation_id="get_me_access_rules",
    tags=["Me"],
    summary="List the access rules assigned to the requesting user.",
    response_model=MeAccessRulesResponse,
    responses=error_responses(400, 401, 500, 503),
)
def get_me_access_rules(
    principal: CurrentPrincipal,
    conn: Db,
    limit: LimitParam = 50,
    offset: OffsetParam = 0,
    search: SearchParam = None,
) -> Response:
    selection = _me_selection(principal, search)
    page = _rules_page(conn, selection, offset=offset, limit=limit)
    page["accessRules"] = [
        {key: rule[key] for key in _ME_FIELDS if key in rule} for rule in page["accessRules"]
    ]
    return json_response({"accessRules": page})


@router.get(
    "/me/access-rules/count",
    operation_id="count_me_access_rules",
    tags=["Me"],
    summary="Count the access rules assigned to the requesting user.",
    response_model=Count,
    responses=error_responses(400, 401, 500, 503),
)
def count_me_access_rules(
    principal: CurrentPrincipal, conn: Db, search: SearchParam = None
) -> Response:
    selection = _me_selection(principal, search)
    return json_response({"count": access_rules.count_rules(conn, selection)})
