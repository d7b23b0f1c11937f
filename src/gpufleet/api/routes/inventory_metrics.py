"""Metrics over time of clusters, projects and departments, from the inventory samples (and,
on the Prometheus backend, a cluster's capacity and utilisation from Prometheus).

``GET /api/v1/clusters/{clusterUuid}/metrics`` (the reference ``GroupedMetricsResponse``) and
``/org-unit/projects/{projectId}/metrics``, ``/departments/{departmentId}/metrics``
(``MetricsResponse``). A type gpufleet has no source for is listed with null values and the
answer is a partial success (207), as for workload metrics.

Every route reads its types and window through one dependency per type enum
(``_metrics_request``); annotations are evaluated eagerly here so that it can be built once
per enum.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Generic, TypeVar

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from sqlalchemy.engine import Connection

from gpufleet.api.authorization import ReadScope
from gpufleet.api.deps import Db
from gpufleet.api.metric_parameters import metrics_query
from gpufleet.api.responses import json_response
from gpufleet.api.routes.clusters import ClusterUuidParam, get_cluster_or_404
from gpufleet.api.routes.metrics import measurement_values
from gpufleet.api.routes.org_units import DepartmentRow, ProjectRow
from gpufleet.api.routing import OffLoopJsonRoute
from gpufleet.core.errors import Forbidden, NotFound
from gpufleet.core.metric_values import SampleWindow
from gpufleet.core.times import format_rfc3339, from_ms
from gpufleet.metrics.cluster_promql import PrometheusClusterSeries, SeriesFailed
from gpufleet.metrics.types import format_value
from gpufleet.query.errors import QueryError
from gpufleet.query.scope import WorkloadScope
from gpufleet.schemas.clusters import GroupedMetricsResponse
from gpufleet.schemas.errors import error_responses
from gpufleet.schemas.metrics import MetricsCompositeResponse
from gpufleet.schemas.org_units import OrgUnitMetricType
from gpufleet.store.inventory_samples import mean_per_interval, sampled_instants
from gpufleet.store.nodepools import nodepool_named
from gpufleet.store.nodes import live_node_names
from gpufleet.store.org_figures import UnitKind

router = APIRouter(prefix="/api/v1", route_class=OffLoopJsonRoute)
E = TypeVar("E", bound=StrEnum)


class ClusterMetricType(StrEnum):
    TOTAL_GPU_NODES = "TOTAL_GPU_NODES"
    GPU_UTILIZATION = "GPU_UTILIZATION"
    GPU_UTILIZATION_DISTRIBUTION = "GPU_UTILIZATION_DISTRIBUTION"
    GPU_MEMORY_UTILIZATION = "GPU_MEMORY_UTILIZATION"
    CPU_UTILIZATION = "CPU_UTILIZATION"
    CPU_MEMORY_UTILIZATION = "CPU_MEMORY_UTILIZATION"
    TOTAL_GPU = "TOTAL_GPU"
    GPU_QUOTA = "GPU_QUOTA"
    ALLOCATED_GPU = "ALLOCATED_GPU"
    UNALLOCATED_GPU = "UNALLOCATED_GPU"
    AVG_WORKLOAD_WAIT_TIME = "AVG_WORKLOAD_WAIT_TIME"
    WORKLOADS_COUNT = "WORKLOADS_COUNT"


class ClusterMetricsGroupBy(StrEnum):
    CATEGORY = "Category"
    NODEPOOL = "Nodepool"
    PROJECT = "Project"
    DEPARTMENT = "Department"


# The types the sampler records; the others have no source in gpufleet's data.
SAMPLED_CLUSTER_TYPES = frozenset(
    {
        ClusterMetricType.TOTAL_GPU_NODES,
        ClusterMetricType.TOTAL_GPU,
        ClusterMetricType.GPU_QUOTA,
        ClusterMetricType.ALLOCATED_GPU,
        ClusterMetricType.UNALLOCATED_GPU,
        ClusterMetricType.AVG_WORKLOAD_WAIT_TIME,
        ClusterMetricType.WORKLOADS_COUNT,
    }
)
SAMPLED_UNIT_TYPES = frozenset(OrgUnitMetricType) - {OrgUnitMetricType.GPU_MEMORY_UTILIZATION}
NO_SOURCE = "gpufleet has no source for this type"

NodepoolParam = Annotated[
    str | None, Query(description="Filter using the nodepool.", max_length=253)
]
METRICS_RESPONSES = {
    200: {"content": {"text/csv": {}}},
    207: {"description": "Partial success."},
    **error_responses(400, 401, 403, 404, 500, 503),
}


@dataclass(frozen=True, slots=True)
class MetricsRequest(Generic[E]):
    """The requested types, each once, and the window to sample them over."""

    types: list[E]
    window: SampleWindow
    # The capacity and utilisation series of the Prometheus backend; None on the embedded one.
    prometheus: PrometheusClusterSeries | None = None


def _metrics_request(enum: type[E]) -> Any:
    """The dependency reading ``metricType``, ``start``, ``end`` and ``numberOfSamples``."""
    types_param = Annotated[list[str], Query(description="Specify which data to request.")]
    query = metrics_query(types_param, enum, None)

    async def read(http: Request, chosen: query) -> MetricsRequest:
        return MetricsRequest(chosen.types, chosen.window, http.app.state.cluster_series)

    return Annotated[MetricsRequest, Depends(read)]


ClusterMetrics = _metrics_request(ClusterMetricType)
UnitMetrics = _metrics_request(OrgUnitMetricType)


def readable_cluster(conn: Connection, cluster_uuid: str, scope: WorkloadScope, what: str):
    """The cluster, when the caller reads all of it: its figures add up every project's."""
    cluster = get_cluster_or_404(conn, cluster_uuid, scope)
    if not (scope.everything or cluster.id in scope.cluster_ids):
        raise Forbidden(f"{what} need a rule on the tenant or on the cluster.")
    return cluster


