"""``/api/v1/workload-fields``: the workload field catalogue's queryable rows, for clients.

The dashboard builds its filter form from this answer instead of a list of its own.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from gpufleet.api.authorization import ReadScope
from gpufleet.api.responses import json_response
from gpufleet.api.routing import OffLoopJsonRoute
from gpufleet.core.workload_fields import ALLOWED_OPERATORS, QUERY_FIELDS, Operator
from gpufleet.query.filters import enum_values
from gpufleet.schemas.errors import error_responses
from gpufleet.schemas.workload_fields import QueryableFieldList

router = APIRouter(prefix="/api/v1", tags=["Workloads"], route_class=OffLoopJsonRoute)

_BODY = {
    "fields": [
        {
            "name": field.name,
            "kind": field.kind.value,
            # In the order of the Operator enum, which is the order filterBy documents them.
            "operators": [op.value for op in Operator if op in ALLOWED_OPERATORS[field.kind]],
            "sortable": field.sortable,
            # A fixed set of values (an enum), so a client can offer them and leave out <=/>=.
            **({"values": list(values)} if (values := enum_values(field)) else {}),
        }
        for field in QUERY_FIELDS
        if field.filterable
    ]
}


@router.get(
    "/workload-fields",
    summary="The workload fields filterBy and sortBy accept.",
    operation_id="list_workload_fields",
    response_model=QueryableFieldList,
    responses=error_responses(401, 403),
)
def list_workload_fields(_scope: ReadScope) -> Response:
    return json_response(_BODY)
