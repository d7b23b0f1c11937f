"""``GET /api/v1/nodes/{nodeId}/metrics``: time series of one node, per GPU and in total.

Sampled, formatted and failed like workload metrics; a type the server's metrics backend has
no source for is a 400 naming it and the backend (see docs/inventory.md).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response
from sqlalchemy.engine import Connection

from gpufleet.api.admission import hand_back
from gpufleet.api.authorization import ReadScope
from gpufleet.api.concurrency import ExpensiveRead
from gpufleet.api.deps import Db
from gpufleet.api.metric_parameters import metric_types_param, metrics_query
from gpufleet.api.parameters import parse_uuid
from gpufleet.api.routes.metrics import METRICS_RESPONSES, metric_results_response
from gpufleet.api.routing import OffLoopJsonRoute
from gpufleet.core.errors import NotFound
from gpufleet.metrics.node_metrics import NodeMetrics
from gpufleet.metrics.types import NodeMetricType
from gpufleet.query.scope import WorkloadScope
from gpufleet.schemas.metrics import MetricsCompositeResponse
from gpufleet.store.metric_targets import node_target_of
from gpufleet.store.nodes import get_node

router = APIRouter(prefix="/api/v1/nodes", tags=["Nodes"], route_class=OffLoopJsonRoute)

NodeIdParam = Annotated[
    str, Path(description="The node UUID.", json_schema_extra={"format": "uuid"})
]


def get_node_or_404(conn: Connection, node_id: str, scope: WorkloadScope):
    """The guard of every route taking a node id: out of scope reads as unknown."""
    row = get_node(conn, parse_uuid("nodeId", node_id), scope)
    if row is None:
        raise NotFound(f"Node {node_id} not found.")
    return row


def node_metrics_of(request: Request) -> NodeMetrics:
    return request.app.state.node_metrics


_TYPES_DESCRIPTION = "Specify which data to request (comma-separated or repeated)."
NodeMetricsQuery = metrics_query(
    metric_types_param(NodeMetricType, _TYPES_DESCRIPTION), NodeMetricType, "node",
    source=node_metrics_of, answers=lambda serving: serving.node_metric_types,
)  # fmt: skip


@router.get(
    "/{nodeId}/metrics",
    summary="Get the node metrics data.",
    description=(
        "The node's metrics over [start, end), numberOfSamples evenly spaced points per type, "
        "per GPU (labelled gpu) or for the whole node. Which types each metrics backend "
        "answers: docs/inventory.md; another type is a 400 naming the backend."
    ),
    operation_id="get_node_metrics",
    response_model=MetricsCompositeResponse,
    response_model_exclude_none=True,
    responses=METRICS_RESPONSES,
)
def get_node_metrics(
    _slot: ExpensiveRead,
    request: Request,
    scope: ReadScope,
    conn: Db,
    nodeId: NodeIdParam,
    query: NodeMetricsQuery,
) -> Response:
    source = node_metrics_of(request)
    target = node_target_of(get_node_or_404(conn, nodeId, scope))
    hand_back(conn)  # the backend may take a while, and may take a connection of its own
    results = source.node_metrics(target, query.types, query.window)
    return metric_results_response(request, source.name, results, histogram=False)
