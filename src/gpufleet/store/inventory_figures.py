"""The fleet's figures as of now, one row per (unit, metric type, series), for the sampler.

Clusters: GPUs and GPU nodes from the live nodes; allocated GPUs from the pods holding them
(by the pool of the node they run on), and split by project, department and category from the
workloads; project quotas added up (per department, the department's own); workloads not
finished; the mean wait of pending ones.
Projects and departments: their GPU allocation and quotas (``store.org_figures``,
``store.org_quotas``) and the CPU and memory their pods hold. A series is "" for the unit's
total or ``Key=value`` for one group (``Nodepool``, ``Project``, ``Department``, ``Category``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gpufleet.core.times import to_ms
from gpufleet.schemas.enums import TERMINAL_PHASES, Phase
from gpufleet.store.dialect import epoch_ms
from gpufleet.store.org_figures import UnitKind, held_statement, usage_statement
from gpufleet.store.org_quotas import quota_statement
from gpufleet.store.tables import clusters, departments, nodes, projects, workload_pods, workloads

W, N, POD = workloads.c, nodes.c, workload_pods.c
CLUSTER = "cluster"
# Quota and allocation types of projects and departments, with the column each is read from.
UNIT_QUOTA_TYPES = {
    "GPU_QUOTA": "gpu_deserved",
    "CPU_QUOTA_MILLICORES": "cpu_deserved",
    "CPU_MEMORY_QUOTA_MB": "memory_deserved",
}


# The types whose figure is a count or an amount held, 0 when the sampler finds nothing to add
# up (no node, pod or workload of the unit or group): a sampling instant without a sample of
# such a series is a 0 of it, so the sampler writes only what is there. The other types are
# not measured when absent: quotas (a unit without a queue has no quota; a queue without a CPU
# quota sets none) and the mean wait of pending workloads (none pending, no mean).
ZERO_WHEN_ABSENT = frozenset(
    {
        "TOTAL_GPU",
        "TOTAL_GPU_NODES",
        "ALLOCATED_GPU",
        "UNALLOCATED_GPU",
        "WORKLOADS_COUNT",
        "GPU_ALLOCATION",
        "CPU_ALLOCATION_MILLICORES",
        "CPU_MEMORY_ALLOCATION_MB",
    }
)
# Written for every cluster at every sampling instant, 0 when nothing is allocated: the times
# of this series are the instants at which the cluster and its units were sampled.
SAMPLED_INSTANTS = ("ALLOCATED_GPU", "")


class Figure(NamedTuple):
    unit_type: str
    unit_id: str
    metric_type: str
    series: str
    value: float


class _Sums:
    """Values added up per (unit, type, series), with each group's total beside it."""

    def __init__(self) -> None:
        self.values: dict[tuple[str, str, str, str], float] = defaultdict(float)

    def add(self, unit_type, unit_id, metric_type, group: str | None, value) -> None:
        self.values[(unit_type, unit_id, metric_type, "")] += float(value or 0.0)
        if group is not None:
            self.values[(unit_type, unit_id, metric_type, group)] += float(value or 0.0)

    def zero(self, unit_type: str, unit_ids: Iterable[str], metric_type: str) -> None:
        for unit_id in unit_ids:
            self.values.setdefault((unit_type, unit_id, metric_type, ""), 0.0)

    def figures(self) -> list[Figure]:
        return [Figure(*key, value) for key, value in sorted(self.values.items())]


def current_figures(conn: Connection, now: datetime) -> list[Figure]:
    sums = _Sums()
    _capacity(conn, sums)
    _cluster_allocation(conn, sums)
    _cluster_workloads(conn, sums, now)
    _cluster_quotas(conn, sums)
    for kind in UnitKind:
        _unit_figures(conn, sums, kind)
    return sums.figures()


def _capacity(conn: Connection, sums: _Sums) -> None:
    statement = (
        sa.select(
            N.cluster_id,
            N.nodepool,
            sa.func.sum(N.gpu_count),
            sa.func.count(sa.case((N.gpu_count > 0, 1))),
        )
        .where(N.deleted_at.is_(None))
        .group_by(N.cluster_id, N.nodepool)
    )
    allocated = dict(_pod_allocation(conn))
    for cluster_id, pool, gpus, gpu_nodes in conn.execute(statement):
        group = f"Nodepool={pool}"
        sums.add(CLUSTER, cluster_id, "TOTAL_GPU", group, gpus)
        sums.add(CLUSTER, cluster_id, "TOTAL_GPU_NODES", group, gpu_nodes)
        free = float(gpus or 0) - allocated.get((cluster_id, pool), 0.0)
        sums.add(CLUSTER, cluster_id, "UNALLOCATED_GPU", group, max(free, 0.0))


