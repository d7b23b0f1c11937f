"""Typed queries over the events of every workload: the selection and page a request asks for
(compiled to SQL in ``store.fleet_events``), each parameter checked and named when wrong."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from gpufleet.query.choices import by_value, parse_choices, parse_uuid_choice
from gpufleet.query.errors import QueryError
from gpufleet.query.filters import parse_timestamp
from gpufleet.query.listing import DEFAULT_LIMIT, checked_limit, checked_offset
from gpufleet.query.scope import UNRESTRICTED, WorkloadScope
from gpufleet.schemas.events import EventType

# The longest project id and event reason the store holds: a longer one matches nothing.
MAX_PROJECT_ID_LENGTH = 64
MAX_REASON_LENGTH = 128


@dataclass(frozen=True, slots=True)
class EventSelection:
    """Which events a list or count is about; ``scope`` is the caller's readable workloads."""

    since: datetime | None = None
    until: datetime | None = None
    # Empty: every type.
    types: tuple[EventType, ...] = ()
    cluster_id: str | None = None
    project_id: str | None = None
    reason: str | None = None
    workload_id: str | None = None
    scope: WorkloadScope = UNRESTRICTED


@dataclass(frozen=True, slots=True)
class EventPage:
    """One page of a selection, newest first (the event id breaking ties)."""

    selection: EventSelection
    offset: int = 0
    limit: int = DEFAULT_LIMIT


def _checked_text(parameter: str, value: str | None, longest: int) -> str | None:
    """A value compared for equality: absent when empty, refused when it could match nothing
    stored (too long) or cannot be sent to the database (a NUL character)."""
    if value is None or value == "":
        return None
    if len(value) > longest:
        raise QueryError(parameter, f"at most {longest} characters are allowed")
    if "\x00" in value:
        raise QueryError(parameter, "contains a NUL character")
    return value


def _time(parameter: str, value: str | None) -> datetime | None:
    return parse_timestamp(value, parameter=parameter) if value else None


def build_event_selection(
    *,
    since: str | None = None,
    until: str | None = None,
    types: Sequence[str] | None = None,
    cluster_id: str | None = None,
    project_id: str | None = None,
    reason: str | None = None,
    workload_id: str | None = None,
    scope: WorkloadScope = UNRESTRICTED,
) -> EventSelection:
    """The selection the request's parameters name; a QueryError names the first wrong one."""
    begin, end = _time("since", since), _time("until", until)
    if begin is not None and end is not None and end <= begin:
        raise QueryError("until", "must be after since")
    return EventSelection(
        since=begin,
        until=end,
        types=parse_choices("type", types, by_value(EventType)),
        cluster_id=parse_uuid_choice("clusterId", cluster_id or None),
        project_id=_checked_text("projectId", project_id, MAX_PROJECT_ID_LENGTH),
        reason=_checked_text("reason", reason, MAX_REASON_LENGTH),
        workload_id=parse_uuid_choice("workloadId", workload_id or None),
        scope=scope,
    )


def build_event_page(
    selection: EventSelection, *, offset: int | None, limit: int | None
) -> EventPage:
    return EventPage(selection, checked_offset(offset), checked_limit(limit))
