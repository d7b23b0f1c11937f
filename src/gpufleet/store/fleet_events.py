"""Events across workloads: the fleet-wide list and count, the caller's scope in the statement.

An event is seen exactly when its workload is. The page walks the events' time index newest
first and stops after it; every filter and the scope are tested on the rows of that walk,
except a named workload's, whose own index yields the same order.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gpufleet.query.events import EventPage, EventSelection
from gpufleet.store.dialect import without_index
from gpufleet.store.events import wire_event
from gpufleet.store.tables import workload_events, workloads
from gpufleet.store.workload_filters import scope_condition

_EVENTS = workload_events.c
# The workload columns each listed event carries.
_WORKLOAD_COLUMNS = (
    workloads.c.name.label("workload_name"),
    workloads.c.project_id,
    workloads.c.project_name,
)


def _needs_workloads(selection: EventSelection) -> bool:
    return selection.project_id is not None or not selection.scope.everything


def _conditions(dialect: str, selection: EventSelection) -> list[sa.ColumnElement[bool]]:
    """The WHERE of a list or count. Workload columns are tested row by row (never through
    their indexes, which would gather every match and sort it): see ``without_index``."""
    conditions: list[sa.ColumnElement[bool]] = []
    if selection.since is not None:
        conditions.append(_EVENTS.created_at >= selection.since)
    if selection.until is not None:
        conditions.append(_EVENTS.created_at < selection.until)
    if selection.types:
        conditions.append(_EVENTS.type.in_([kind.value for kind in selection.types]))
    if selection.cluster_id is not None:
        conditions.append(_EVENTS.cluster_id == selection.cluster_id)
    if selection.reason is not None:
        conditions.append(_EVENTS.reason == selection.reason)
    if selection.workload_id is not None:
        conditions.append(_EVENTS.workload_id == selection.workload_id)
    if selection.project_id is not None:
        project = without_index(dialect, workloads.c.project_id)
        conditions.append(project == selection.project_id)
    if not selection.scope.everything:
        conditions.append(scope_condition(selection.scope, dialect=dialect))
    return conditions


def _joined() -> Any:
    return workload_events.join(workloads, workloads.c.id == _EVENTS.workload_id)


def listing_statement(dialect: str, page: EventPage) -> sa.Select:
    """One page of events, newest first, and one more row to tell whether a next page exists."""
    return (
        sa.select(workload_events, *_WORKLOAD_COLUMNS)
        .select_from(_joined())
        .where(*_conditions(dialect, page.selection))
        .order_by(_EVENTS.created_at.desc(), _EVENTS.id.desc())
        .offset(page.offset)
        .limit(page.limit + 1)
    )


def count_statement(dialect: str, selection: EventSelection) -> sa.Select:
    source = _joined() if _needs_workloads(selection) else workload_events
    return sa.select(sa.func.count()).select_from(source).where(*_conditions(dialect, selection))


def _wire(row: Any) -> dict[str, Any]:
    return {
        **wire_event(row),
        # Not ``row.count``: a row is a tuple, whose ``count`` is a method.
        "count": row._mapping["count"],
        "workloadId": row.workload_id,
        "workloadName": row.workload_name,
        "projectId": row.project_id,
        "projectName": row.project_name,
    }


def list_fleet_events(conn: Connection, page: EventPage) -> tuple[list[dict[str, Any]], int | None]:
    """One page of the selected events in wire shape, and the next page's offset."""
    rows = conn.execute(listing_statement(conn.dialect.name, page)).all()
    next_offset = page.offset + page.limit if len(rows) > page.limit else None
    return [_wire(row) for row in rows[: page.limit]], next_offset


def count_fleet_events(conn: Connection, selection: EventSelection) -> int:
    return int(conn.execute(count_statement(conn.dialect.name, selection)).scalar_one())
