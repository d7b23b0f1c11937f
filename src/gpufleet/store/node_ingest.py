"""Applying a batch of node reports from a cluster agent, in one transaction.

As with workloads, the database decides: the upsert overwrites a node only when the stored row
is the reporting cluster's and the report is not older than the stored observation, and
RETURNING says which rows it wrote. A node no longer reported is soft-deleted, so an older
report arriving late cannot bring it back. Every node pool the nodes name is recorded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gpufleet.core.times import truncate_to_ms
from gpufleet.store.dialect import insert_ignoring_conflicts
from gpufleet.store.organisation import record_cluster
from gpufleet.store.reported import earliest, upsert_reported
from gpufleet.store.tables import nodepools, nodes
from gpufleet.store.types import UtcDateTime

DEFAULT_NODEPOOL = "default"
DEFAULT_NODEPOOL_LABEL = "run.ai/node-pool"
# Columns a newer report replaces (created_at keeps the earliest time seen).
_REPLACED = (
    "name",
    "status",
    "unschedulable",
    "nodepool",
    "gpu_type",
    "gpu_count",
    "allocatable_gpus",
    "gpu_memory_bytes",
    "cpu_cores",
    "allocatable_cpu_cores",
    "memory_bytes",
    "allocatable_memory_bytes",
    "nvlink_clique_id",
    "nvlink_domain_uid",
    "updated_at",
    "observed_at",
    "deleted_at",
    "document",
)


@dataclass(frozen=True, slots=True)
class NodeOutcome:
    accepted: int
    stale: int
    deleted: int
    refused: frozenset[str]


def nodepool_id(cluster_id: str, name: str) -> str:
    """The id of a cluster's node pool: stable, and distinct for each cluster."""
    return str(uuid5(UUID(cluster_id), f"nodepool/{name}"))


def node_row(cluster_id: str, node: Mapping[str, Any]) -> dict[str, Any]:
    """Column values of a wire node report."""
    observed = truncate_to_ms(node["observedAt"])
    return {
        "id": str(node["id"]),
        "cluster_id": cluster_id,
        "name": node["name"],
        "status": str(node["status"]),
        "unschedulable": bool(node.get("unschedulable")),
        "nodepool": node.get("nodePool") or DEFAULT_NODEPOOL,
        "gpu_type": node.get("gpuType"),
        "gpu_count": int(node.get("gpuCount") or 0),
        "allocatable_gpus": float(node.get("allocatableGpus") or 0.0),
        "gpu_memory_bytes": node.get("gpuMemoryBytes"),
        "cpu_cores": float(node.get("cpuCores") or 0.0),
        "allocatable_cpu_cores": float(node.get("allocatableCpuCores") or 0.0),
        "memory_bytes": int(node.get("memoryBytes") or 0),
        "allocatable_memory_bytes": int(node.get("allocatableMemoryBytes") or 0),
        "nvlink_clique_id": node.get("nvLinkCliqueId"),
        "nvlink_domain_uid": node.get("nvLinkDomainUid"),
        "created_at": truncate_to_ms(node["createdAt"]),
        "updated_at": observed,
        "observed_at": observed,
        "deleted_at": None,
        "document": {
            "conditions": [dict(c) for c in node.get("conditions") or ()],
            "taints": [
                {k: v for k, v in dict(t).items() if v is not None}
                for t in node.get("taints") or ()
            ],
            "migDevices": dict(node.get("migDevices") or {}),
        },
    }


def _upsert_statement(dialect: str) -> sa.Insert:
    stored = nodes.c

    def assignments(new: Any) -> dict[str, Any]:
        values = {name: new[name] for name in _REPLACED}
        values["created_at"] = earliest(new.created_at, stored.created_at)
        return values

    return upsert_reported(dialect, nodes, assignments, reported_at="observed_at")


