"""Kubernetes events of workloads: written by a cluster's agent, read per workload, aged out.

One Kubernetes event is one row however often it repeats: a newer report of it moves its time
and count forward, an older one changes nothing. Ownership is decided by the writing statement
itself: a row is only inserted when its workload is a workload of the reporting cluster, and an
existing row is only updated when it is that cluster's, so a concurrent writer cannot slip an
event under another cluster's workload.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gpufleet.core.times import format_rfc3339
from gpufleet.store.dialect import upsert_with
from gpufleet.store.tables import workload_events, workloads

_VALUE_COLUMNS = (
    "id",
    "created_at",
    "type",
    "reason",
    "message",
    "source",
    "count",
    "object_kind",
    "object_name",
    "object_namespace",
    "object_uid",
)
# What a newer report of the same event may change.
_MOVING_COLUMNS = ("created_at", "type", "reason", "message", "source", "count")


def _event_row(event: Mapping[str, Any]) -> dict[str, Any]:
    involved = event["involvedObject"]
    return {
        "id": str(event["id"]),
        "workload_id": str(event["workloadId"]),
        "created_at": event["createdAt"],
        "type": event["type"],
        "reason": event.get("reason") or "",
        "message": event.get("message") or "",
        "source": event.get("source") or "",
        "count": event.get("count") or 1,
        "object_kind": involved["kind"],
        "object_name": involved["name"],
        "object_namespace": involved["namespace"],
        "object_uid": str(involved["uid"]),
    }


def _newest_per_id(events: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per event id, its latest report; in id order so writers lock alike."""
    newest: dict[str, dict[str, Any]] = {}
    for row in map(_event_row, events):
        known = newest.get(row["id"])
        if known is None or row["created_at"] >= known["created_at"]:
            newest[row["id"]] = row
    return [newest[key] for key in sorted(newest)]


def _write_statement(dialect: str) -> sa.Insert:
    """INSERT … SELECT from the reporting cluster's workload, upserting the cluster's own row."""
    values = [sa.bindparam(name, type_=workload_events.c[name].type) for name in _VALUE_COLUMNS]
    source = sa.select(workloads.c.id, workloads.c.cluster_id, *values).where(
        workloads.c.id == sa.bindparam("workload_id"),
        workloads.c.cluster_id == sa.bindparam("cluster_id"),
    )
    statement = upsert_with(
        dialect,
        workload_events,
        ["id"],
        lambda new: {name: new[name] for name in _MOVING_COLUMNS},
        lambda new: sa.and_(
            workload_events.c.cluster_id == new.cluster_id,
            workload_events.c.workload_id == new.workload_id,
            new.created_at >= workload_events.c.created_at,
        ),
    )
    # The upsert's INSERT part is replaced by INSERT … SELECT; ON CONFLICT carries over.
    statement = statement.from_select(["workload_id", "cluster_id", *_VALUE_COLUMNS], source)
    return statement.returning(workload_events.c.id)


def record_events(conn: Connection, cluster_id: str, events: Sequence[Mapping[str, Any]]) -> int:
    """Write wire-shaped ingest events of ``cluster_id``; returns how many were written.

    An event is not written when its workload is unknown or another cluster's, when its id is
    another cluster's (or another workload's) event, or when a newer report is already stored.
    """
    statement = _write_statement(conn.dialect.name)
    written = 0
    for row in _newest_per_id(events):
        written += len(conn.execute(statement, {**row, "cluster_id": cluster_id}).all())
    return written


def wire_event(row: Any) -> dict[str, Any]:
    """A stored event in the reference ``Event`` shape."""
    return {
        "id": row.id,
        "createdAt": format_rfc3339(row.created_at),
        "type": row.type,
        "reason": row.reason,
        "message": row.message,
        "source": row.source,
        "clusterId": row.cluster_id,
        "involvedObject": {
            "uid": row.object_uid,
            "kind": row.object_kind,
            "name": row.object_name,
            "namespace": row.object_namespace,
        },
    }


def events_by_id(conn: Connection, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Wire events by id (for the history page, which knows which ones it shows)."""
    if not ids:
        return {}
    rows = conn.execute(sa.select(workload_events).where(workload_events.c.id.in_(list(ids))))
    return {row.id: wire_event(row) for row in rows}


def list_events(
    conn: Connection, workload_id: str, *, descending: bool, offset: int, limit: int
) -> tuple[list[dict[str, Any]], int | None]:
    """One page of a workload's events in time order, and the next offset."""
    events = workload_events.c
    order = (
        (events.created_at.desc(), events.id.desc())
        if descending
        else (events.created_at.asc(), events.id.asc())
    )
    statement = (
        sa.select(workload_events)
        .where(events.workload_id == workload_id)
        .order_by(*order)
        .offset(offset)
        .limit(limit + 1)
    )
    rows = conn.execute(statement).all()
    next_offset = offset + limit if len(rows) > limit else None
    return [wire_event(row) for row in rows[:limit]], next_offset


def delete_events_before(conn: Connection, cutoff: datetime) -> int:
    """Delete events whose latest occurrence is older than ``cutoff``; returns how many."""
    return conn.execute(
        workload_events.delete().where(workload_events.c.created_at < cutoff)
    ).rowcount
