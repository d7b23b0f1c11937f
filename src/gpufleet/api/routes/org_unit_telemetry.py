"""``GET /api/v1/org-unit/projects/telemetry`` and ``/departments/telemetry``: quota and
allocation as of now, grouped.

Included before the org-unit router, so ``/telemetry`` is never taken for a unit's id. Both
routes read their parameters through one dependency per unit kind (annotations are evaluated
eagerly here, so the dependencies built in ``_telemetry_query`` can be named in them).
"""

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from sqlalchemy.engine import Connection

from gpufleet.api.authorization import ReadScope
from gpufleet.api.deps import Db, Now
from gpufleet.api.responses import json_response
from gpufleet.api.routes.telemetry import telemetry_body
from gpufleet.api.routing import OffLoopJsonRoute
from gpufleet.query.choices import parse_group_by, parse_uuid_choice
from gpufleet.schemas.errors import error_responses
from gpufleet.schemas.org_units import OrgUnitTelemetryType
from gpufleet.schemas.telemetry import TelemetryResponse
from gpufleet.store.org_figures import UnitKind
from gpufleet.store.org_telemetry import (
    CLUSTER,
    NODEPOOL,
    PARENT,
    GroupKey,
    OrgTelemetryQuery,
    org_unit_telemetry,
)

router = APIRouter(prefix="/api/v1/org-unit", route_class=OffLoopJsonRoute)

MAX_GROUP_BY = 2
PROJECT_GROUPS = {"ClusterId": CLUSTER, "NodepoolId": NODEPOOL, "ParentId": PARENT}
DEPARTMENT_GROUPS = {"CLUSTER_ID": CLUSTER}
TELEMETRY_DESCRIPTION = (
    "Quota and allocation of the {units} the caller may read, as of the request: GPU_QUOTA, "
    "CPU_QUOTA (millicores) and MEMORY_QUOTA (MB) from the scheduler's queues, GPU_ALLOCATION "
    "from the workloads, CPU_ALLOCATION (millicores) and MEMORY_ALLOCATION (MB) from what their "
    "pods hold, each also of non-preemptible workloads. See docs/organisation.md."
)
TELEMETRY_RESPONSES = error_responses(400, 401, 403, 500, 503)
TypeParam = Annotated[OrgUnitTelemetryType, Query(description="specifies what data to request")]
ClusterParam = Annotated[
    str | None, Query(description="Filter using the UUID of the cluster.", max_length=64)
]
DepartmentParam = Annotated[
    str | None, Query(description="Filter using the department id.", max_length=64)
]
GroupByParam = Annotated[
    list[str] | None,
    Query(description="Fields to group the data by (at most 2, comma-separated or repeated)."),
]


async def project_pool(
    nodepoolId: Annotated[
        str | None, Query(description="Filter using the nodepool id.", max_length=64)
    ] = None,
) -> dict[str, Any]:
    return {"nodepool_id": nodepoolId}


async def department_pool(
    nodepoolName: Annotated[
        str | None, Query(description="Filter using the nodepool.", max_length=253)
    ] = None,
) -> dict[str, Any]:
    return {"nodepool": nodepoolName}


def _telemetry_query(
    kind: UnitKind, groups: dict[str, GroupKey], pool: Callable[..., dict[str, Any]]
):
    """The dependency reading one kind's telemetry parameters into its query."""

    async def read(
        scope: ReadScope,
        telemetryType: TypeParam,
        pool_filter: Annotated[dict[str, Any], Depends(pool)],
        clusterId: ClusterParam = None,
        departmentId: DepartmentParam = None,
        groupBy: GroupByParam = None,
    ) -> OrgTelemetryQuery:
        return OrgTelemetryQuery(
            kind=kind,
            type=telemetryType,
            scope=scope,
            cluster_id=parse_uuid_choice("clusterId", clusterId),
            department_id=departmentId,
            group_by=parse_group_by(groupBy, groups, MAX_GROUP_BY),
            **pool_filter,
        )

    return Annotated[OrgTelemetryQuery, Depends(read)]


ProjectTelemetry = _telemetry_query(UnitKind.PROJECT, PROJECT_GROUPS, project_pool)
DepartmentTelemetry = _telemetry_query(UnitKind.DEPARTMENT, DEPARTMENT_GROUPS, department_pool)


def _answer(conn: Connection, now: datetime, query: OrgTelemetryQuery) -> Response:
    values = org_unit_telemetry(conn, query)
    return json_response(telemetry_body(query.type, now, values))


@router.get(
    "/projects/telemetry",
    tags=["Projects"],
    summary="Get projects telemetry.",
    description=TELEMETRY_DESCRIPTION.format(units="projects"),
    operation_id="get_projects_telemetry",
    response_model=TelemetryResponse,
    response_model_exclude_none=True,
    responses=TELEMETRY_RESPONSES,
)
def get_projects_telemetry(conn: Db, now: Now, query: ProjectTelemetry) -> Response:
    return _answer(conn, now, query)


@router.get(
    "/departments/telemetry",
    tags=["Departments"],
    summary="Get departments telemetry.",
    description=TELEMETRY_DESCRIPTION.format(units="departments"),
    operation_id="get_departments_telemetry",
    response_model=TelemetryResponse,
    response_model_exclude_none=True,
    responses=TELEMETRY_RESPONSES,
)
def get_departments_telemetry(conn: Db, now: Now, query: DepartmentTelemetry) -> Response:
    return _answer(conn, now, query)