def record_nodepools(
    conn: Connection, cluster_id: str, names: Sequence[str], label_key: str | None, now: datetime
) -> None:
    """Create the cluster's node pools not known yet (``default`` always exists); a label key
    given (the agent's node-pool label) is recorded on them."""
    wanted = sorted({DEFAULT_NODEPOOL, *names})
    rows = [
        {
            "id": nodepool_id(cluster_id, name),
            "cluster_id": cluster_id,
            "name": name,
            "label_key": label_key or DEFAULT_NODEPOOL_LABEL,
            "is_default": name == DEFAULT_NODEPOOL,
            "created_at": now,
            "updated_at": now,
        }
        for name in wanted
    ]
    conn.execute(insert_ignoring_conflicts(conn.dialect.name, nodepools, ["id"]), rows)
    if label_key is not None:
        conn.execute(
            nodepools.update()
            .where(
                nodepools.c.cluster_id == cluster_id,
                nodepools.c.name.in_(wanted),
                nodepools.c.label_key != label_key,
            )
            .values(label_key=label_key, updated_at=now)
        )


def _soft_delete(
    conn: Connection, cluster_id: str, condition: sa.ColumnElement[bool], now: datetime
) -> int:
    stored = nodes.c
    moment = sa.literal(now, UtcDateTime)
    # The deletion is an observation too: a report seen before it must not bring it back.
    observed = sa.case((stored.observed_at < moment, moment), else_=stored.observed_at)
    return conn.execute(
        nodes.update()
        .where(stored.cluster_id == cluster_id, stored.deleted_at.is_(None), condition)
        .values(deleted_at=now, updated_at=now, observed_at=observed)
    ).rowcount


def _of_other_clusters(conn: Connection, cluster_id: str, ids: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(ids), 1000):
        found.update(
            conn.execute(
                sa.select(nodes.c.id).where(
                    nodes.c.id.in_(ids[start : start + 1000]), nodes.c.cluster_id != cluster_id
                )
            ).scalars()
        )
    return found


def ingest_nodes(
    conn: Connection,
    cluster_id: str,
    reported: Sequence[Mapping[str, Any]],
    *,
    deleted_ids: Sequence[str] = (),
    full_sync: bool = False,
    label_key: str,
    now: datetime,
) -> NodeOutcome:
    """Apply one batch of wire node reports of ``cluster_id``; the caller commits."""
    record_cluster(conn, cluster_id, None, 1, now)
    newest: dict[str, dict[str, Any]] = {}
    for row in (node_row(cluster_id, node) for node in reported):
        known = newest.get(row["id"])
        if known is None or row["observed_at"] >= known["observed_at"]:
            newest[row["id"]] = row
    # In id order, so concurrent writers lock rows alike.
    rows = [newest[key] for key in sorted(newest)]
    record_nodepools(conn, cluster_id, [row["nodepool"] for row in rows], label_key, now)
    applied: set[str] = set()
    if rows:
        applied = set(conn.execute(_upsert_statement(conn.dialect.name), rows).scalars())
    missed = [row["id"] for row in rows if row["id"] not in applied]
    refused = _of_other_clusters(conn, cluster_id, missed)
    deleted = 0
    wanted = sorted({str(i) for i in deleted_ids} - set(newest))
    for start in range(0, len(wanted), 1000):
        deleted += _soft_delete(conn, cluster_id, nodes.c.id.in_(wanted[start : start + 1000]), now)
    refused |= _of_other_clusters(conn, cluster_id, wanted)
    if full_sync:
        # Only what was last seen before this listing was taken: a node reported by a newer,
        # concurrent request is not deleted by an older full listing.
        taken_at = max((row["observed_at"] for row in rows), default=now)
        missing = sa.and_(nodes.c.id.not_in(sorted(newest)), nodes.c.observed_at < taken_at)
        deleted += _soft_delete(conn, cluster_id, missing, now)
    return NodeOutcome(
        accepted=len(applied),
        stale=len(rows) - len(applied) - len(refused & set(newest)),
        deleted=deleted,
        refused=frozenset(refused),
    )
