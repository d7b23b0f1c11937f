"""``/api/v1/org-unit/projects`` and ``/departments``: list, count and get, read-only.

A unit outside the caller's scope answers 404 exactly like an unknown one; the scope is
applied in the statement that selects the units (see docs/access-control.md).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response
from sqlalchemy.engine import Connection

from gpufleet.api.authorization import ReadScope
from gpufleet.api.catalogue_parameters import catalogue_listing
from gpufleet.api.deps import Db
from gpufleet.api.responses import json_response, paged_response
from gpufleet.api.routing import OffLoopJsonRoute
from gpufleet.core.errors import NotFound
from gpufleet.core.org_unit_fields import DEPARTMENT_FIELDS, PROJECT_FIELDS
from gpufleet.query.scope import WorkloadScope
from gpufleet.schemas.errors import error_responses
from gpufleet.schemas.org_units import (
    Department,
    DepartmentList,
    OrgUnitCount,
    Project,
    ProjectList,
)
from gpufleet.store.org_figures import UnitKind
from gpufleet.store.org_unit_wire import departments_wire, projects_wire
from gpufleet.store.org_units import count_units, get_unit, list_units

router = APIRouter(prefix="/api/v1/org-unit", route_class=OffLoopJsonRoute)

Projects = catalogue_listing("Project", PROJECT_FIELDS, search=True)
Departments = catalogue_listing("Department", DEPARTMENT_FIELDS, search=False)


class DepartmentVerbosity(StrEnum):
    META = "meta"
    BRIEF = "brief"
    VERBOSE = "verbose"


ProjectIdParam = Annotated[str, Path(description="The project id.", max_length=64)]
DepartmentIdParam = Annotated[str, Path(description="The department id.", max_length=64)]


def get_unit_or_404(
    conn: Connection, kind: UnitKind, unit_id: str, scope: WorkloadScope
) -> dict[str, Any]:
    """The guard of every route taking a project or department id."""
    row = get_unit(conn, kind, unit_id, scope)
    if row is None:
        raise NotFound(f"{kind.value.capitalize()} {unit_id} not found.")
    return row


def project_or_404(scope: ReadScope, conn: Db, projectId: ProjectIdParam) -> dict[str, Any]:
    return get_unit_or_404(conn, UnitKind.PROJECT, projectId, scope)


def department_or_404(
    scope: ReadScope, conn: Db, departmentId: DepartmentIdParam
) -> dict[str, Any]:
    return get_unit_or_404(conn, UnitKind.DEPARTMENT, departmentId, scope)


# The project or department a path names, read once per request by the guard.
ProjectRow = Annotated[dict[str, Any], Depends(project_or_404)]
DepartmentRow = Annotated[dict[str, Any], Depends(department_or_404)]


@router.get(
    "/projects",
    tags=["Projects"],
    summary="Get projects.",
    description="The projects the caller may read, with quotas and allocation per node pool.",
    operation_id="get_projects",
    response_model=ProjectList,
    responses=error_responses(400, 401, 403, 500, 503),
)
def get_projects(conn: Db, page: Projects.Page) -> Response:
    rows, next_offset = list_units(conn, UnitKind.PROJECT, page)
    return paged_response("projects", projects_wire(conn, rows), next_offset)


@router.get(
    "/projects/count",
    tags=["Projects"],
    summary="Count projects.",
    description="The number of projects the caller may read that match the filters.",
    operation_id="count_projects",
    response_model=OrgUnitCount,
    responses=error_responses(400, 401, 403, 500, 503),
)
def count_projects(conn: Db, selection: Projects.Selection) -> Response:
    return json_response({"count": count_units(conn, UnitKind.PROJECT, selection)})


@router.get(
    "/projects/{projectId}",
    tags=["Projects"],
    summary="Get a project.",
    description="One project, with its quotas and allocation per node pool.",
    operation_id="get_project",
    response_model=Project,
    responses=error_responses(401, 403, 404, 500, 503),
)
def get_project(conn: Db, project: ProjectRow) -> Response:
    return json_response(projects_wire(conn, [project])[0])


@router.get(
    "/departments",
    tags=["Departments"],
    summary="Get departments.",
    description="The departments the caller may read, with quotas and allocation.",
    operation_id="get_departments",
    response_model=DepartmentList,
    responses=error_responses(400, 401, 403, 500, 503),
)
def get_departments(
    conn: Db,
    page: Departments.Page,
    verbosity: Annotated[
        DepartmentVerbosity | None, Query(description="Accepted; every level gets the same.")
    ] = None,
) -> Response:
    rows, next_offset = list_units(conn, UnitKind.DEPARTMENT, page)
    return paged_response("departments", departments_wire(conn, rows, detailed=False), next_offset)


@router.get(
    "/departments/count",
    tags=["Departments"],
    summary="Count departments.",
    description="The number of departments the caller may read that match the filters.",
    operation_id="count_departments",
    response_model=OrgUnitCount,
    responses=error_responses(400, 401, 403, 500, 503),
)
def count_departments(conn: Db, selection: Departments.Selection) -> Response:
    return json_response({"count": count_units(conn, UnitKind.DEPARTMENT, selection)})


@router.get(
    "/departments/{departmentId}",
    tags=["Departments"],
    summary="Get a department.",
    description="One department, with its quotas, its projects' quotas and its allocation.",
    operation_id="get_department",
    response_model=Department,
    responses=error_responses(401, 403, 404, 500, 503),
)
def get_department(conn: Db, department: DepartmentRow) -> Response:
    return json_response(departments_wire(conn, [department], detailed=True)[0])