def _values(points, window: SampleWindow) -> list[dict[str, str]]:
    """Sampled intervals of ``window``."""
    return [
        {
            "value": format_value(p.value),
            "timestamp": format_rfc3339(from_ms(window.timestamp_ms(p.interval))),
        }
        for p in points
    ]


def _answer(body: dict, unanswered: list[str]) -> Response:
    if not unanswered:
        return json_response(body)
    response = json_response(body, status_code=207)
    response.headers["X-Gpufleet-Metric-Failures"] = "; ".join(unanswered)
    return response


@dataclass(frozen=True, slots=True)
class _Ask:
    """One type of a cluster's (or pool's) request: its grouping or pool, and the window."""

    cluster_id: str
    metric_type: ClusterMetricType
    group_by: ClusterMetricsGroupBy | None
    nodepool: str | None
    window: SampleWindow


def _measurement(ask: _Ask, group: str | None, value: str | None, values: list) -> dict:
    measurement: dict = {"type": ask.metric_type.value, "labels": None}
    if group is not None:
        measurement["groups"] = [{"key": group, "value": value}]
    return {**measurement, "values": values}


def _cluster_measurements(conn: Connection, ask: _Ask, instants: dict[int, int]) -> list[dict]:
    unit, kind, window = ("cluster", ask.cluster_id), ask.metric_type.value, ask.window
    if ask.group_by is None or ask.nodepool is not None:
        series = [f"Nodepool={ask.nodepool}" if ask.nodepool is not None else ""]
        points = mean_per_interval(conn, unit, kind, series, window, instants)
        group = "Nodepool" if ask.nodepool is not None else None
        return [_measurement(ask, group, ask.nodepool, _values(points, window))]
    by_series: dict[str, list] = {}
    for point in mean_per_interval(conn, unit, kind, ask.group_by.value, window, instants):
        by_series.setdefault(point.series, []).append(point)
    return [
        _measurement(ask, ask.group_by.value, series.partition("=")[2], _values(points, window))
        for series, points in sorted(by_series.items())
    ]


