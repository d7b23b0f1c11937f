"""Node pools: listed, counted and read in SQL, with the caller's scope, in the reference shape.

A pool's phase follows its live nodes: ``Empty`` without any, ``Unschedulable`` when none is
ready and schedulable, else ``Ready``. The reference's network-acceleration, topology, swap
and node-level-scheduler fields have the values of a pool that uses none of them, so filters
and sorts on them behave as on any other field.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gpufleet.core.times import format_rfc3339
from gpufleet.query.org_units import OrgUnitPage, OrgUnitSelection
from gpufleet.query.scope import WorkloadScope
from gpufleet.store.nodes import visible_cluster_ids
from gpufleet.store.tables import clusters, nodepools, nodes
from gpufleet.store.workload_filters import compare

NP, N, C = nodepools.c, nodes.c, clusters.c
# Who the reference's createdBy/updatedBy name: pools come from what the agent reports.
REPORTER = "cluster-agent"


def _node_counts() -> sa.Subquery:
    ready = sa.and_(N.status == "Ready", sa.not_(N.unschedulable))
    return (
        sa.select(
            N.cluster_id,
            N.nodepool,
            sa.func.count().label("nodes"),
            sa.func.sum(sa.case((ready, 1), else_=0)).label("ready"),
        )
        .where(N.deleted_at.is_(None))
        .group_by(N.cluster_id, N.nodepool)
        .subquery("pool_nodes")
    )


def _pools() -> sa.Subquery:
    """Every pool with the columns ``core.node_fields.NODEPOOL_FIELDS`` names."""
    counts = _node_counts()
    total = sa.func.coalesce(counts.c.nodes, 0)
    phase = sa.case(
        (total == 0, "Empty"),
        (sa.func.coalesce(counts.c.ready, 0) == 0, "Unschedulable"),
        else_="Ready",
    )
    source = nodepools.outerjoin(clusters, C.id == NP.cluster_id).outerjoin(
        counts, sa.and_(counts.c.cluster_id == NP.cluster_id, counts.c.nodepool == NP.name)
    )
    return (
        sa.select(
            NP.id,
            NP.name,
            NP.cluster_id,
            sa.func.coalesce(C.name, NP.cluster_id).label("cluster_name"),
            sa.func.coalesce(C.tenant_id, 1).label("tenant_id"),
            NP.label_key,
            NP.is_default,
            NP.created_at,
            NP.updated_at,
            phase.label("phase"),
            total.label("node_count"),
            sa.null().cast(sa.String).label("network_topology_name"),
            sa.literal("Auto").label("acceleration_detection"),
            sa.literal("false").label("acceleration_detected"),
            sa.literal("").label("acceleration_label_key"),
            sa.literal("false").label("swap_enabled"),
            sa.literal("false").label("node_level_scheduler_enabled"),
        )
        .select_from(source)
        .subquery("pools")
    )


def _conditions(pools: sa.Subquery, selection: OrgUnitSelection) -> list[sa.ColumnElement[bool]]:
    conditions = [
        compare(pools.c[term.field.column], term.operator, term.value) for term in selection.filters
    ]
    visible = visible_cluster_ids(selection.scope)
    if visible is not None:
        conditions.append(pools.c.cluster_id.in_(visible))
    return conditions


def _phase_message(row: Any) -> str:
    if row.phase == "Empty":
        return "The node pool has no nodes."
    if row.phase == "Unschedulable":
        return "No node of the node pool is ready and schedulable."
    return f"{row.node_count} node(s)."


def _wire(row: Any, node_names: list[str]) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "clusterId": row.cluster_id,
        "clusterName": row.cluster_name,
        "tenantId": row.tenant_id,
        "labelKey": row.label_key,
        "labelValue": row.name,
        "isDefault": row.is_default,
        "phase": row.phase,
        "phaseMessage": _phase_message(row),
        "status": {"nodes": node_names, "conditions": [], "gpuNetworkAccelerationDetected": False},
        "gpuNetworkAccelerationDetection": "Auto",
        "createdAt": format_rfc3339(row.created_at),
        "createdBy": REPORTER,
        "updatedAt": format_rfc3339(row.updated_at),
        "updatedBy": REPORTER,
        "deletedAt": None,
    }


def _with_nodes(conn: Connection, rows: list[Any]) -> list[dict[str, Any]]:
    """The wire pools of ``rows``, each with the names of its live nodes."""
    names: dict[tuple[str, str], list[str]] = {(r.cluster_id, r.name): [] for r in rows}
    if rows:
        statement = (
            sa.select(N.cluster_id, N.nodepool, N.name)
            .where(
                N.deleted_at.is_(None),
                N.cluster_id.in_(sorted({r.cluster_id for r in rows})),
                N.nodepool.in_(sorted({r.name for r in rows})),
            )
            .order_by(N.name)
        )
        for cluster_id, pool, name in conn.execute(statement):
            names.get((cluster_id, pool), []).append(name)
    return [_wire(row, names[(row.cluster_id, row.name)]) for row in rows]


def list_nodepools(conn: Connection, page: OrgUnitPage) -> list[dict[str, Any]]:
    pools = _pools()
    column = pools.c[page.sort.column]
    tiebreak = pools.c.id
    order = (column.desc(), tiebreak.desc()) if page.descending else (column.asc(), tiebreak.asc())
    statement = (
        sa.select(pools)
        .where(*_conditions(pools, page.selection))
        .order_by(*order)
        .offset(page.offset)
        .limit(page.limit)
    )
    return _with_nodes(conn, conn.execute(statement).all())


def count_nodepools(conn: Connection, selection: OrgUnitSelection) -> int:
    pools = _pools()
    statement = sa.select(sa.func.count()).select_from(pools).where(*_conditions(pools, selection))
    return int(conn.execute(statement).scalar_one())


def get_nodepool(conn: Connection, nodepool_id: str, scope: WorkloadScope) -> dict[str, Any] | None:
    """One pool the caller may see, or None."""
    pools = _pools()
    statement = sa.select(pools).where(
        pools.c.id == nodepool_id, *_conditions(pools, OrgUnitSelection(scope=scope))
    )
    rows = conn.execute(statement).all()
    return _with_nodes(conn, rows)[0] if rows else None


def nodepool_named(conn: Connection, cluster_id: str, name: str) -> bool:
    """Whether the cluster has a node pool of this name."""
    statement = sa.select(NP.id).where(NP.cluster_id == cluster_id, NP.name == name)
    return conn.execute(statement).first() is not None
