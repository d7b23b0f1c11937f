"""Phase transitions of workloads and the history that interleaves them with events."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gpufleet.core.times import format_rfc3339
from gpufleet.store.dialect import insert_ignoring_conflicts, write_many
from gpufleet.store.events import events_by_id
from gpufleet.store.tables import workload_events, workload_phase_history


def record_transitions(conn: Connection, transitions: Iterable[Mapping[str, Any]]) -> None:
    """Record ``{workload_id, phase, message, at}`` rows; a transition already known is skipped.

    The unique (workload_id, at, phase) index makes this idempotent, so a replayed or
    concurrently written update never produces a second row for the same transition.
    """
    rows = sorted(
        ({**row, "message": row.get("message") or ""} for row in transitions),
        key=lambda row: (row["workload_id"], row["at"]),
    )
    if rows:
        write_many(conn, _insert_transitions(conn.dialect.name), rows)


@cache
def _insert_transitions(dialect: str) -> sa.Insert:
    return insert_ignoring_conflicts(
        dialect, workload_phase_history, ["workload_id", "at", "phase"]
    )


def _transition_records(workload_id: str, window: int) -> sa.Select:
    history = workload_phase_history.c
    return (
        sa.select(
            history.at.label("at"),
            sa.literal(0).label("kind"),
            sa.cast(history.id, sa.String).label("key"),
        )
        .where(history.workload_id == workload_id)
        .order_by(history.at.desc(), history.id.desc())
        .limit(window)
    )


def _event_records(workload_id: str, window: int) -> sa.Select:
    events = workload_events.c
    return (
        sa.select(
            events.created_at.label("at"), sa.literal(1).label("kind"), events.id.label("key")
        )
        .where(events.workload_id == workload_id)
        .order_by(events.created_at.desc(), events.id.desc())
        .limit(window)
    )


def list_history(
    conn: Connection, workload_id: str, *, offset: int, limit: int
) -> tuple[list[dict[str, Any]], int | None]:
    """One page of a workload's history, newest first: phase changes and events interleaved.

    Each side contributes at most ``offset + limit + 1`` of its newest rows (an index range
    each), so a page never sorts more than that, however long the history is. The page's rows
    are then read by key.
    """
    window = offset + limit + 1
    both = sa.union_all(
        _transition_records(workload_id, window).subquery().select(),
        _event_records(workload_id, window).subquery().select(),
    ).subquery("records")
    page = conn.execute(
        sa.select(both.c.at, both.c.kind, both.c.key)
        .order_by(both.c.at.desc(), both.c.kind.desc(), both.c.key.desc())
        .offset(offset)
        .limit(limit + 1)
    ).all()
    next_offset = offset + limit if len(page) > limit else None
    page = page[:limit]
    transitions = _transitions_by_key(conn, [r.key for r in page if r.kind == 0])
    events = events_by_id(conn, [r.key for r in page if r.kind == 1])
    records = [
        _phase_record(transitions[r.key]) if r.kind == 0 else _event_record(events[r.key])
        for r in page
    ]
    return records, next_offset


def _transitions_by_key(conn: Connection, keys: list[str]) -> dict[str, Any]:
    if not keys:
        return {}
    history = workload_phase_history.c
    rows = conn.execute(
        sa.select(history.id, history.phase, history.message, history.at).where(
            history.id.in_([int(key) for key in keys])
        )
    )
    return {str(row.id): row for row in rows}


def _phase_record(row: Any) -> dict[str, Any]:
    return {
        "meta": {"creationTimestamp": format_rfc3339(row.at), "type": "PhaseUpdate"},
        "spec": {"phaseUpdate": {"phase": row.phase, "phaseMessage": row.message}},
    }


def _event_record(event: dict[str, Any]) -> dict[str, Any]:
    return {
        "meta": {"creationTimestamp": event["createdAt"], "type": "Event"},
        "spec": {"event": event},
    }
