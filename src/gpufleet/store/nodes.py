"""Nodes: listed, counted and read in SQL, with the caller's scope, in the reference shape.

A caller sees the live nodes of every cluster it may read something in (its clusters, and the
clusters of its departments and projects): nodes are shared capacity, and a node says nothing
of whose workloads run on it.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gpufleet.core.times import format_rfc3339
from gpufleet.query.org_units import OrgUnitPage, OrgUnitSelection
from gpufleet.query.scope import WorkloadScope
from gpufleet.store.clusters import cluster_scope_condition
from gpufleet.store.tables import clusters, nodes
from gpufleet.store.workload_filters import compare

N = nodes.c
# The GPU model of a GPU node whose labels do not name it.
UNKNOWN_GPU_TYPE = "Unknown"


def visible_cluster_ids(scope: WorkloadScope) -> sa.ColumnElement[bool] | None:
    """The clusters whose inventory the caller sees, as a subquery (None: every cluster)."""
    if scope.everything:
        return None
    return sa.select(clusters.c.id).where(cluster_scope_condition(scope)).scalar_subquery()


def node_conditions(
    selection: OrgUnitSelection, cluster_id: str | None = None
) -> list[sa.ColumnElement[bool]]:
    """Live nodes matching the selection's filters, search and scope (and cluster)."""
    conditions: list[sa.ColumnElement[bool]] = [N.deleted_at.is_(None)]
    if cluster_id is not None:
        conditions.append(N.cluster_id == cluster_id)
    conditions.extend(
        compare(N[term.field.column], term.operator, term.value) for term in selection.filters
    )
    if selection.search:
        conditions.append(sa.func.lower(N.name).contains(selection.search, autoescape=True))
    visible = visible_cluster_ids(selection.scope)
    if visible is not None:
        conditions.append(N.cluster_id.in_(visible))
    return conditions


def node_wire(row: Any) -> dict[str, Any]:
    """The reference ``Node`` of a stored row."""
    document = row.document or {}
    gpu_info = None
    if row.gpu_count or row.gpu_type:
        gpu_info = {"gpuType": row.gpu_type or UNKNOWN_GPU_TYPE, "gpuCount": row.gpu_count}
    return {
        "id": row.id,
        "name": row.name,
        "clusterUuid": row.cluster_id,
        "status": row.status,
        "nodePool": row.nodepool,
        "gpuInfo": gpu_info,
        "nvLinkDomainUid": row.nvlink_domain_uid,
        "nvLinkCliqueId": row.nvlink_clique_id,
        "conditions": [
            {"type": c["type"], "reason": c.get("reason") or "", "message": c.get("message") or ""}
            for c in document.get("conditions") or ()
        ],
        "taints": list(document.get("taints") or ()),
        "createdAt": format_rfc3339(row.created_at),
        "updatedAt": format_rfc3339(row.updated_at),
    }


def list_nodes(
    conn: Connection, page: OrgUnitPage, cluster_id: str | None = None
) -> list[dict[str, Any]]:
    """One page of nodes, sorted by the page's field with the id as the tiebreak."""
    column = N[page.sort.column]
    order = (column.desc(), N.id.desc()) if page.descending else (column.asc(), N.id.asc())
    statement = (
        sa.select(nodes)
        .where(*node_conditions(page.selection, cluster_id))
        .order_by(*order)
        .offset(page.offset)
        .limit(page.limit)
    )
    return [node_wire(row) for row in conn.execute(statement)]


def count_nodes(
    conn: Connection, selection: OrgUnitSelection, cluster_id: str | None = None
) -> int:
    statement = sa.select(sa.func.count()).where(*node_conditions(selection, cluster_id))
    return int(conn.execute(statement.select_from(nodes)).scalar_one())


def get_node(conn: Connection, node_id: str, scope: WorkloadScope) -> Any | None:
    """A live node the caller may see, or None."""
    conditions = node_conditions(OrgUnitSelection(scope=scope))
    return conn.execute(sa.select(nodes).where(N.id == node_id, *conditions)).first()


def live_node_names(conn: Connection, cluster_id: str) -> dict[str, list[str]]:
    """The names of a cluster's live nodes by node pool."""
    statement = (
        sa.select(N.nodepool, N.name)
        .where(N.cluster_id == cluster_id, N.deleted_at.is_(None))
        .order_by(N.nodepool, N.name)
    )
    pools: dict[str, list[str]] = {}
    for pool, name in conn.execute(statement):
        pools.setdefault(pool, []).append(name)
    return pools
