"""Reading the ledger: usage over a window of hours, grouped, in one statement.

The rollups carry their cluster, department, project, submitter, type and node pool, so a
grouped answer aggregates ``usage_hourly`` alone over the window's index range; only the few
result groups are joined to the organisation tables for their names. The caller's scope is a
condition on the same columns, as for workloads.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gpufleet.query.usage import (
    HOUR_MS,
    UsageFigures,
    UsageFilterField,
    UsageGroup,
    UsageGroupBy,
    UsageQuery,
    UsageRow,
)
from gpufleet.store.tables import clusters, departments, projects, usage_hourly
from gpufleet.store.workload_filters import scope_condition

H = usage_hourly.c
_SECONDS_PER_HOUR = 3600.0
_KEY_COLUMNS = {
    UsageGroupBy.CLUSTER: H.cluster_id,
    UsageGroupBy.NODEPOOL: H.nodepool,
    UsageGroupBy.DEPARTMENT: H.department_id,
    UsageGroupBy.PROJECT: H.project_id,
    UsageGroupBy.SUBMITTER: H.submitter,
    UsageGroupBy.TYPE: H.type,
}
_NAME_TABLES = {
    UsageGroupBy.CLUSTER: clusters,
    UsageGroupBy.DEPARTMENT: departments,
    UsageGroupBy.PROJECT: projects,
}


def _sums() -> list[sa.ColumnElement[Any]]:
    # Unmeasured hours (NULL utilisation) count as allocated, neither used nor idle.
    return [
        sa.func.sum(H.gpu_seconds).label("gpu"),
        sa.func.sum(H.gpu_seconds * sa.func.coalesce(H.gpu_utilisation, 0.0) / 100.0).label("used"),
        sa.func.sum(H.gpu_seconds * sa.func.coalesce(H.idle_share, 0.0)).label("idle"),
        sa.func.sum(H.cpu_core_seconds).label("cpu"),
        sa.func.sum(H.memory_gib_seconds).label("memory"),
        sa.func.sum(H.pending_seconds).label("pending"),
    ]


def _filter_condition(field: UsageFilterField, value: str) -> sa.ColumnElement[bool]:
    match field:
        case UsageFilterField.CLUSTER_ID:
            return H.cluster_id == value
        case UsageFilterField.PROJECT_ID:
            return H.project_id == value
        case UsageFilterField.DEPARTMENT_ID:
            return H.department_id == value
        case UsageFilterField.PROJECT_NAME:
            named = sa.select(projects.c.id).where(projects.c.name == value)
            return H.project_id.in_(named)
        case UsageFilterField.DEPARTMENT_NAME:
            named = sa.select(departments.c.id).where(departments.c.name == value)
            return H.department_id.in_(named)
    raise AssertionError(field)  # pragma: no cover - the enum is exhaustive


def usage_statement(query: UsageQuery) -> sa.Select:
    """The one SELECT a usage question runs: aggregate the window, then name the groups."""
    window = query.window
    conditions = [H.hour_ms >= window.start_ms, H.hour_ms < window.end_ms]
    if not query.scope.everything:
        conditions.append(scope_condition(query.scope, usage_hourly))
    conditions.extend(_filter_condition(f, v) for f, v in query.filters)
    keys = [_KEY_COLUMNS[g].label(f"g{i}") for i, g in enumerate(query.group_by)]
    if query.bucket is not None:
        # Buckets first, so a series reads in time order; an hour is its own bucket.
        start = H.hour_ms if query.bucket.ms == HOUR_MS else H.hour_ms - H.hour_ms % query.bucket.ms
        keys.insert(0, start.label("bucket_ms"))
    totals = sa.select(*keys, *_sums()).where(*conditions)
    if keys:
        totals = totals.group_by(*keys)
    inner = totals.subquery("totals")
    source: sa.FromClause = inner
    names = []
    for index, group in enumerate(query.group_by):
        table = _NAME_TABLES.get(group)
        if table is None:
            continue
        named = table.alias(f"n{index}")
        source = source.outerjoin(named, named.c.id == inner.c[f"g{index}"])
        names.append(named.c.name.label(f"name{index}"))
    order = [inner.c[k.name] for k in keys]
    return sa.select(inner, *names).select_from(source).order_by(*order)


def usage(conn: Connection, query: UsageQuery) -> list[UsageRow]:
    """The figures of each group (one row, all zeros, when nothing is grouped and none exist)."""
    rows = conn.execute(usage_statement(query)).mappings().all()
    answer = [_row(query, row) for row in rows if row["gpu"] is not None]
    if not answer and not query.group_by and query.bucket is None:
        return [UsageRow((), UsageFigures())]
    return answer


def _hours(seconds: float) -> float:
    # A rollup is a sum of differences (a late observation takes back what was added), so a
    # stretch wholly taken back can leave a float residue such as -5e-12 s; no figure is below
    # zero, and the residue (or a -0.0) must not read as -0.0 once rounded.
    return max(0.0, seconds / _SECONDS_PER_HOUR)


def _row(query: UsageQuery, row: Any) -> UsageRow:
    groups = []
    for index, group in enumerate(query.group_by):
        value = str(row[f"g{index}"])
        # Node pools, submitters and types are their own names; an unknown unit shows its id.
        groups.append(UsageGroup(group, value, row.get(f"name{index}") or value))
    figures = UsageFigures(
        allocated_gpu_hours=_hours(row["gpu"]),
        used_gpu_hours=_hours(row["used"]),
        idle_gpu_hours=_hours(row["idle"]),
        cpu_core_hours=_hours(row["cpu"]),
        memory_gib_hours=_hours(row["memory"]),
        pending_workload_hours=_hours(row["pending"]),
    )
    bucket = row.get("bucket_ms")
    return UsageRow(tuple(groups), figures, None if bucket is None else int(bucket))