def _prometheus_measurements(
    conn: Connection, prometheus: PrometheusClusterSeries, asks: Sequence[_Ask]
) -> dict[ClusterMetricType, list[dict] | SeriesFailed]:
    """Capacity and utilisation types from Prometheus, every query sent at once: over the
    cluster's live nodes, one pool's, or each pool's; no measurement for the other groupings
    (as in the samples). A type whose query failed has its failure."""
    if not asks or asks[0].group_by not in (None, ClusterMetricsGroupBy.NODEPOOL):
        return {ask.metric_type: [] for ask in asks}
    first = asks[0]
    pools = live_node_names(conn, first.cluster_id)
    conn.rollback()  # Prometheus may take a while; hold no transaction open meanwhile
    if first.nodepool is not None:
        chosen = {first.nodepool: pools.get(first.nodepool, [])}
    elif first.group_by is None:
        chosen = {None: [name for names in pools.values() for name in names]}
    else:
        chosen = pools
    queries = [(ask.metric_type.value, names) for ask in asks for names in chosen.values()]
    answers = iter(prometheus.many(queries, first.window))
    found: dict[ClusterMetricType, list[dict] | SeriesFailed] = {}
    for ask in asks:
        of_type = [next(answers) for _ in chosen]
        failed = [a for a in of_type if isinstance(a, SeriesFailed)]
        found[ask.metric_type] = (
            failed[0]
            if failed
            else [
                _measurement(ask, None if pool is None else "Nodepool", pool, measurement_values(a))
                for pool, a in zip(chosen, of_type, strict=True)
            ]
        )
    return found


@router.get(
    "/clusters/{clusterUuid}/metrics",
    tags=["Clusters"],
    summary="Get the cluster metrics data.",
    description=(
        "The cluster's sampled figures over [start, end): TOTAL_GPU_NODES, TOTAL_GPU, "
        "ALLOCATED_GPU, UNALLOCATED_GPU, GPU_QUOTA, WORKLOADS_COUNT, AVG_WORKLOAD_WAIT_TIME; on "
        "the Prometheus backend capacity and the GPU, GPU memory, CPU and memory utilisation "
        "come from Prometheus. Reading them needs a rule on the tenant or on the cluster. See "
        "docs/organisation.md."
    ),
    operation_id="get_cluster_metrics",
    response_model=GroupedMetricsResponse,
    responses=METRICS_RESPONSES,
)
def get_cluster_metrics(
    scope: ReadScope,
    conn: Db,
    clusterUuid: ClusterUuidParam,
    request: ClusterMetrics,
    groupBy: Annotated[
        ClusterMetricsGroupBy | None, Query(description="Labels to group the data by.")
    ] = None,
    nodepoolName: NodepoolParam = None,
) -> Response:
    if nodepoolName is not None and groupBy not in (None, ClusterMetricsGroupBy.NODEPOOL):
        raise QueryError("groupBy", "only Nodepool may be combined with nodepoolName")
    cluster = readable_cluster(conn, clusterUuid, scope, "Cluster metrics")
    return _cluster_answer(conn, cluster.id, request, groupBy, nodepoolName)


def _cluster_answer(
    conn: Connection,
    cluster_id: str,
    request: MetricsRequest,
    group_by: ClusterMetricsGroupBy | None,
    nodepool: str | None,
    labels: dict[str, str] | None = None,
) -> Response:
    """The measurements of every requested type; a type without a source has no values."""
    measurements: list[dict] = []
    unanswered: list[str] = []
    prometheus = request.prometheus
    asks = {t: _Ask(cluster_id, t, group_by, nodepool, request.window) for t in request.types}
    from_prometheus = {}
    if prometheus is not None:
        answerable = [ask for t, ask in asks.items() if t.value in prometheus.answers]
        from_prometheus = _prometheus_measurements(conn, prometheus, answerable)
    instants = sampled_instants(conn, cluster_id, request.window)
    for metric_type, ask in asks.items():
        if metric_type in from_prometheus:
            found = from_prometheus[metric_type]
            if isinstance(found, SeriesFailed):
                unanswered.append(f"{metric_type.value}: {found}")
                measurements.append({"type": metric_type.value, "labels": None, "values": None})
                continue
        elif metric_type in SAMPLED_CLUSTER_TYPES:
            found = _cluster_measurements(conn, ask, instants)
        else:
            unanswered.append(f"{metric_type.value}: {NO_SOURCE}")
            measurements.append({"type": metric_type.value, "labels": None, "values": None})
            continue
        if labels is not None:
            # Measurements of one pool name it as a label (the reference MetricsResponse).
            found = [{**m, "labels": labels} for m in found]
            for measurement in found:
                measurement.pop("groups", None)
        measurements += found
    return _answer({"measurements": measurements}, unanswered)


