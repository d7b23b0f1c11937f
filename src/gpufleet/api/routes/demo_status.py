"""``/api/v1/demo/status``: whether the demo simulator still fills in its history.

``gpufleet serve --demo`` puts a status source in ``app.state.demo_status``; without one the
server runs no demo and answers 404.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from gpufleet.api.authorization import ReadScope
from gpufleet.api.responses import json_response
from gpufleet.api.routing import OffLoopJsonRoute
from gpufleet.core.errors import NotFound
from gpufleet.schemas.demo import DemoStatus
from gpufleet.schemas.errors import error_responses

router = APIRouter(prefix="/api/v1", tags=["Demo"], route_class=OffLoopJsonRoute)


@router.get(
    "/demo/status",
    summary="What the demo simulator is doing.",
    description=(
        "Served by `gpufleet serve --demo`: while `historyComplete` is false the simulator is "
        "still reporting the past, and views of the last day fill in as it goes."
    ),
    operation_id="get_demo_status",
    response_model=DemoStatus,
    responses=error_responses(401, 403, 404),
)
def get_demo_status(request: Request, _scope: ReadScope) -> Response:
    source = getattr(request.app.state, "demo_status", None)
    if source is None:
        raise NotFound("This server runs no demo.")
    return json_response(source())
