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
        case UsageFilterField.NODEPOOL:
            # The rollup's own column (a workload in two pools holds its share in each): the
            # window stays one range of the primary key, the pool a test of the rows it reads.
            return H.nodepool == value
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
        case UsageFilterField.CLUSTER_NAME:
            named = sa.select(clusters.c.id).where(clusters.c.name == value)
            return H.cluster_id.in_(named)
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
    result = conn.execute(usage_statement(query))
    read = _RowReader(query, list(result.keys()))
    answer = [read(row) for row in result.all() if row[read.gpu] is not None]
    if not answer and not query.group_by and query.bucket is None:
        return [UsageRow((), UsageFigures())]
    return answer


class _RowReader:
    """A result row as a ``UsageRow``, its columns looked up by position once per answer (an
    hourly answer over a month holds tens of thousands of rows)."""

    def __init__(self, query: UsageQuery, columns: list[str]) -> None:
        at = {name: position for position, name in enumerate(columns)}
        self.gpu = at["gpu"]
        # (key, value column, name column or None): node pools, submitters and types are their
        # own names; an unknown unit shows its id.
        self._groups = [
            (group, at[f"g{index}"], at.get(f"name{index}"))
            for index, group in enumerate(query.group_by)
        ]
        self._figures = [at[name] for name in ("gpu", "used", "idle", "cpu", "memory", "pending")]
        self._bucket = at.get("bucket_ms")
        self._seen: dict[tuple, tuple[UsageGroup, ...]] = {}

    def __call__(self, row: Any) -> UsageRow:
        # A rollup is a sum of differences (a late observation takes back what was added), so
        # a stretch wholly taken back can leave a float residue such as -5e-12 s; no figure is
        # below zero, and the residue (or a -0.0) must not read as -0.0 once rounded.
        figures = UsageFigures(*[max(0.0, row[at] / _SECONDS_PER_HOUR) for at in self._figures])
        bucket = None if self._bucket is None else int(row[self._bucket])
        return UsageRow(self._group_tuple(row), figures, bucket)

    def _group_tuple(self, row: Any) -> tuple[UsageGroup, ...]:
        # Groups repeat from bucket to bucket: each is built once and shared by its rows.
        raw = tuple(
            (row[value_at], None if name_at is None else row[name_at])
            for _, value_at, name_at in self._groups
        )
        groups = self._seen.get(raw)
        if groups is None:
            groups = tuple(
                UsageGroup(group, str(value), name or str(value))
                for (group, _, _), (value, name) in zip(self._groups, raw, strict=True)
            )
            self._seen[raw] = groups
        return groups