def _unit_metrics(
    conn: Connection, kind: UnitKind, unit: dict, request: MetricsRequest, nodepool: str | None
) -> Response:
    window = request.window
    series = [f"Nodepool={nodepool}" if nodepool is not None else ""]
    # A unit is sampled with its cluster: the same instants as the cluster's figures.
    instants = sampled_instants(conn, unit["cluster_id"], window)
    key = (kind.value, unit["id"])
    measurements: list[dict] = []
    unanswered: list[str] = []
    for metric_type in request.types:
        if metric_type not in SAMPLED_UNIT_TYPES:
            unanswered.append(f"{metric_type.value}: {NO_SOURCE}")
            measurements.append({"type": metric_type.value, "labels": None, "values": None})
            continue
        points = mean_per_interval(conn, key, metric_type.value, series, window, instants)
        labels = None if nodepool is None else {"nodepool": nodepool}
        measurements.append(
            {"type": metric_type.value, "labels": labels, "values": _values(points, window)}
        )
    return _answer({"measurements": measurements}, unanswered)


@router.get(
    "/org-unit/projects/{projectId}/metrics",
    tags=["Projects"],
    summary="Get project metrics data.",
    description="The project's sampled quota and allocation over [start, end).",
    operation_id="get_project_metrics",
    response_model=MetricsCompositeResponse,
    responses=METRICS_RESPONSES,
)
def get_project_metrics(
    conn: Db, project: ProjectRow, request: UnitMetrics, nodepoolName: NodepoolParam = None
) -> Response:
    return _unit_metrics(conn, UnitKind.PROJECT, project, request, nodepoolName)


@router.get(
    "/org-unit/departments/{departmentId}/metrics",
    tags=["Departments"],
    summary="Get department metrics data.",
    description="The department's sampled quota and allocation over [start, end).",
    operation_id="get_department_metrics",
    response_model=MetricsCompositeResponse,
    responses=METRICS_RESPONSES,
)
def get_department_metrics(
    conn: Db, department: DepartmentRow, request: UnitMetrics, nodepoolName: NodepoolParam = None
) -> Response:
    return _unit_metrics(conn, UnitKind.DEPARTMENT, department, request, nodepoolName)


@router.get(
    "/clusters/{clusterUuid}/nodepools/{nodepoolName}/metrics",
    tags=["NodePools"],
    summary="Get the node pool metrics data.",
    description=(
        "The node pool's sampled figures over [start, end), as the cluster's for one pool: "
        "TOTAL_GPU_NODES, TOTAL_GPU, ALLOCATED_GPU, UNALLOCATED_GPU, GPU_QUOTA, "
        "WORKLOADS_COUNT, AVG_WORKLOAD_WAIT_TIME, and on the Prometheus backend utilisation. "
        "Reading them needs a rule on the tenant or on the cluster."
    ),
    operation_id="get_nodepool_metrics",
    response_model=MetricsCompositeResponse,
    responses=METRICS_RESPONSES,
)
def get_nodepool_metrics(
    scope: ReadScope,
    conn: Db,
    clusterUuid: ClusterUuidParam,
    nodepoolName: Annotated[str, Path(description="The node pool's name.", max_length=253)],
    request: ClusterMetrics,
) -> Response:
    cluster = get_cluster_or_404(conn, clusterUuid, scope)
    if not nodepool_named(conn, cluster.id, nodepoolName):
        raise NotFound(f"Node pool {nodepoolName} not found in cluster {cluster.id}.")
    # A pool's figures add up every project's in it, as the cluster's do.
    readable_cluster(conn, clusterUuid, scope, "Node pool metrics")
    labels = {"nodepool": nodepoolName}
    return _cluster_answer(conn, cluster.id, request, None, nodepoolName, labels)
