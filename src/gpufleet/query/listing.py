"""Typed list/count queries over workloads, built from request parameters."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from gpufleet.core.workload_fields import WorkloadField
from gpufleet.query.cursors import Keyset, decode_cursor
from gpufleet.query.errors import QueryError
from gpufleet.query.fields import WORKLOAD_FIELDS
from gpufleet.query.filters import FilterTerm, parse_filters
from gpufleet.query.scope import UNRESTRICTED, WorkloadScope

DEFAULT_SORT = "createdAt"
MAX_LIMIT = 500
DEFAULT_LIMIT = 50
MAX_SEARCH_LENGTH = 256
# Offsets past this are refused: they would only ever mean scanning the whole table.
MAX_OFFSET = 10_000_000


@dataclass(frozen=True, slots=True)
class SortSpec:
    field: WorkloadField
    descending: bool = False


@dataclass(frozen=True, slots=True)
class WorkloadSelection:
    """Which workloads a list, count or telemetry request is about."""

    now: datetime
    filters: tuple[FilterTerm, ...] = ()
    search: str | None = None
    deleted: bool = False
    # What the caller may see at all; applied inside the same SQL statement as the filters.
    scope: WorkloadScope = UNRESTRICTED


@dataclass(frozen=True, slots=True)
class WorkloadPage:
    selection: WorkloadSelection
    sort: SortSpec
    offset: int = 0
    limit: int = DEFAULT_LIMIT
    # Set when a cursor resumes after a row: the page seeks past it through the sort's index.
    after: Keyset | None = None


def build_selection(
    *,
    now: datetime,
    filter_by: Sequence[str] | None,
    search: str | None,
    deleted: bool | None,
    scope: WorkloadScope = UNRESTRICTED,
) -> WorkloadSelection:
    searched = checked_plain_search(search)
    return WorkloadSelection(
        now=now,
        filters=parse_filters(filter_by),
        search=searched,
        deleted=bool(deleted),
        scope=scope,
    )


def checked_search(search: str | None) -> str | None:
    """``search`` lower-cased and stripped (None when empty), or a QueryError if too long."""
    if search is None:
        return None
    if len(search) > MAX_SEARCH_LENGTH:
        raise QueryError("search", f"at most {MAX_SEARCH_LENGTH} characters are allowed")
    return search.strip().lower() or None


def checked_plain_search(search: str | None) -> str | None:
    """``checked_search``, refusing control characters too: stored workload search text joins
    fields with one, so none may be searched for."""
    searched = checked_search(search)
    if search is not None and any(ord(c) < 0x20 for c in search):
        raise QueryError("search", "contains a control character")
    return searched


def checked_offset(offset: int | None) -> int:
    """``offset`` (0 when absent), or a QueryError if out of range."""
    offset = 0 if offset is None else offset
    if not 0 <= offset <= MAX_OFFSET:
        raise QueryError("offset", f"must be between 0 and {MAX_OFFSET}")
    return offset


def checked_limit(limit: int | None) -> int:
    """``limit`` (``DEFAULT_LIMIT`` when absent), or a QueryError if out of range."""
    limit = DEFAULT_LIMIT if limit is None else limit
    if not 1 <= limit <= MAX_LIMIT:
        raise QueryError("limit", f"must be between 1 and {MAX_LIMIT}")
    return limit


def parse_sort(
    fields: Mapping[str, WorkloadField], sort_by: str | None, sort_order: str | None, default: str
) -> SortSpec:
    """The field of ``fields`` to sort by (``default`` when none is named) and the direction."""
    if sort_order not in (None, "asc", "desc"):
        raise QueryError("sortOrder", f"{sort_order!r} is not one of asc, desc")
    field = fields.get(sort_by or default)
    if field is None:
        raise QueryError("sortBy", f"unknown field {sort_by!r}")
    return SortSpec(field, sort_order == "desc")


def build_sort(sort_by: str | None, sort_order: str | None) -> SortSpec:
    return parse_sort(WORKLOAD_FIELDS, sort_by, sort_order, DEFAULT_SORT)


def build_page(
    selection: WorkloadSelection,
    *,
    sort_by: str | None,
    sort_order: str | None,
    offset: int | None,
    limit: int | None,
    cursor: str | None = None,
) -> WorkloadPage:
    """A page by offset, or after the row a ``cursor`` (from the previous page) names."""
    limit = checked_limit(limit)
    sort = build_sort(sort_by, sort_order)
    if cursor is not None:
        if offset:
            raise QueryError("cursor", "cannot be combined with offset")
        resumed = decode_cursor(cursor, selection, sort)
        if isinstance(resumed, Keyset):
            return WorkloadPage(selection, sort, 0, limit, resumed)
        offset = resumed
    return WorkloadPage(selection, sort, checked_offset(offset), limit)
