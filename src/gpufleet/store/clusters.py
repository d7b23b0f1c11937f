"""Registered clusters: created ahead of their agent by ``gpufleet clusters register``."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gpufleet.store.tables import clusters, departments, projects


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
