"""``GET /api/v1/org-unit/projects/telemetry`` and ``/departments/telemetry``: quota and
allocation as of now, grouped.

Included before the org-unit router, so ``/telemetry`` is never taken for a unit's id.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.responses import Response

from gpufleet.api.authorization import ReadScope
from gpufleet.api.deps import Db, Now
from gpufleet.api.responses import json_response
from gpufleet.api.routes.telemetry import telemetry_body
from gpufleet.api.routing import OffLoopJsonRoute
from gpufleet.query.choices import parse_choices
from gpufleet.query.errors import QueryError
from gpufleet.query.scope import WorkloadScope
from gpufleet.schemas.errors import error_responses
from gpufleet.schemas.org_units import OrgUnitTelemetryType
from gpufleet.schemas.telemetry import TelemetryResponse
from gpufleet.store.org_figures import UnitKind
from gpufleet.store.org_telemetry import (
    ANSWERED,
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
    "CPU_QUOTA and MEMORY_QUOTA from the scheduler's queues, GPU_ALLOCATION and "
    "GPU_ALLOCATION_NON_PREEMPTIBLE from the workloads. The CPU and memory allocation types are "
    "answered 400. See docs/organisation.md."
)
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


def parse_group_by(
    values: Sequence[str] | None, allowed: dict[str, GroupKey]
) -> tuple[GroupKey, ...]:
    groups = parse_choices("groupBy", values, allowed, distinct=True)
    if len(groups) > MAX_GROUP_BY:
        raise QueryError("groupBy", f"at most {MAX_GROUP_BY} values are allowed")
    return groups


def parse_cluster(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return str(UUID(value))
    except ValueError:
        raise QueryError("clusterId", f"{value[:64]!r} is not a UUID") from None


def _answer(conn, now, kind: UnitKind, scope: WorkloadScope, **query) -> Response:
    telemetry_type = query["type"]
    if telemetry_type not in ANSWERED:
        raise QueryError(
            "telemetryType",
            f"{telemetry_type.value} is not available: gpufleet answers "
            + ", ".join(sorted(t.value for t in ANSWERED)),
        )
    values = org_unit_telemetry(conn, OrgTelemetryQuery(kind=kind, scope=scope, **query))
    return json_response(telemetry_body(telemetry_type, now, values))


@router.get(
    "/projects/telemetry",
    tags=["Projects"],
    summary="Get projects telemetry.",
    description=TELEMETRY_DESCRIPTION.format(units="projects"),
    operation_id="get_projects_telemetry",
    response_model=TelemetryResponse,
    response_model_exclude_none=True,
    responses=error_responses(400, 401, 403, 500, 503),
)
def get_projects_telemetry(
    scope: ReadScope,
    conn: Db,
    now: Now,
    telemetryType: TypeParam,
    clusterId: ClusterParam = None,
    nodepoolId: Annotated[
        str | None, Query(description="Filter using the nodepool id.", max_length=64)
    ] = None,
    departmentId: DepartmentParam = None,
    groupBy: GroupByParam = None,
) -> Response:
    return _answer(
        conn,
        now,
        UnitKind.PROJECT,
        scope,
        type=telemetryType,
        cluster_id=parse_cluster(clusterId),
        department_id=departmentId,
        nodepool_id=nodepoolId,
        group_by=parse_group_by(groupBy, PROJECT_GROUPS),
    )


@router.get(
    "/departments/telemetry",
    tags=["Departments"],
    summary="Get departments telemetry.",
    description=TELEMETRY_DESCRIPTION.format(units="departments"),
    operation_id="get_departments_telemetry",
    response_model=TelemetryResponse,
    response_model_exclude_none=True,
    responses=error_responses(400, 401, 403, 500, 503),
)
def get_departments_telemetry(
    scope: ReadScope,
    conn: Db,
    now: Now,
    telemetryType: TypeParam,
    clusterId: ClusterParam = None,
    nodepoolName: Annotated[
        str | None, Query(description="Filter using the nodepool.", max_length=253)
    ] = None,
    departmentId: DepartmentParam = None,
    groupBy: GroupByParam = None,
) -> Response:
    return _answer(
        conn,
        now,
        UnitKind.DEPARTMENT,
        scope,
        type=telemetryType,
        cluster_id=parse_cluster(clusterId),
        department_id=departmentId,
        nodepool=nodepoolName,
        group_by=parse_group_by(groupBy, DEPARTMENT_GROUPS),
    )
