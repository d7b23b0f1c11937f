"""Typed report list/count queries (compiled to SQL in ``store.reports``); the fields they may
name are ``core.report_fields``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gpufleet.core.report_fields import DEFAULT_REPORT_SORT, REPORT_FIELDS
from gpufleet.query.errors import QueryError
from gpufleet.query.filters import FilterTerm, parse_filters
from gpufleet.query.listing import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    MAX_OFFSET,
    MAX_SEARCH_LENGTH,
    SortSpec,
)


@dataclass(frozen=True, slots=True)
class ReportSelection:
    """Which reports a list or count is about; ``created_by`` set: only that caller's."""

    filters: tuple[FilterTerm, ...] = ()
    search: str | None = None
    created_by: str | None = None


@dataclass(frozen=True, slots=True)
class ReportPage:
    selection: ReportSelection
    sort: SortSpec
    offset: int = 0
    limit: int = DEFAULT_LIMIT


def build_report_selection(
    *, filter_by: Sequence[str] | None, search: str | None, created_by: str | None
) -> ReportSelection:
    if search is not None and len(search) > MAX_SEARCH_LENGTH:
        raise QueryError("search", f"at most {MAX_SEARCH_LENGTH} characters are allowed")
    return ReportSelection(
        filters=parse_filters(filter_by, REPORT_FIELDS),
        search=(search or "").strip() or None,
        created_by=created_by,
    )


def build_report_page(
    selection: ReportSelection,
    *,
    sort_by: str | None,
    sort_order: str | None,
    offset: int | None,
    limit: int | None,
) -> ReportPage:
    offset = 0 if offset is None else offset
    limit = DEFAULT_LIMIT if limit is None else limit
    if not 0 <= offset <= MAX_OFFSET:
        raise QueryError("offset", f"must be between 0 and {MAX_OFFSET}")
    if not 1 <= limit <= MAX_LIMIT:
        raise QueryError("limit", f"must be between 1 and {MAX_LIMIT}")
    if sort_order not in (None, "asc", "desc"):
        raise QueryError("sortOrder", f"{sort_order!r} is not one of asc, desc")
    field = REPORT_FIELDS.get(sort_by or DEFAULT_REPORT_SORT)
    if field is None:
        raise QueryError("sortBy", f"unknown field {sort_by!r}")
    return ReportPage(selection, SortSpec(field, sort_order == "desc"), offset, limit)
