"""Forgetting what clusters reported: their workloads with everything kept about them (pods,
events, phase history, samples, GPU-hours), their nodes, node pools and queues, and the
inventory samples of the clusters and of their projects and departments.

The clusters, their projects and departments, access rules and the audit log stay: they are
the organisation, not what it ran. Used by the living demo, which rebuilds its fleet's data on
every start.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gpufleet.store.tables import (
    departments,
    inventory_samples,
    metric_samples,
    nodepools,
    nodes,
    pod_metric_samples,
    projects,
    queue_quotas,
    scheduler_queues,
    usage_hourly,
    usage_open,
    usage_states,
    usage_utilisation,
    workload_events,
    workload_nodepools,
    workload_phase_history,
    workload_pods,
    workloads,
)

INV = inventory_samples.c


def has_cluster_data(conn: Connection, cluster_ids: Sequence[str]) -> bool:
    """Whether any workload, node or GPU-hour of these clusters is stored."""
    ids = list(cluster_ids)
    return any(
        conn.execute(
            sa.select(table.c.cluster_id).where(table.c.cluster_id.in_(ids)).limit(1)
        ).first()
        is not None
        for table in (workloads, nodes, usage_hourly)
    )


def delete_cluster_data(conn: Connection, cluster_ids: Sequence[str]) -> int:
    """Delete what the clusters reported (see the module); returns the rows deleted.

    The ledger's timeline goes first: the live-usage task locks those rows before it adds to
    the rollups, so a run of it that overlaps this one either finishes first (and its rollups
    are deleted below) or finds nothing left to accrue.
    """
    ids = list(cluster_ids)
    mine = sa.select(workloads.c.id).where(workloads.c.cluster_id.in_(ids)).scalar_subquery()
    pods = sa.select(workload_pods.c.id).where(workload_pods.c.cluster_id.in_(ids))
    timeline = sa.select(usage_states.c.workload_id).where(usage_states.c.cluster_id.in_(ids))
    units = sa.union_all(
        sa.select(projects.c.id).where(projects.c.cluster_id.in_(ids)),
        sa.select(departments.c.id).where(departments.c.cluster_id.in_(ids)),
    ).scalar_subquery()
    statements = [
        sa.delete(usage_open).where(usage_open.c.workload_id.in_(timeline)),
        sa.delete(usage_states).where(usage_states.c.cluster_id.in_(ids)),
        sa.delete(usage_hourly).where(usage_hourly.c.cluster_id.in_(ids)),
        sa.delete(usage_utilisation).where(usage_utilisation.c.workload_id.in_(mine)),
        sa.delete(metric_samples).where(metric_samples.c.workload_id.in_(mine)),
        sa.delete(pod_metric_samples).where(pod_metric_samples.c.pod_id.in_(pods)),
        sa.delete(workload_phase_history).where(workload_phase_history.c.workload_id.in_(mine)),
        sa.delete(workload_events).where(workload_events.c.cluster_id.in_(ids)),
        sa.delete(workload_pods).where(workload_pods.c.cluster_id.in_(ids)),
        sa.delete(workload_nodepools).where(workload_nodepools.c.workload_id.in_(mine)),
        sa.delete(workloads).where(workloads.c.cluster_id.in_(ids)),
        sa.delete(nodes).where(nodes.c.cluster_id.in_(ids)),
        sa.delete(nodepools).where(nodepools.c.cluster_id.in_(ids)),
        sa.delete(queue_quotas).where(queue_quotas.c.cluster_id.in_(ids)),
        sa.delete(scheduler_queues).where(scheduler_queues.c.cluster_id.in_(ids)),
        sa.delete(inventory_samples).where(
            sa.or_(
                sa.and_(INV.unit_type == "cluster", INV.unit_id.in_(ids)),
                sa.and_(INV.unit_type != "cluster", INV.unit_id.in_(units)),
            )
        ),
    ]
    return sum(int(conn.execute(statement).rowcount or 0) for statement in statements)
