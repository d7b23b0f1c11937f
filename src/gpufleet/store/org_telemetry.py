"""Project and department telemetry: quota and allocation as of now, grouped.

The database gives one figure per unit and node pool (allocation from the units' workloads,
quota from their queues), for the units in the caller's scope and the request's cluster and
department; grouping those few rows by cluster, department or node pool happens here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gpufleet.query.scope import WorkloadScope
from gpufleet.schemas.org_units import OrgUnitTelemetryType as TT
from gpufleet.store.node_ingest import nodepool_id
from gpufleet.store.org_figures import UnitKind, held_statement, usage_statement
from gpufleet.store.org_quotas import quota_statement
from gpufleet.store.org_units import scope_condition
from gpufleet.store.tables import clusters, departments, projects
from gpufleet.store.telemetry import TelemetryGroupRow, TelemetryValueRow

# The statement and figure each telemetry type reads: allocation from the units' workloads
# (GPUs) or their pods (CPU millicores, memory MB), quota from their queues.
FIGURES: dict[TT, tuple[Callable[[UnitKind], sa.Select], str]] = {
    TT.GPU_ALLOCATION: (usage_statement, "allocated"),
    TT.GPU_ALLOCATION_NON_PREEMPTIBLE: (usage_statement, "non_preemptible"),
    TT.CPU_ALLOCATION: (held_statement, "cpu"),
    TT.CPU_ALLOCATION_NON_PREEMPTIBLE: (held_statement, "cpu_non_preemptible"),
    TT.MEMORY_ALLOCATION: (held_statement, "memory"),
    TT.MEMORY_ALLOCATION_NON_PREEMPTIBLE: (held_statement, "memory_non_preemptible"),
    TT.GPU_QUOTA: (quota_statement, "gpu_deserved"),
    TT.CPU_QUOTA: (quota_statement, "cpu_deserved"),
    TT.MEMORY_QUOTA: (quota_statement, "memory_deserved"),
}


class GroupKey(NamedTuple):
    key: str
    # Which of the figure's attributes hold the group's value and name.
    value: str
    name: str


CLUSTER = GroupKey("ClusterId", "cluster_id", "cluster_name")
PARENT = GroupKey("ParentId", "department_id", "department_name")
NODEPOOL = GroupKey("NodepoolId", "nodepool_id", "nodepool")


@dataclass(frozen=True, slots=True)
class OrgTelemetryQuery:
    kind: UnitKind
    type: TT
    scope: WorkloadScope
    cluster_id: str | None = None
    department_id: str | None = None
    nodepool_id: str | None = None
    nodepool: str | None = None
    group_by: tuple[GroupKey, ...] = ()


@dataclass(frozen=True, slots=True)
class PoolFigure:
    cluster_id: str
    cluster_name: str | None
    department_id: str
    department_name: str | None
    nodepool: str | None
    value: float

    @property
    def nodepool_id(self) -> str | None:
        return None if self.nodepool is None else nodepool_id(self.cluster_id, self.nodepool)


def _figures(conn: Connection, query: OrgTelemetryQuery) -> list[PoolFigure]:
    statement_of, column = FIGURES[query.type]
    per_pool = statement_of(query.kind).subquery()
    figure = per_pool.c[column]
    if query.kind is UnitKind.PROJECT:
        unit = projects
        department_id, department_name = unit.c.department_id, departments.c.name
        source = per_pool.join(unit, unit.c.id == per_pool.c.unit).outerjoin(
            departments, departments.c.id == department_id
        )
    else:
        unit = departments
        department_id, department_name = unit.c.id, unit.c.name
        source = per_pool.join(unit, unit.c.id == per_pool.c.unit)
    source = source.outerjoin(clusters, clusters.c.id == unit.c.cluster_id)
    statement = (
        sa.select(
            unit.c.cluster_id,
            clusters.c.name,
            department_id,
            department_name,
            per_pool.c.nodepool,
            figure,
        )
        .select_from(source)
        .where(scope_condition(query.kind, query.scope), figure.is_not(None))
    )
    if query.cluster_id is not None:
        statement = statement.where(unit.c.cluster_id == query.cluster_id)
    if query.department_id is not None:
        statement = statement.where(department_id == query.department_id)
    if query.nodepool is not None:
        statement = statement.where(per_pool.c.nodepool == query.nodepool)
    figures = [PoolFigure(*row[:5], float(row[5])) for row in conn.execute(statement)]
    if query.nodepool_id is not None:
        figures = [f for f in figures if f.nodepool_id == query.nodepool_id]
    return figures


def org_unit_telemetry(conn: Connection, query: OrgTelemetryQuery) -> list[TelemetryValueRow]:
    """The telemetry values of a query: one total, or one value per group (sorted)."""
    figures = _figures(conn, query)
    if not query.group_by:
        return [TelemetryValueRow(sum(f.value for f in figures))]
    if NODEPOOL in query.group_by:
        # Allocation outside any node pool (a pending workload) has no pool to be grouped in.
        figures = [f for f in figures if f.nodepool is not None]
    return _grouped(figures, query.group_by)


def _grouped(figures: Iterable[PoolFigure], keys: tuple[GroupKey, ...]) -> list[TelemetryValueRow]:
    totals: dict[tuple[str, ...], float] = {}
    names: dict[tuple[str, ...], tuple[str | None, ...]] = {}
    for figure in figures:
        group = tuple(str(getattr(figure, key.value)) for key in keys)
        totals[group] = totals.get(group, 0.0) + figure.value
        names[group] = tuple(getattr(figure, key.name) for key in keys)
    return [
        TelemetryValueRow(
            totals[group],
            tuple(
                TelemetryGroupRow(key.key, value, name)
                for key, value, name in zip(keys, group, names[group], strict=True)
            ),
        )
        for group in sorted(totals)
    ]
