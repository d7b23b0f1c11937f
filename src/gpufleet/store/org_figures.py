"""Allocation and quota of projects and departments, per node pool, in SQL.

Allocation comes from the unit's live workloads, the same rows workload telemetry adds up: a
workload's allocated GPUs count in full for its project and department, and are shared equally
among its current node pools (a workload in none counts for no pool). Non-preemptible
allocation is that of workloads whose priority is at or above ``PREEMPTIBLE_BELOW``.

Requested is what the unit's running and waiting workloads ask for, as a KAI queue's
``status.requested`` is (the resources of its running and pending jobs): the live workloads
not in a phase of ``NOT_ASKING_PHASES`` (finished, or stopped by their owner). Every such
workload is requested in some node pool, so the pools add up to the unit: its current pools,
shared equally; when it runs in none yet (pending), the first pool it asks for; when it asks
for none, the default pool, where the scheduler places a workload without a pool label.

CPU and memory allocation is what the unit's live pods hold on their nodes (see the nodes'
allocation in docs/inventory.md), in the quotas' units: millicores and MB (10^6 bytes), per the
node pool of the pod's node.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gpufleet.core.priorities import PREEMPTIBLE_BELOW
from gpufleet.schemas.enums import NOT_ASKING_PHASES
from gpufleet.store.node_ingest import DEFAULT_NODEPOOL
from gpufleet.store.tables import nodes, workload_nodepools, workload_pods, workloads

W, N, POD = workloads.c, nodes.c, workload_pods.c


class UnitKind(StrEnum):
    PROJECT = "project"
    DEPARTMENT = "department"


@dataclass(slots=True)
class Usage:
    """GPUs allocated, allocated to non-preemptible workloads, and requested."""

    allocated: float = 0.0
    non_preemptible: float = 0.0
    requested: float = 0.0

    def add(self, other: Usage) -> None:
        self.allocated += other.allocated
        self.non_preemptible += other.non_preemptible
        self.requested += other.requested


@dataclass(slots=True)
class UnitUsage:
    """A unit's usage in total and per node pool (by pool name)."""

    total: Usage = field(default_factory=Usage)
    pools: dict[str, Usage] = field(default_factory=dict)


def unit_column(kind: UnitKind) -> sa.ColumnElement[str]:
    """The workload column naming a unit of this kind."""
    return W.project_id if kind is UnitKind.PROJECT else W.department_id


def allocated_gpus(kind: UnitKind, unit_id: sa.ColumnElement[str]) -> sa.ScalarSelect:
    """A correlated subquery: GPUs allocated to the unit's live workloads."""
    return (
        sa.select(sa.func.coalesce(sa.func.sum(W.allocated_gpu), 0.0))
        .where(unit_column(kind) == unit_id, W.deleted_at.is_(None))
        .scalar_subquery()
    )


def _current_pools() -> sa.Subquery:
    """Each workload's current node pools, with how many it has."""
    return sa.select(
        workload_nodepools.c.workload_id,
        workload_nodepools.c.nodepool,
        sa.func.count().over(partition_by=workload_nodepools.c.workload_id).label("pools"),
    ).subquery()


def _of_units(statement: sa.Select, kind: UnitKind, unit_ids: Collection[str] | None) -> sa.Select:
    if unit_ids is None:
        return statement
    return statement.where(unit_column(kind).in_(sorted(unit_ids)))


def usage_statement(kind: UnitKind, unit_ids: Collection[str] | None = None) -> sa.Select:
    """Allocation per (unit, node pool); ``None`` ids mean every unit. The pool is NULL for a
    workload in no node pool."""
    pools = _current_pools()
    share = sa.func.coalesce(pools.c.pools, 1)
    unit = unit_column(kind).label("unit")
    non_preemptible = sa.case((W.priority >= PREEMPTIBLE_BELOW, W.allocated_gpu), else_=0.0)
    statement = (
        sa.select(
            unit,
            pools.c.nodepool,
            sa.func.sum(W.allocated_gpu / share).label("allocated"),
            sa.func.sum(non_preemptible / share).label("non_preemptible"),
        )
        .select_from(workloads.outerjoin(pools, pools.c.workload_id == W.id))
        .where(W.deleted_at.is_(None))
        .group_by(unit, pools.c.nodepool)
    )
    return _of_units(statement, kind, unit_ids)


def requested_statement(kind: UnitKind, unit_ids: Collection[str] | None = None) -> sa.Select:
    """GPUs requested per (unit, node pool), every workload's in a pool (see the module's
    docstring); ``None`` ids mean every unit."""
    pools = _current_pools()
    share = sa.func.coalesce(pools.c.pools, 1)
    unit = unit_column(kind).label("unit")
    pool = sa.func.coalesce(pools.c.nodepool, W.requested_nodepool, DEFAULT_NODEPOOL)
    pool = pool.label("nodepool")
    asking = W.phase.not_in(sorted(p.value for p in NOT_ASKING_PHASES))
    statement = (
        sa.select(unit, pool, sa.func.sum(W.requested_gpu / share).label("requested"))
        .select_from(workloads.outerjoin(pools, pools.c.workload_id == W.id))
        .where(W.deleted_at.is_(None), asking)
        .group_by(unit, pool)
    )
    return _of_units(statement, kind, unit_ids)


def _add(entry: UnitUsage, pool: str | None, usage: Usage) -> None:
    entry.total.add(usage)
    if pool is not None:
        entry.pools.setdefault(pool, Usage()).add(usage)


def unit_usage(conn: Connection, kind: UnitKind, unit_ids: Collection[str]) -> dict[str, UnitUsage]:
    """Usage of each of ``unit_ids`` that has live workloads."""
    found: dict[str, UnitUsage] = {}
    if not unit_ids:
        return found
    for row in conn.execute(usage_statement(kind, unit_ids)):
        usage = Usage(allocated=float(row.allocated), non_preemptible=float(row.non_preemptible))
        _add(found.setdefault(row.unit, UnitUsage()), row.nodepool, usage)
    for row in conn.execute(requested_statement(kind, unit_ids)):
        usage = Usage(requested=float(row.requested))
        _add(found.setdefault(row.unit, UnitUsage()), row.nodepool, usage)
    return found


def held_statement(kind: UnitKind) -> sa.Select:
    """CPU millicores and memory MB held by every unit's live pods per (unit, node pool), in
    total and of non-preemptible workloads. The pool is the pod's node's (the pod's own when
    the node is not known), NULL when neither is."""
    non_preemptible = W.priority >= PREEMPTIBLE_BELOW
    cpu = POD.allocated_cpu_cores * 1000
    memory = POD.allocated_memory_bytes / 1e6
    pool = sa.func.coalesce(N.nodepool, POD.nodepool).label("nodepool")
    unit = unit_column(kind).label("unit")
    node = sa.and_(N.cluster_id == POD.cluster_id, N.name == POD.node_name, N.deleted_at.is_(None))
    return (
        sa.select(
            unit,
            pool,
            sa.func.sum(cpu).label("cpu"),
            sa.func.sum(memory).label("memory"),
            sa.func.sum(sa.case((non_preemptible, cpu), else_=0.0)).label("cpu_non_preemptible"),
            sa.func.sum(sa.case((non_preemptible, memory), else_=0.0)).label(
                "memory_non_preemptible"
            ),
        )
        .select_from(workload_pods.join(workloads, W.id == POD.workload_id).outerjoin(nodes, node))
        .where(POD.deleted_at.is_(None), W.deleted_at.is_(None))
        .group_by(unit, pool)
    )
