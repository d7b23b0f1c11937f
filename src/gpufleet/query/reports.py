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
    MAX_SEARCH_LENGTH,
    SortSpec,
    checked_limit,
    checked_offset,
    parse_sort,
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
    offset, limit = checked_offset(offset), checked_limit(limit)
    sort = parse_sort(REPORT_FIELDS, sort_by, sort_order, DEFAULT_REPORT_SORT)
    return ReportPage(selection, sort, offset, limit)
