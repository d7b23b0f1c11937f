"""``/api/v1/workloads/{workloadId}/pods``: the pods the cluster agent last reported."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from gpufleet.api.authorization import ReadScope
from gpufleet.api.deps import Db, Now
from gpufleet.api.responses import json_response
from gpufleet.api.routes.workloads import WorkloadIdParam, get_workload_or_404
from gpufleet.schemas.errors import error_responses
from gpufleet.schemas.pods import WorkloadPods
from gpufleet.store.pods import list_pods

router = APIRouter(prefix="/api/v1/workloads", tags=["Workloads"])


@router.get(
    "/{workloadId}/pods",
    summary="Get the pods of a workload.",
    description="The pods of a workload as the cluster agent last reported them, by name.",
    operation_id="get_workload_pods",
    response_model=WorkloadPods,
    responses=error_responses(400, 401, 403, 404, 500, 503),
)
def get_workload_pods(
    scope: ReadScope, conn: Db, now: Now, workloadId: WorkloadIdParam
) -> Response:
    workload = get_workload_or_404(conn, workloadId, now, scope)
    return json_response({"pods": list_pods(conn, workload["id"])})
