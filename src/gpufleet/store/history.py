"""Phase transitions of workloads: written by ingest, read newest first."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gpufleet.core.times import format_rfc3339
from gpufleet.store.dialect import insert_ignoring_conflicts
from gpufleet.store.tables import workload_phase_history


def record_transitions(conn: Connection, transitions: Iterable[Mapping[str, Any]]) -> None:
    """Record ``{workload_id, phase, message, at}`` rows; a transition already known is skipped.

    The unique (workload_id, at, phase) index makes this idempotent, so a replayed or
    concurrently written update never produces a second row for the same transition.
    """
    rows = sorted(transitions, key=lambda row: (row["workload_id"], row["at"]))
    if rows:
        statement = insert_ignoring_conflicts(
            conn.dialect.name, workload_phase_history, ["workload_id", "at", "phase"]
        )
        conn.execute(statement, rows)


def list_transitions(
    conn: Connection, workload_id: str, *, offset: int, limit: int
) -> tuple[list[dict[str, Any]], int | None]:
    """One page of a workload's phase transitions, newest first, and the next offset."""
    history = workload_phase_history.c
    statement = (
        sa.select(history.phase, history.message, history.at)
        .where(history.workload_id == workload_id)
        .order_by(history.at.desc(), history.id.desc())
        .offset(offset)
        .limit(limit + 1)
    )
    rows = conn.execute(statement).all()
    records = [
        {"phase": row.phase, "message": row.message, "time": format_rfc3339(row.at)}
        for row in rows[:limit]
    ]
    return records, (offset + limit if len(rows) > limit else None)
