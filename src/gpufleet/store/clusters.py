"""Registered clusters: created ahead of their agent by ``gpufleet clusters register``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gpufleet.core.times import format_rfc3339, to_ms
from gpufleet.query.scope import WorkloadScope
from gpufleet.schemas.clusters import ClusterState
from gpufleet.store.tables import clusters, departments, projects
from gpufleet.store.types import UtcDateTime

C = clusters.c
# A busy agent reports many times a second; its liveness is written at most this often.
LIVENESS_RESOLUTION = timedelta(seconds=5)


@dataclass(frozen=True, slots=True)
class ClusterRow:
    id: str
    name: str
    tenant_id: int
    created_at: datetime
    updated_at: datetime
    last_report_at: datetime | None


def create_cluster(
    conn: Connection, *, cluster_id: str, name: str, tenant_id: int, now: datetime
) -> None:
    conn.execute(
        clusters.insert().values(
            id=cluster_id, name=name, tenant_id=tenant_id, created_at=now, updated_at=now
        )
    )


def clusters_named(conn: Connection, name: str) -> list[str]:
    """Ids of the clusters with this name (names are not unique in the store)."""
    statement = sa.select(clusters.c.id).where(clusters.c.name == name).order_by(clusters.c.id)
    return list(conn.execute(statement).scalars())


def account_usage_from(conn: Connection, cluster_ids: Sequence[str], moment: datetime) -> None:
    """The usage ledger accounts these clusters' workloads from ``moment`` on: their usage
    before it has been written into the rollups otherwise (the demo's history)."""
    conn.execute(clusters.update().where(C.id.in_(list(cluster_ids))).values(usage_from=moment))


def usage_floors(conn: Connection) -> dict[str, int]:
    """The moment (epoch ms) from which the ledger accounts each cluster that has one."""
    rows = conn.execute(sa.select(C.id, C.usage_from).where(C.usage_from.is_not(None)))
    return {row.id: to_ms(row.usage_from) for row in rows}


def list_clusters(conn: Connection) -> list[dict]:
    statement = sa.select(clusters).order_by(clusters.c.created_at, clusters.c.id)
    return [
        {"id": row.id, "name": row.name, "tenantId": row.tenant_id, "createdAt": row.created_at}
        for row in conn.execute(statement)
    ]


# The table holding the ids of each scope type that names one organisation unit.
_SCOPE_TABLES = {"cluster": clusters, "department": departments, "project": projects}


def scope_exists(conn: Connection, scope_type: str, scope_id: str) -> bool:
    """Whether a cluster, department or project with this id is known; tenants always are."""
    table = _SCOPE_TABLES.get(scope_type)
    if table is None:
        return True
    statement = sa.select(sa.literal(1)).where(table.c.id == scope_id).limit(1)
    return conn.execute(statement).first() is not None


def mark_reported(conn: Connection, cluster_id: str, now: datetime) -> None:
    """Record that the cluster's agent reported at ``now`` (its liveness).

    The condition skips the write, and the row lock, while the stored time is recent, so
    concurrent reports of one cluster do not queue behind each other on its row.
    """
    conn.execute(
        _MARK_REPORTED, {"cluster": cluster_id, "now": now, "recent": now - LIVENESS_RESOLUTION}
    )


# Built once: every ingest request runs it.
_MARK_REPORTED = (
    clusters.update()
    .where(
        C.id == sa.bindparam("cluster"),
        sa.or_(
            C.last_report_at.is_(None),
            C.last_report_at < sa.bindparam("recent", type_=UtcDateTime),
        ),
    )
    .values(last_report_at=sa.bindparam("now", type_=UtcDateTime))
)


def cluster_scope_condition(scope: WorkloadScope) -> sa.ColumnElement[bool]:
    """Clusters in which the caller may read something: its clusters, and the clusters of
    its departments and projects."""
    if scope.everything:
        return sa.true()
    allowed: list[sa.ColumnElement[bool]] = []
    if scope.cluster_ids:
        allowed.append(C.id.in_(sorted(scope.cluster_ids)))
    if scope.department_ids:
        allowed.append(
            C.id.in_(
                sa.select(departments.c.cluster_id).where(
                    departments.c.id.in_(sorted(scope.department_ids))
                )
            )
        )
    if scope.project_ids:
        allowed.append(
            C.id.in_(
                sa.select(projects.c.cluster_id).where(projects.c.id.in_(sorted(scope.project_ids)))
            )
        )
    return sa.or_(*allowed) if allowed else sa.false()


def _cluster_rows(conn: Connection, *conditions: sa.ColumnElement[bool]) -> list[ClusterRow]:
    statement = (
        sa.select(C.id, C.name, C.tenant_id, C.created_at, C.updated_at, C.last_report_at)
        .where(*conditions)
        .order_by(C.created_at, C.id)
    )
    return [ClusterRow(*row) for row in conn.execute(statement)]


def visible_clusters(conn: Connection, scope: WorkloadScope) -> list[ClusterRow]:
    """Every cluster the caller may read something in, oldest first."""
    return _cluster_rows(conn, cluster_scope_condition(scope))


def visible_cluster(conn: Connection, cluster_id: str, scope: WorkloadScope) -> ClusterRow | None:
    """One cluster, or None when it is unknown or the caller may read nothing in it."""
    rows = _cluster_rows(conn, C.id == cluster_id, cluster_scope_condition(scope))
    return rows[0] if rows else None


def cluster_state(row: ClusterRow, now: datetime, silence: timedelta) -> ClusterState:
    """WaitingToConnect until the agent first reports; Disconnected after ``silence``."""
    if row.last_report_at is None:
        return ClusterState.WAITING_TO_CONNECT
    if now - row.last_report_at > silence:
        return ClusterState.DISCONNECTED
    return ClusterState.CONNECTED


def cluster_wire(row: ClusterRow, now: datetime, silence: timedelta, *, full: bool) -> dict:
    """The reference ``DisplayedCluster`` of a row; ``metadata`` verbosity leaves out status."""
    body: dict = {
        "uuid": row.id,
        "tenantId": row.tenant_id,
        "name": row.name,
        "createdAt": format_rfc3339(row.created_at),
        "updatedAt": format_rfc3339(row.updated_at),
    }
    if full:
        last = row.last_report_at
        body["lastLiveness"] = None if last is None else format_rfc3339(last)
        body["status"] = {"state": cluster_state(row, now, silence).value}
        body["domain"] = None
        body["version"] = None
        body["deletedAt"] = None
        body["deleteRequestedAt"] = None
    return body
