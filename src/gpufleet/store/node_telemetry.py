"""Node telemetry: capacity, allocation and use of the live nodes, summed per group, in SQL.

A node's allocation is what the pods bound to it hold while not finished
(``workload_pods.allocated_*``, summed per cluster and node name over the partial index of
holding pods). Free GPUs are a node's GPUs minus its allocation, so free and allocated always
add up to the total. Use (CPU, memory, GPU memory) is the latest sample of each workload
holding a pod on the node within the sample window, shared equally among its holding pods.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gpufleet.query.scope import WorkloadScope
from gpufleet.store.nodes import visible_cluster_ids
from gpufleet.store.tables import (
    POD_HOLDS,
    clusters,
    metric_samples,
    nodes,
    workload_pods,
    workloads,
)
from gpufleet.store.telemetry import TelemetryGroupRow, TelemetryValueRow

N, P, S, W = nodes.c, workload_pods.c, metric_samples.c, workloads.c


class NodeTelemetryType(StrEnum):
    READY_GPU_NODES = "READY_GPU_NODES"
    READY_GPUS = "READY_GPUS"
    TOTAL_GPU_NODES = "TOTAL_GPU_NODES"
    TOTAL_GPUS = "TOTAL_GPUS"
    IDLE_ALLOCATED_GPUS = "IDLE_ALLOCATED_GPUS"
    FREE_GPUS = "FREE_GPUS"
    ALLOCATED_GPUS = "ALLOCATED_GPUS"
    TOTAL_CPU_CORES = "TOTAL_CPU_CORES"
    USED_CPU_CORES = "USED_CPU_CORES"
    ALLOCATED_CPU_CORES = "ALLOCATED_CPU_CORES"
    TOTAL_GPU_MEMORY_BYTES = "TOTAL_GPU_MEMORY_BYTES"
    USED_GPU_MEMORY_BYTES = "USED_GPU_MEMORY_BYTES"
    TOTAL_CPU_MEMORY_BYTES = "TOTAL_CPU_MEMORY_BYTES"
    USED_CPU_MEMORY_BYTES = "USED_CPU_MEMORY_BYTES"
    ALLOCATED_CPU_MEMORY_BYTES = "ALLOCATED_CPU_MEMORY_BYTES"
    FULLY_FREE_GPU_NODES = "FULLY_FREE_GPU_NODES"


class NodeGroupBy(StrEnum):
    CLUSTER_ID = "ClusterId"
    NODEPOOL = "Nodepool"
    NODE = "Node"


# The workload sample each "used" type reads, and whether that type is reported per GPU
# (series "gpu=<index>", summed, or one total without labels) rather than as one total only.
# The kinds are the metric catalogue's (metrics/types.py); tests hold the two together.
_USED_SAMPLES = {
    NodeTelemetryType.USED_CPU_CORES: ("CPU_USAGE_CORES", False),
    NodeTelemetryType.USED_CPU_MEMORY_BYTES: ("CPU_MEMORY_USAGE_BYTES", False),
    NodeTelemetryType.USED_GPU_MEMORY_BYTES: ("GPU_MEMORY_USAGE_BYTES", True),
}
# Figures in bytes are whole bytes: a workload's use shared among its pods is not.
_WHOLE_BYTES = frozenset(
    {
        NodeTelemetryType.USED_CPU_MEMORY_BYTES,
        NodeTelemetryType.USED_GPU_MEMORY_BYTES,
        NodeTelemetryType.ALLOCATED_CPU_MEMORY_BYTES,
    }
)
_ALLOCATED = {
    NodeTelemetryType.ALLOCATED_GPUS: "gpu",
    NodeTelemetryType.ALLOCATED_CPU_CORES: "cpu",
    NodeTelemetryType.ALLOCATED_CPU_MEMORY_BYTES: "memory",
    NodeTelemetryType.IDLE_ALLOCATED_GPUS: "idle_gpu",
}


@dataclass(frozen=True, slots=True)
class NodeTelemetryQuery:
    type: NodeTelemetryType
    scope: WorkloadScope
    group_by: tuple[NodeGroupBy, ...] = ()
    cluster_id: str | None = None
    nodepool: str | None = None
    # Samples older than this are not "current use".
    sample_window: timedelta = timedelta(minutes=5)


_HELD = {
    "gpu": P.allocated_gpu,
    "cpu": P.allocated_cpu_cores,
    "memory": P.allocated_memory_bytes,
}


def node_allocation(figure: str) -> sa.Subquery:
    """What the live pods hold per (cluster, node name): one ``figure`` of ``gpu``, ``cpu``,
    ``memory``, or ``idle_gpu`` (the share of their GPUs their workload reports idle).

    Only the one sum is computed: over the holding pods of a large fleet, each further sum
    costs as much as the first.
    """
    source: Any = workload_pods
    if figure == "idle_gpu":
        share = sa.func.coalesce(W.idle_allocated_gpus, 0.0) / sa.func.nullif(W.allocated_gpu, 0.0)
        held: Any = P.allocated_gpu * sa.func.coalesce(share, 0.0)
        source = workload_pods.join(workloads, W.id == P.workload_id)
    else:
        held = _HELD[figure]
    return (
        sa.select(P.cluster_id, P.node_name, sa.func.sum(held).label(figure))
        .select_from(source)
        .where(POD_HOLDS)
        .group_by(P.cluster_id, P.node_name)
        .subquery("allocation")
    )


def _node_use(metric_type: str, per_gpu: bool, since_ms: int) -> sa.Subquery:
    """Each node's share of the latest sample of the workloads holding pods on it. A type
    reported per GPU counts the workload's total at its latest time when it was reported
    without labels, else the sum of its GPUs' samples at that time."""

    def reported(table: Any) -> sa.ColumnElement[bool]:
        if per_gpu:
            return sa.or_(table.c.series == "", table.c.series.like("gpu=%"))
        return table.c.series == ""

    holders = (
        sa.select(P.workload_id, sa.func.count().label("pods"))
        .where(POD_HOLDS)
        .group_by(P.workload_id)
        .subquery("holders")
    )
    # The latest time once per holding workload, over its rows of the type since the window's
    # start (its primary key's range): a time looked up again for every sample made a type
    # reported per GPU cost seconds on a demo's day of samples.
    latest_time = (
        sa.select(S.workload_id, sa.func.max(S.ts_ms).label("ts_ms"))
        .where(
            S.workload_id.in_(sa.select(holders.c.workload_id)),
            S.metric_type == metric_type,
            reported(metric_samples),
            S.ts_ms >= since_ms,
        )
        .group_by(S.workload_id)
        .subquery("latest_time")
    )
    total = sa.func.coalesce(
        sa.func.max(sa.case((S.series == "", S.value))),
        sa.func.sum(sa.case((S.series != "", S.value))),
    )
    at_latest = sa.and_(S.workload_id == latest_time.c.workload_id, S.ts_ms == latest_time.c.ts_ms)
    latest = (
        sa.select(S.workload_id, total.label("value"))
        .select_from(latest_time.join(metric_samples, at_latest))
        .where(S.metric_type == metric_type, reported(metric_samples))
        .group_by(S.workload_id)
        .subquery("latest")
    )
    return (
        sa.select(
            P.cluster_id, P.node_name, sa.func.sum(latest.c.value / holders.c.pods).label("used")
        )
        .select_from(
            workload_pods.join(latest, latest.c.workload_id == P.workload_id).join(
                holders, holders.c.workload_id == P.workload_id
            )
        )
        .where(POD_HOLDS)
        .group_by(P.cluster_id, P.node_name)
        .subquery("used")
    )


