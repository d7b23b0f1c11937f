"""Workload telemetry: one GROUP BY over the same selection list and count use.

Workloads are chosen by ``selection_conditions`` (deleted ones excluded, the caller's scope,
the cluster/department/node-pool filters as ordinary filter terms) plus a phase list; the
database groups and aggregates, Python only formats the few result rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gpufleet.core.times import to_ms
from gpufleet.query.listing import WorkloadSelection
from gpufleet.schemas.enums import NOT_ASKING_PHASES, Phase
from gpufleet.store.dialect import epoch_ms, indexed_by
from gpufleet.store.tables import clusters, workload_nodepools, workloads
from gpufleet.store.workload_filters import row_key, selection_parts

W = workloads.c


class TelemetryType(StrEnum):
    WORKLOADS_COUNT = "WORKLOADS_COUNT"
    GPU_ALLOCATION = "GPU_ALLOCATION"
    PENDING_TIME_DISTRIBUTION = "PENDING_TIME_DISTRIBUTION"
    # Not in the reference enum; its TelemetryResponse example shows it. 100 x allocated/requested.
    ALLOCATION_RATIO = "ALLOCATION_RATIO"


class TelemetryGroupBy(StrEnum):
    CLUSTER_ID = "ClusterId"
    DEPARTMENT_ID = "DepartmentId"
    PROJECT_ID = "ProjectId"
    TYPE = "Type"
    CURRENT_NODEPOOLS = "CurrentNodepools"
    PHASE = "Phase"
    CATEGORY = "Category"


# Pending-time buckets: (group value, upper bound in seconds); the last is open-ended.
PENDING_TIME_KEY = "PendingTime"
PENDING_TIME_BUCKETS: tuple[tuple[str, int | None], ...] = (
    ("0-15m", 15 * 60),
    ("15m-1h", 3600),
    ("1h-24h", 24 * 3600),
    ("24h+", None),
)


@dataclass(frozen=True, slots=True)
class TelemetryQuery:
    type: TelemetryType
    selection: WorkloadSelection
    group_by: tuple[TelemetryGroupBy, ...] = ()
    phases: tuple[Phase, ...] = ()


@dataclass(frozen=True, slots=True)
class TelemetryGroupRow:
    key: str
    value: str
    name: str | None = None


@dataclass(frozen=True, slots=True)
class TelemetryValueRow:
    value: float
    groups: tuple[TelemetryGroupRow, ...] = ()


def _group_columns(group: TelemetryGroupBy) -> tuple[sa.ColumnElement, Any]:
    """(value expression, name expression or None) of one groupBy."""
    match group:
        case TelemetryGroupBy.CLUSTER_ID:
            return W.cluster_id, sa.func.max(clusters.c.name)
        case TelemetryGroupBy.DEPARTMENT_ID:
            return W.department_id, sa.func.max(W.department_name)
        case TelemetryGroupBy.PROJECT_ID:
            return W.project_id, sa.func.max(W.project_name)
        case TelemetryGroupBy.TYPE:
            return W.type, None
        case TelemetryGroupBy.CURRENT_NODEPOOLS:
            # A workload with no current node pool (pending, finished) groups under "".
            return sa.func.coalesce(workload_nodepools.c.nodepool, ""), None
        case TelemetryGroupBy.PHASE:
            return W.phase, None
        case TelemetryGroupBy.CATEGORY:
            return W.category, None
    raise AssertionError(group)  # pragma: no cover - the enum is exhaustive


def _pending_bucket(dialect: str, now: int) -> sa.ColumnElement[int]:
    waited_ms = sa.literal(now, sa.BigInteger) - epoch_ms(dialect, W.phase_updated_at)
    whens = [
        (waited_ms < bound * 1000, index)
        for index, (_, bound) in enumerate(PENDING_TIME_BUCKETS)
        if bound is not None
    ]
    return sa.case(*whens, else_=len(PENDING_TIME_BUCKETS) - 1)


def _aggregates(kind: TelemetryType) -> list[sa.ColumnElement]:
    if kind is TelemetryType.GPU_ALLOCATION:
        return [sa.func.coalesce(sa.func.sum(W.allocated_gpu), 0.0).label("allocated")]
    if kind is TelemetryType.ALLOCATION_RATIO:
        return [
            sa.func.coalesce(sa.func.sum(W.allocated_gpu), 0.0).label("allocated"),
            sa.func.coalesce(sa.func.sum(W.requested_gpu), 0.0).label("requested"),
        ]
    return [sa.func.count().label("workloads")]


def workload_telemetry(conn: Connection, query: TelemetryQuery) -> list[TelemetryValueRow]:
    """The telemetry values of a query, in a stable order (groups ascending)."""
    rows = conn.execute(telemetry_statement(conn.dialect.name, query)).mappings().all()
    return _values(query, rows)


# Workloads that ask for no GPUs now (finished, or stopped by their owner): left out of the
# allocation ratio unless the query names its phases, so their requests do not read as unmet.
_NOT_ASKING = sorted(phase.value for phase in NOT_ASKING_PHASES)


def telemetry_statement(dialect: str, query: TelemetryQuery) -> sa.Select:
    """The one SELECT … GROUP BY a telemetry query runs."""
    conditions = _selected(dialect, query.selection)
    if query.phases:
        conditions.append(W.phase.in_(sorted(p.value for p in query.phases)))
    elif query.type is TelemetryType.ALLOCATION_RATIO:
        conditions.append(W.phase.not_in(_NOT_ASKING))
    pending = query.type is TelemetryType.PENDING_TIME_DISTRIBUTION
    if pending:
        conditions.append(W.phase == Phase.PENDING.value)

    source: sa.FromClause = workloads
    if TelemetryGroupBy.CURRENT_NODEPOOLS in query.group_by:
        source = source.outerjoin(workload_nodepools, workload_nodepools.c.workload_id == W.id)
    if TelemetryGroupBy.CLUSTER_ID in query.group_by:
        source = source.outerjoin(clusters, clusters.c.id == W.cluster_id)

    keys: list[sa.ColumnElement] = []
    names: list[Any] = []
    for index, group in enumerate(query.group_by):
        value, name = _group_columns(group)
        keys.append(value.label(f"g{index}"))
        names.append(None if name is None else name.label(f"n{index}"))
    if pending:
        keys.append(_pending_bucket(dialect, to_ms(query.selection.now)).label("bucket"))
    columns = [*keys, *(n for n in names if n is not None), *_aggregates(query.type)]
    statement = sa.select(*columns).select_from(source).where(*conditions)
    if keys:
        statement = statement.group_by(*keys).order_by(*keys)
    return statement


def _selected(dialect: str, selection: WorkloadSelection) -> list[sa.ColumnElement[bool]]:
    """The selection's WHERE; one split into parts (a range on a total) takes the keys each
    part finds through its own index (which holds them: the walk reads no rows)."""
    parts = selection_parts(dialect, selection)
    if len(parts) == 1:
        return parts[0].conditions
    key = row_key(dialect)
    found = []
    for part in parts:
        keys = sa.select(key).where(*part.conditions).correlate(None)
        found.append(
            keys if part.index is None else indexed_by(dialect, keys, workloads, part.index)
        )
    return [key.in_(sa.union_all(*found))]


def _groups(query: TelemetryQuery, row) -> tuple[TelemetryGroupRow, ...]:
    groups = []
    for index, group in enumerate(query.group_by):
        name = row.get(f"n{index}")
        groups.append(TelemetryGroupRow(group.value, str(row[f"g{index}"]), name))
    return tuple(groups)


def _values(query: TelemetryQuery, rows: Sequence) -> list[TelemetryValueRow]:
    match query.type:
        case TelemetryType.WORKLOADS_COUNT:
            if not query.group_by and not rows:
                return [TelemetryValueRow(0.0)]
            return [TelemetryValueRow(float(r["workloads"]), _groups(query, r)) for r in rows]
        case TelemetryType.GPU_ALLOCATION:
            if not query.group_by and not rows:
                return [TelemetryValueRow(0.0)]
            return [TelemetryValueRow(float(r["allocated"]), _groups(query, r)) for r in rows]
        case TelemetryType.ALLOCATION_RATIO:
            # Groups that requested no GPUs have no ratio and are left out.
            return [
                TelemetryValueRow(100.0 * r["allocated"] / r["requested"], _groups(query, r))
                for r in rows
                if r["requested"] and r["requested"] > 0
            ]
        case TelemetryType.PENDING_TIME_DISTRIBUTION:
            return _pending_values(query, rows)
    raise AssertionError(query.type)  # pragma: no cover - the enum is exhaustive


def _pending_values(query: TelemetryQuery, rows: Sequence) -> list[TelemetryValueRow]:
    """Every bucket for every group that has pending workloads, zeros included."""
    counts: dict[tuple[TelemetryGroupRow, ...], dict[int, int]] = {}
    for row in rows:
        counts.setdefault(_groups(query, row), {})[int(row["bucket"])] = int(row["workloads"])
    if not query.group_by and not counts:
        counts[()] = {}
    values = []
    for groups, per_bucket in counts.items():
        for index, (label, _) in enumerate(PENDING_TIME_BUCKETS):
            bucket = TelemetryGroupRow(PENDING_TIME_KEY, label)
            values.append(TelemetryValueRow(float(per_bucket.get(index, 0)), (bucket, *groups)))
    return values
