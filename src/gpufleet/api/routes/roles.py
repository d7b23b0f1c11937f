"""Run:ai's roles (by numeric id) and the caller's permission summary."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import Response

from gpufleet.api.authorization import CallerAccess
from gpufleet.api.responses import json_response
from gpufleet.api.routing import OffLoopJsonRoute
from gpufleet.core.errors import NotFound
from gpufleet.core.roles import (
    RESOURCE_PERMISSIONS,
    ROLE_DESCRIPTIONS,
    ROLE_IDS,
    ROLE_NAMES,
    ROLE_PERMISSIONS,
    ROLES_BY_ID,
    ROLES_DEFINED_AT,
    Permission,
    Role,
)
from gpufleet.schemas.access import Permission as PermissionModel
from gpufleet.schemas.access import Role as RoleModel
from gpufleet.schemas.errors import error_responses

router = APIRouter(prefix="/api/v1/authorization", route_class=OffLoopJsonRoute)


def permissions_wire(permissions: frozenset[Permission]) -> list[dict]:
    """Run:ai's ``Permissions``: one entry per resource type, its actions merged."""
    merged: dict[str, dict] = {}
    for permission in sorted(permissions):
        for resource in RESOURCE_PERMISSIONS[permission]:
            entry = merged.setdefault(
                resource.resource_type,
                {
                    "resourceType": resource.resource_type,
                    "displayName": resource.display_name,
                    "groupId": resource.group_id,
                    "actions": [],
                },
            )
            entry["actions"].extend(a for a in resource.actions if a not in entry["actions"])
    return list(merged.values())


def role_wire(role: Role) -> dict:
    """Run:ai's ``RoleV1`` of a built-in role."""
    return {
        "id": ROLE_IDS[role],
        "name": ROLE_NAMES[role],
        "description": ROLE_DESCRIPTIONS[role],
        "permissions": permissions_wire(ROLE_PERMISSIONS[role]),
        "createdAt": ROLES_DEFINED_AT,
        "updatedAt": ROLES_DEFINED_AT,
        "createdBy": "system",
        "custom": False,
        "enabled": True,
        "effectiveEnabled": True,
        "deletedAt": None,
    }


@router.get(
    "/roles",
    operation_id="get_roles_v1",
    tags=["Roles"],
    summary="Get a list of roles.",
    response_model=list[RoleModel],
    responses=error_responses(400, 401, 403, 500, 503),
)
def get_roles(_access: CallerAccess) -> Response:
    return json_response([role_wire(role) for role in sorted(Role, key=ROLE_IDS.get)])


@router.get(
    "/roles/{roleIdPath}",
    operation_id="get_role_v1",
    tags=["Roles"],
    summary="Get a role by id.",
    response_model=RoleModel,
    responses=error_responses(400, 401, 403, 404, 500, 503),
)
def get_role(
    _access: CallerAccess,
    roleIdPath: Annotated[int, Path(ge=0, le=2**31 - 1, description="The id of the role")],
) -> Response:
    role = ROLES_BY_ID.get(roleIdPath)
    if role is None:
        raise NotFound(f"Role {roleIdPath} not found.")
    return json_response(role_wire(role))


@router.get(
    "/permissions",
    operation_id="get_permissions",
    tags=["Permissions"],
    summary="Get a summary of user permissions.",
    response_model=list[PermissionModel],
    responses=error_responses(401, 500, 503),
)
def get_permissions(access: CallerAccess) -> Response:
    return json_response(permissions_wire(access.permissions))