def _pod_allocation(conn: Connection) -> list[tuple[tuple[str, str], float]]:
    """GPUs held by live pods per (cluster, node pool of their node)."""
    on_node = sa.and_(
        N.cluster_id == POD.cluster_id, N.name == POD.node_name, N.deleted_at.is_(None)
    )
    pool = sa.func.coalesce(N.nodepool, POD.nodepool, "default")
    statement = (
        sa.select(POD.cluster_id, pool, sa.func.sum(POD.allocated_gpu))
        .select_from(workload_pods.outerjoin(nodes, on_node))
        .where(POD.deleted_at.is_(None), POD.allocated_gpu > 0)
        .group_by(POD.cluster_id, pool)
    )
    return [((cluster, name), float(value)) for cluster, name, value in conn.execute(statement)]


def _cluster_allocation(conn: Connection, sums: _Sums) -> None:
    cluster_ids = list(conn.execute(sa.select(clusters.c.id)).scalars())
    # Every cluster's total, 0 included: its times are the SAMPLED_INSTANTS.
    sums.zero(CLUSTER, cluster_ids, "ALLOCATED_GPU")
    for (cluster_id, pool), value in _pod_allocation(conn):
        sums.add(CLUSTER, cluster_id, "ALLOCATED_GPU", f"Nodepool={pool}", value)
    sums.zero(CLUSTER, cluster_ids, "WORKLOADS_COUNT")


def _cluster_workloads(conn: Connection, sums: _Sums, now: datetime) -> None:
    """Workloads not finished and allocated GPUs by project, department and category."""
    active = sa.and_(
        W.deleted_at.is_(None), W.phase.not_in(sorted(p.value for p in TERMINAL_PHASES))
    )
    statement = (
        sa.select(
            W.cluster_id,
            W.project_id,
            W.department_id,
            W.category,
            sa.func.count(),
            sa.func.sum(W.allocated_gpu),
        )
        .where(active)
        .group_by(W.cluster_id, W.project_id, W.department_id, W.category)
    )
    for cluster_id, project_id, department_id, category, count, gpus in conn.execute(statement):
        for group in (
            f"Project={project_id}",
            f"Department={department_id}",
            f"Category={category}",
        ):
            sums.values[(CLUSTER, cluster_id, "WORKLOADS_COUNT", group)] += count
            sums.values[(CLUSTER, cluster_id, "ALLOCATED_GPU", group)] += float(gpus or 0.0)
        sums.values[(CLUSTER, cluster_id, "WORKLOADS_COUNT", "")] += count
    waited = sa.literal(to_ms(now), sa.BigInteger) - epoch_ms(conn.dialect.name, W.phase_updated_at)
    pending = (
        sa.select(W.cluster_id, sa.func.avg(waited / 1000.0))
        .where(W.deleted_at.is_(None), W.phase == Phase.PENDING.value)
        .group_by(W.cluster_id)
    )
    for cluster_id, seconds in conn.execute(pending):
        sums.add(CLUSTER, cluster_id, "AVG_WORKLOAD_WAIT_TIME", None, max(float(seconds), 0.0))


def _cluster_quotas(conn: Connection, sums: _Sums) -> None:
    """The projects' deserved GPUs in total, per node pool and per project; per department,
    the department's own (its queues', as its own metrics give them), which its projects'
    may exceed."""
    for kind, table in ((UnitKind.PROJECT, projects), (UnitKind.DEPARTMENT, departments)):
        quotas = quota_statement(kind, None).subquery()
        statement = sa.select(
            table.c.cluster_id, table.c.id, quotas.c.nodepool, quotas.c.gpu_deserved
        ).select_from(quotas.join(table, table.c.id == quotas.c.unit))
        for cluster_id, unit_id, pool, deserved in conn.execute(statement):
            if kind is UnitKind.PROJECT:
                sums.add(CLUSTER, cluster_id, "GPU_QUOTA", f"Nodepool={pool}", deserved)
                group = f"Project={unit_id}"
            else:
                group = f"Department={unit_id}"
            sums.values[(CLUSTER, cluster_id, "GPU_QUOTA", group)] += deserved


def _unit_figures(conn: Connection, sums: _Sums, kind: UnitKind) -> None:
    table = projects if kind is UnitKind.PROJECT else departments
    sums.zero(kind.value, conn.execute(sa.select(table.c.id)).scalars(), "GPU_ALLOCATION")
    for row in conn.execute(usage_statement(kind, None)):
        group = None if row.nodepool is None else f"Nodepool={row.nodepool}"
        sums.add(kind.value, row.unit, "GPU_ALLOCATION", group, row.allocated)
    for row in conn.execute(quota_statement(kind, None)).mappings():
        for metric_type, column in UNIT_QUOTA_TYPES.items():
            if row[column] is not None:
                group = f"Nodepool={row['nodepool']}"
                sums.add(kind.value, row["unit"], metric_type, group, row[column])
    for row in conn.execute(held_statement(kind)):
        group = None if row.nodepool is None else f"Nodepool={row.nodepool}"
        sums.add(kind.value, row.unit, "CPU_ALLOCATION_MILLICORES", group, row.cpu)
        sums.add(kind.value, row.unit, "CPU_MEMORY_ALLOCATION_MB", group, row.memory)
