"""The pods of each workload, as the cluster agent last reported them."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gpufleet.store.tables import workload_pods


def replace_pods(
    conn: Connection,
    workload_ids: Collection[str],
    pods_by_workload: Mapping[str, Iterable[Mapping[str, Any]]],
) -> None:
    """Make the stored pods of ``workload_ids`` exactly the given ones (wire-shaped dicts)."""
    if not workload_ids:
        return
    conn.execute(workload_pods.delete().where(workload_pods.c.workload_id.in_(workload_ids)))
    rows = [
        {
            "workload_id": workload_id,
            "uid": pod["uid"],
            "name": pod["name"],
            "node_name": pod.get("nodeName"),
            "phase": pod["phase"],
            "document": dict(pod),
        }
        for workload_id in sorted(workload_ids)
        for pod in pods_by_workload.get(workload_id, ())
    ]
    if rows:
        conn.execute(workload_pods.insert(), rows)


def list_pods(conn: Connection, workload_id: str) -> list[dict[str, Any]]:
    """The last reported pods of one workload, by name, as the agent sent them."""
    statement = (
        sa.select(workload_pods.c.document)
        .where(workload_pods.c.workload_id == workload_id)
        .order_by(workload_pods.c.name, workload_pods.c.uid)
    )
    return [row.document for row in conn.execute(statement)]
