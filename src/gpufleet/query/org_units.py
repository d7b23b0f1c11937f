"""Typed project and department list/count queries, built from request parameters (compiled
to SQL in ``store.org_units``); the fields they may name are ``core.org_unit_fields``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gpufleet.core.org_unit_fields import DEFAULT_ORG_UNIT_SORT
from gpufleet.core.workload_fields import WorkloadField
from gpufleet.query.filters import FilterTerm, parse_filters
from gpufleet.query.listing import (
    DEFAULT_LIMIT,
    checked_limit,
    checked_offset,
    checked_search,
    parse_sort,
)
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
    return OrgUnitSelection(parse_filters(filter_by, fields), checked_search(search), scope)


def build_org_unit_page(
    fields: Mapping[str, WorkloadField],
    selection: OrgUnitSelection,
    *,
    sort_by: str | None,
    sort_order: str | None,
    offset: int | None,
    limit: int | None,
) -> OrgUnitPage:
    offset, limit = checked_offset(offset), checked_limit(limit)
    sort = parse_sort(fields, sort_by, sort_order, DEFAULT_ORG_UNIT_SORT)
    return OrgUnitPage(selection, sort.field, sort.descending, offset, limit)