def _value(kind: NodeTelemetryType, figures: Any) -> sa.ColumnElement[Any]:
    """The per-node expression whose sum is the telemetry value."""
    gpu_node = N.gpu_count > 0
    ready = sa.and_(gpu_node, N.status == "Ready", sa.not_(N.unschedulable))
    one, zero = sa.literal(1), sa.literal(0)
    has_gpu = figures is not None and "gpu" in figures.c
    allocated = sa.func.coalesce(figures.c.gpu, 0.0) if has_gpu else None
    match kind:
        case NodeTelemetryType.TOTAL_GPU_NODES:
            return sa.case((gpu_node, one), else_=zero)
        case NodeTelemetryType.READY_GPU_NODES:
            return sa.case((ready, one), else_=zero)
        case NodeTelemetryType.TOTAL_GPUS:
            return N.gpu_count
        case NodeTelemetryType.READY_GPUS:
            return sa.case((ready, N.gpu_count), else_=zero)
        case NodeTelemetryType.FREE_GPUS:
            return N.gpu_count - allocated
        case NodeTelemetryType.FULLY_FREE_GPU_NODES:
            return sa.case((sa.and_(ready, allocated == 0), one), else_=zero)
        case NodeTelemetryType.TOTAL_CPU_CORES:
            return N.cpu_cores
        case NodeTelemetryType.TOTAL_CPU_MEMORY_BYTES:
            return N.memory_bytes
        case NodeTelemetryType.TOTAL_GPU_MEMORY_BYTES:
            return N.gpu_count * sa.func.coalesce(N.gpu_memory_bytes, 0)
    column = _ALLOCATED.get(kind, "used")
    return sa.func.coalesce(figures.c[column], 0.0)


