"""``/api/v1/org-unit/projects`` and ``/departments``: list, count and get, read-only.

A unit outside the caller's scope answers 404 exactly like an unknown one; the scope is
applied in the statement that selects the units (see docs/access-control.md).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response
from sqlalchemy.engine import Connection

from gpufleet.api.authorization import ReadScope
from gpufleet.api.deps import Db
from gpufleet.api.parameters import LimitParam, SearchParam, SortOrderParam
from gpufleet.api.responses import json_response, paged_response
from gpufleet.api.routes.workloads import FILTER_DESCRIPTION
from gpufleet.api.routing import OffLoopJsonRoute
from gpufleet.core.errors import NotFound
from gpufleet.core.org_unit_fields import DEPARTMENT_FIELDS, PROJECT_FIELDS
from gpufleet.core.workload_fields import WorkloadField
from gpufleet.query.listing import MAX_OFFSET
from gpufleet.query.org_units import build_org_unit_page, build_org_unit_selection
from gpufleet.query.scope import WorkloadScope
from gpufleet.schemas.enums import SortOrder
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

ProjectSortField = StrEnum("ProjectSortField", {name: name for name in PROJECT_FIELDS})
DepartmentSortField = StrEnum("DepartmentSortField", {name: name for name in DEPARTMENT_FIELDS})


class DepartmentVerbosity(StrEnum):
    META = "meta"
    BRIEF = "brief"
    VERBOSE = "verbose"


def _filter_param(fields: dict[str, WorkloadField]):
    return Annotated[
        list[str] | None,
        Query(
            description=FILTER_DESCRIPTION + " Fields: " + ", ".join(fields) + ".",
            examples=["name!=some-name"],
        ),
    ]


ProjectFilterParam = _filter_param(PROJECT_FIELDS)
DepartmentFilterParam = _filter_param(DEPARTMENT_FIELDS)
OrgOffsetParam = Annotated[
    int | None,
    Query(ge=0, le=MAX_OFFSET, description="The offset of the first item returned."),
]
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


def _page(
    conn: Connection,
    kind: UnitKind,
    fields: dict[str, WorkloadField],
    scope: WorkloadScope,
    **parameters: Any,
) -> tuple[list[dict[str, Any]], int | None]:
    selection = build_org_unit_selection(
        fields, filter_by=parameters["filter_by"], search=parameters.get("search"), scope=scope
    )
    sort_by = parameters["sort_by"]
    page = build_org_unit_page(
        fields,
        selection,
        sort_by=sort_by.value if sort_by else None,
        sort_order=parameters["sort_order"].value,
        offset=parameters["offset"],
        limit=parameters["limit"],
    )
    return list_units(conn, kind, page)


@router.get(
    "/projects",
    tags=["Projects"],
    summary="Get projects.",
    description="The projects the caller may read, with quotas and allocation per node pool.",
    operation_id="get_projects",
    response_model=ProjectList,
    responses=error_responses(400, 401, 403, 500, 503),
)
def get_projects(
    scope: ReadScope,
    conn: Db,
    filterBy: ProjectFilterParam = None,
    sortBy: Annotated[ProjectSortField | None, Query(description="Sort results by.")] = None,
    sortOrder: SortOrderParam = SortOrder.ASC,
    offset: OrgOffsetParam = None,
    limit: LimitParam = 50,
    search: SearchParam = None,
) -> Response:
    rows, next_offset = _page(
        conn,
        UnitKind.PROJECT,
        PROJECT_FIELDS,
        scope,
        filter_by=filterBy,
        sort_by=sortBy,
        sort_order=sortOrder,
        offset=offset,
        limit=limit,
        search=search,
    )
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
def count_projects(
    scope: ReadScope, conn: Db, filterBy: ProjectFilterParam = None, search: SearchParam = None
) -> Response:
    selection = build_org_unit_selection(
        PROJECT_FIELDS, filter_by=filterBy, search=search, scope=scope
    )
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
def get_project(scope: ReadScope, conn: Db, projectId: ProjectIdParam) -> Response:
    row = get_unit_or_404(conn, UnitKind.PROJECT, projectId, scope)
    return json_response(projects_wire(conn, [row])[0])


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
    scope: ReadScope,
    conn: Db,
    filterBy: DepartmentFilterParam = None,
    sortBy: Annotated[DepartmentSortField | None, Query(description="Sort results by.")] = None,
    verbosity: Annotated[
        DepartmentVerbosity | None, Query(description="Accepted; every level gets the same.")
    ] = None,
    sortOrder: SortOrderParam = SortOrder.ASC,
    offset: OrgOffsetParam = None,
    limit: LimitParam = 50,
) -> Response:
    rows, next_offset = _page(
        conn,
        UnitKind.DEPARTMENT,
        DEPARTMENT_FIELDS,
        scope,
        filter_by=filterBy,
        sort_by=sortBy,
        sort_order=sortOrder,
        offset=offset,
        limit=limit,
    )
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
def count_departments(scope: ReadScope, conn: Db, filterBy: DepartmentFilterParam = None):
    selection = build_org_unit_selection(DEPARTMENT_FIELDS, filter_by=filterBy, scope=scope)
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
def get_department(scope: ReadScope, conn: Db, departmentId: DepartmentIdParam) -> Response:
    row = get_unit_or_404(conn, UnitKind.DEPARTMENT, departmentId, scope)
    return json_response(departments_wire(conn, [row], detailed=True)[0])
