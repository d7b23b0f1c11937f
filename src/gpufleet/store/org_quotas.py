"""Quotas of projects and departments per node pool, from the scheduler's queues.

A unit's quota in a pool is that of the queues standing for it (``scheduler_queues.org_unit_*``)
from the most trusted source that has any: KAI over a Kueue ClusterQueue over the agent's quota
file (a Kueue LocalQueue carries none). Queues of one source standing for one unit add up; a
limit of -1 or NULL (none) on any of them leaves the sum without a limit.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gpufleet.store.org_figures import UnitKind
from gpufleet.store.tables import queue_quotas, scheduler_queues

Q, S = queue_quotas.c, scheduler_queues.c
_SOURCE_RANK = {"kai": 0, "kueue-clusterqueue": 1, "file": 2}
_RESOURCES = ("gpu", "cpu", "memory")


@dataclass(frozen=True, slots=True)
class PoolQuota:
    """One unit's quota in one node pool: GPUs (devices), CPU (millicores), memory (MB)."""

    gpu_deserved: float
    gpu_limit: float | None = None
    gpu_over_quota_weight: float | None = None
    cpu_deserved: float | None = None
    cpu_limit: float | None = None
    cpu_over_quota_weight: float | None = None
    memory_deserved: float | None = None
    memory_limit: float | None = None
    memory_over_quota_weight: float | None = None


def _rank(source: sa.ColumnElement[str]) -> sa.ColumnElement[int]:
    return sa.case(*((source == name, rank) for name, rank in _SOURCE_RANK.items()), else_=None)


def _trusted(kind: UnitKind) -> sa.Subquery:
    """The quota rows of the most trusted source of each unit of ``kind``."""
    ranked = (
        sa.select(
            S.org_unit_id.label("unit"),
            Q,
            _rank(S.source).label("rank"),
            sa.func.min(_rank(S.source)).over(partition_by=S.org_unit_id).label("best"),
        )
        .select_from(queue_quotas.join(scheduler_queues, S.id == Q.queue_id))
        .where(S.org_unit_type == kind.value, _rank(S.source).is_not(None))
        .subquery()
    )
    return sa.select(ranked).where(ranked.c.rank == ranked.c.best).subquery()


def _limit(column: sa.ColumnElement[float]) -> sa.ColumnElement[float]:
    unlimited = sa.func.min(sa.func.coalesce(column, -1.0)) < 0
    return sa.case((unlimited, None), else_=sa.func.sum(column))


def quota_statement(kind: UnitKind, unit_ids: Collection[str] | None = None) -> sa.Select:
    """Quota per (unit, node pool): ``unit``, ``nodepool`` and per resource ``<r>_deserved``,
    ``<r>_limit`` and ``<r>_over_quota_weight``; ``None`` ids mean every unit."""
    rows = _trusted(kind)
    columns = []
    for resource in _RESOURCES:
        columns += [
            sa.func.sum(rows.c[f"{resource}_deserved"]).label(f"{resource}_deserved"),
            _limit(rows.c[f"{resource}_limit"]).label(f"{resource}_limit"),
            sa.func.max(rows.c[f"{resource}_over_quota_weight"]).label(
                f"{resource}_over_quota_weight"
            ),
        ]
    statement = sa.select(rows.c.unit, rows.c.nodepool, *columns).group_by(
        rows.c.unit, rows.c.nodepool
    )
    if unit_ids is not None:
        statement = statement.where(rows.c.unit.in_(sorted(unit_ids)))
    return statement


def gpu_quota(kind: UnitKind, unit_id: sa.ColumnElement[str]) -> sa.ColumnElement[float]:
    """A correlated subquery: the unit's deserved GPUs over all node pools, NULL without a
    queue that gives it a quota."""
    rows = _trusted(kind)
    return (
        sa.select(sa.func.sum(rows.c.gpu_deserved)).where(rows.c.unit == unit_id).scalar_subquery()
    )


def unit_quotas(
    conn: Connection, kind: UnitKind, unit_ids: Collection[str]
) -> dict[str, dict[str, PoolQuota]]:
    """The quotas of each unit that has any, by node pool name."""
    found: dict[str, dict[str, PoolQuota]] = {}
    if not unit_ids:
        return found
    for row in conn.execute(quota_statement(kind, unit_ids)).mappings():
        values = {key: row[key] for key in PoolQuota.__slots__}
        values["gpu_deserved"] = float(values["gpu_deserved"] or 0.0)
        found.setdefault(row["unit"], {})[row["nodepool"]] = PoolQuota(**values)
    return found