def _figures(kind: NodeTelemetryType, query: NodeTelemetryQuery, now: datetime) -> Any:
    if kind in _USED_SAMPLES:
        since = int((now - query.sample_window).timestamp() * 1000)
        return _node_use(*_USED_SAMPLES[kind], since)
    if kind in _ALLOCATED:
        return node_allocation(_ALLOCATED[kind])
    if kind in (NodeTelemetryType.FREE_GPUS, NodeTelemetryType.FULLY_FREE_GPU_NODES):
        return node_allocation("gpu")
    return None


def _group_columns(group: NodeGroupBy) -> tuple[sa.ColumnElement[Any], Any]:
    match group:
        case NodeGroupBy.CLUSTER_ID:
            return N.cluster_id, clusters.c.name
        case NodeGroupBy.NODEPOOL:
            return N.nodepool, None
        case NodeGroupBy.NODE:
            return N.name, None
    raise AssertionError(group)  # pragma: no cover - the enum is exhaustive


def node_telemetry(
    conn: Connection, query: NodeTelemetryQuery, now: datetime
) -> list[TelemetryValueRow]:
    """One value per group (one overall without groupBy), groups in order."""
    rows = conn.execute(node_telemetry_statement(query, now)).all()
    return [_value_row(query.group_by, row) for row in rows]


def node_telemetry_statement(query: NodeTelemetryQuery, now: datetime) -> sa.Select:
    """The statement of ``node_telemetry``: the group's keys, then the value."""
    figures = _figures(query.type, query, now)
    source: Any = nodes
    if figures is not None:
        source = source.outerjoin(
            figures, sa.and_(figures.c.cluster_id == N.cluster_id, figures.c.node_name == N.name)
        )
    if NodeGroupBy.CLUSTER_ID in query.group_by:
        source = source.outerjoin(clusters, clusters.c.id == N.cluster_id)
    conditions = [N.deleted_at.is_(None)]
    if query.cluster_id is not None:
        conditions.append(N.cluster_id == query.cluster_id)
    if query.nodepool is not None:
        conditions.append(N.nodepool == query.nodepool)
    visible = visible_cluster_ids(query.scope)
    if visible is not None:
        conditions.append(N.cluster_id.in_(visible))
    keys: list[Any] = []
    for group in query.group_by:
        value, name = _group_columns(group)
        keys.append(value)
        if name is not None:
            keys.append(name)
    total = sa.func.coalesce(sa.func.sum(_value(query.type, figures)), 0)
    if query.type in _WHOLE_BYTES:
        total = sa.func.round(total)
    statement = sa.select(*keys, total).select_from(source).where(*conditions)
    if keys:
        statement = statement.group_by(*keys).order_by(*keys)
    return statement


def _value_row(group_by: tuple[NodeGroupBy, ...], row: Any) -> TelemetryValueRow:
    groups: list[TelemetryGroupRow] = []
    position = 0
    for group in group_by:
        if group is NodeGroupBy.CLUSTER_ID:
            groups.append(TelemetryGroupRow(group.value, str(row[position]), row[position + 1]))
            position += 2
        else:
            groups.append(TelemetryGroupRow(group.value, str(row[position])))
            position += 1
    return TelemetryValueRow(float(row[position]), tuple(groups))
