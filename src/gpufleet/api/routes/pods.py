"""``/api/v1/workloads/pods``, ``/pods/count`` and ``/{workloadId}/pods``: pods in Run:ai's shape.

A pod is visible exactly when its workload is: the caller's scope is applied in the same SQL
statement as the filters.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from gpufleet.api.authorization import ReadScope
from gpufleet.api.deps import Db, Now
from gpufleet.api.parameters import (
    DeletedParam,
    LimitParam,
    OffsetParam,
    SearchParam,
    SortOrderParam,
    sort_field_enum,
)
from gpufleet.api.responses import json_response, paged_response
from gpufleet.api.routes.workloads import WorkloadIdParam, get_workload_or_404
from gpufleet.api.routing import OffLoopJsonRoute
from gpufleet.core.pod_fields import POD_FIELDS
from gpufleet.query.pods import build_pod_page, build_pod_selection
from gpufleet.schemas.enums import SortOrder
from gpufleet.schemas.errors import error_responses
from gpufleet.schemas.pods import PodCount, PodList, PodVerbosity
from gpufleet.store.pods import count_pods, list_pods

router = APIRouter(prefix="/api/v1/workloads", tags=["Pods"], route_class=OffLoopJsonRoute)

PodSortField = sort_field_enum("PodSortField", POD_FIELDS)
PodFilterParam = Annotated[
    list[str] | None,
    Query(
        description=(
            "Filter results using a parameter, as field-name operator value. Fields: "
            + ", ".join(POD_FIELDS)
            + ". Operators: `==` `!=` `<=` `>=` `=@` `!@` `=^` `=$` (dates: the first four)."
        ),
        examples=["nodeName!=some-node-name"],
    ),
]
CompletedParam = Annotated[
    str,
    Query(
        description=(
            "Return only completed pods when 'true', only pods not completed when 'false'; "
            "all by default."
        )
    ),
]


@router.get(
    "/pods",
    summary="List pods.",
    description="Retrieve a list of pods from a cluster.",
    operation_id="list_pods",
    response_model=PodList,
    response_model_exclude_none=True,
    responses=error_responses(400, 401, 403, 404, 500, 503),
)
def list_all_pods(
    scope: ReadScope,
    conn: Db,
    deleted: DeletedParam = None,
    offset: OffsetParam = 0,
    limit: LimitParam = 50,
    sortOrder: SortOrderParam = SortOrder.ASC,
    sortBy: Annotated[
        PodSortField | None, Query(description="Sort results using a parameter.")
    ] = None,
    filterBy: PodFilterParam = None,
    verbosity: Annotated[
        PodVerbosity,
        Query(description="With `full`, each pod carries workloadName and projectName."),
    ] = PodVerbosity.BRIEF,
    completed: CompletedParam = "all",
    search: SearchParam = None,
) -> Response:
    selection = build_pod_selection(
        filter_by=filterBy, search=search, deleted=deleted, completed=completed, scope=scope
    )
    page = build_pod_page(
        selection,
        sort_by=sortBy.value if sortBy else None,
        sort_order=sortOrder.value,
        offset=offset,
        limit=limit,
        full=verbosity is PodVerbosity.FULL,
    )
    return paged_response("pods", *list_pods(conn, page))


@router.get(
    "/pods/count",
    summary="Get pods count.",
    description="Retrieve the number of pods from a cluster.",
    operation_id="count_pods",
    response_model=PodCount,
    responses=error_responses(400, 401, 403, 500, 503),
)
def count_all_pods(
    scope: ReadScope,
    conn: Db,
    deleted: DeletedParam = None,
    filterBy: PodFilterParam = None,
    search: SearchParam = None,
) -> Response:
    selection = build_pod_selection(filter_by=filterBy, search=search, deleted=deleted, scope=scope)
    return json_response({"count": count_pods(conn, selection)})


@router.get(
    "/{workloadId}/pods",
    summary="Get workload pods by id.",
    description="The pods of a workload, by creation time.",
    operation_id="get_workload_pods",
    response_model=PodList,
    response_model_exclude_none=True,
    responses=error_responses(400, 401, 403, 404, 500, 503),
)
def get_workload_pods(
    scope: ReadScope,
    conn: Db,
    now: Now,
    workloadId: WorkloadIdParam,
    deleted: DeletedParam = None,
    offset: OffsetParam = 0,
    limit: LimitParam = 50,
    search: SearchParam = None,
) -> Response:
    workload = get_workload_or_404(conn, workloadId, now, scope)
    selection = build_pod_selection(
        filter_by=None, search=search, deleted=deleted, workload_id=workload["id"]
    )
    page = build_pod_page(selection, sort_by=None, sort_order=None, offset=offset, limit=limit)
    return paged_response("pods", *list_pods(conn, page))
