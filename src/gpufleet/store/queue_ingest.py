"""Applying a cluster's scheduler queues and their quotas, in one transaction.

A batch is every queue of the cluster as observed at one moment. A queue's id is derived from
its cluster, source and name, so no report can reach another cluster's queue; the projects and
departments a queue stands for are recorded with the same first-reporter ownership as the
workloads' (``organisation.record_units``), and a queue naming another cluster's unit is not
written. A queue's row and quotas are replaced only by a report not older than the stored one;
queues missing from a batch and last seen before it are removed.
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
from gpufleet.store.node_ingest import record_nodepools
from gpufleet.store.organisation import record_cluster, record_units
from gpufleet.store.reported import upsert_reported
from gpufleet.store.tables import queue_quotas, scheduler_queues

_RESOURCES = ("gpu", "cpu", "memory")
_PARTS = {"deserved": "deserved", "limit": "limit", "overQuotaWeight": "over_quota_weight"}


@dataclass(frozen=True, slots=True)
class QueueOutcome:
    accepted: int
    stale: int
    removed: int
    refused: tuple[str, ...]


def queue_id(cluster_id: str, source: str, name: str) -> str:
    """The id of a cluster's queue: stable, and distinct for each cluster."""
    return str(uuid5(UUID(cluster_id), f"queue/{source}/{name}"))


def queue_key(queue: Mapping[str, Any]) -> str:
    """How a batch names one of its queues: ``source/name``."""
    return f"{queue['source']}/{queue['name']}"


def _unit(queue: Mapping[str, Any], observed: datetime) -> dict[str, Any] | None:
    unit = queue.get("orgUnit")
    if not unit:
        return None
    namespace = unit.get("namespace") or f"runai-{unit['name']}"
    return {**unit, "key": queue_key(queue), "observedAt": observed, "namespace": namespace}


def _queue_row(cluster_id: str, queue: Mapping[str, Any], observed: datetime) -> dict[str, Any]:
    unit = queue.get("orgUnit") or {}
    return {
        "id": queue_id(cluster_id, queue["source"], queue["name"]),
        "cluster_id": cluster_id,
        "source": str(queue["source"]),
        "name": queue["name"],
        "parent_name": queue.get("parentName"),
        "org_unit_type": unit.get("type"),
        "org_unit_id": unit.get("id"),
        "priority": queue.get("priority"),
        "observed_at": observed,
        "document": {"details": dict(queue.get("details") or {})},
    }


def quota_rows(cluster_id: str, queue: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Rows of ``queue_quotas`` for one wire queue."""
    rows = []
    for quota in queue.get("quotas") or ():
        row: dict[str, Any] = {
            "queue_id": queue_id(cluster_id, queue["source"], queue["name"]),
            "nodepool": quota["nodePool"],
            "cluster_id": cluster_id,
        }
        for resource in _RESOURCES:
            amounts = quota.get(resource) or {}
            for wire, column in _PARTS.items():
                row[f"{resource}_{column}"] = amounts.get(wire)
            row[f"{resource}_used"] = amounts.get("used")
        row["gpu_deserved"] = row["gpu_deserved"] or 0.0
        rows.append(row)
    return rows


def _upsert_statement(dialect: str) -> sa.Insert:
    replaced = ("parent_name", "org_unit_type", "org_unit_id", "priority", "observed_at")
    return upsert_reported(
        dialect,
        scheduler_queues,
        lambda new: {name: new[name] for name in (*replaced, "document")},
        reported_at="observed_at",
    )


def ingest_queues(
    conn: Connection,
    cluster_id: str,
    queues: Sequence[Mapping[str, Any]],
    *,
    observed_at: datetime,
    now: datetime,
) -> QueueOutcome:
    """Apply every queue of ``cluster_id`` as observed at ``observed_at``; the caller commits."""
    observed = truncate_to_ms(observed_at)
    record_cluster(conn, cluster_id, None, 1, now)
    units = [unit for queue in queues if (unit := _unit(queue, observed)) is not None]
    refused = record_units(conn, cluster_id, units)
    kept = sorted(
        (q for q in queues if queue_key(q) not in refused),
        key=lambda q: queue_id(cluster_id, q["source"], q["name"]),
    )
    applied: set[str] = set()
    if kept:
        rows = [_queue_row(cluster_id, queue, observed) for queue in kept]
        applied = set(conn.execute(_upsert_statement(conn.dialect.name), rows).scalars())
    written = [q for q in kept if queue_id(cluster_id, q["source"], q["name"]) in applied]
    if applied:
        conn.execute(queue_quotas.delete().where(queue_quotas.c.queue_id.in_(sorted(applied))))
        quotas = [row for queue in written for row in quota_rows(cluster_id, queue)]
        if quotas:
            conn.execute(queue_quotas.insert(), quotas)
    pools = sorted({q["nodePool"] for queue in written for q in queue.get("quotas") or ()})
    if pools:
        record_nodepools(conn, cluster_id, pools, None, now)
    reported = [queue_id(cluster_id, q["source"], q["name"]) for q in queues]
    removed = _remove_unreported(conn, cluster_id, reported, observed)
    return QueueOutcome(
        accepted=len(applied),
        stale=len(kept) - len(applied),
        removed=removed,
        refused=tuple(sorted(refused)),
    )


def _remove_unreported(
    conn: Connection, cluster_id: str, reported: Sequence[str], observed: datetime
) -> int:
    stored = scheduler_queues.c
    gone = sa.select(stored.id).where(
        stored.cluster_id == cluster_id,
        stored.id.not_in(sorted(reported)),
        stored.observed_at < observed,
    )
    ids = list(conn.execute(gone).scalars())
    if not ids:
        return 0
    conn.execute(queue_quotas.delete().where(queue_quotas.c.queue_id.in_(ids)))
    return conn.execute(
        scheduler_queues.delete().where(stored.id.in_(ids), stored.cluster_id == cluster_id)
    ).rowcount
