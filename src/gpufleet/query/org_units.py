"""Typed project and department list/count queries, built from request parameters (compiled
to SQL in ``store.org_units``); the fields they may name are ``core.org_unit_fields``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gpufleet.core.org_unit_fields import DEFAULT_ORG_UNIT_SORT
from gpufleet.core.workload_fields import WorkloadField
from gpufleet.query.errors import QueryError
from gpufleet.query.filters import FilterTerm, parse_filters
from gpufleet.query.listing import DEFAULT_LIMIT, MAX_LIMIT, MAX_OFFSET, MAX_SEARCH_LENGTH
from gpufleet.query.scope import UNRESTRICTED, WorkloadScope


@dataclass(frozen=True, slots=True)
class OrgUnitSelection:
    """Which projects (or departments) a list or count is about."""

    filters: tuple[FilterTerm, ...] = ()
    search: str | None = None
    scope: WorkloadScope = UNRESTRICTED


@dataclass(frozen=True, slots=True)
class OrgUnitPage:
    selection: OrgUnitSelection
    sort: WorkloadField
    descending: bool = False
    offset: int = 0
    limit: int = DEFAULT_LIMIT


def build_org_unit_selection(
    fields: Mapping[str, WorkloadField],
    *,
    filter_by: Sequence[str] | None,
    search: str | None = None,
    scope: WorkloadScope = UNRESTRICTED,
) -> OrgUnitSelection:
    if search is not None:
        if len(search) > MAX_SEARCH_LENGTH:
            raise QueryError("search", f"at most {MAX_SEARCH_LENGTH} characters are allowed")
        search = search.strip().lower() or None
    return OrgUnitSelection(parse_filters(filter_by, fields), search, scope)


def build_org_unit_page(
    fields: Mapping[str, WorkloadField],
    selection: OrgUnitSelection,
    *,
    sort_by: str | None,
    sort_order: str | None,
    offset: int | None,
    limit: int | None,
) -> OrgUnitPage:
    offset = 0 if offset is None else offset
    limit = DEFAULT_LIMIT if limit is None else limit
    if not 0 <= offset <= MAX_OFFSET:
        raise QueryError("offset", f"must be between 0 and {MAX_OFFSET}")
    if not 1 <= limit <= MAX_LIMIT:
        raise QueryError("limit", f"must be between 1 and {MAX_LIMIT}")
    if sort_order not in (None, "asc", "desc"):
        raise QueryError("sortOrder", f"{sort_order!r} is not one of asc, desc")
    field = fields.get(sort_by or DEFAULT_ORG_UNIT_SORT)
    if field is None:
        raise QueryError("sortBy", f"unknown field {sort_by!r}")
    return OrgUnitPage(selection, field, sort_order == "desc", offset, limit)
