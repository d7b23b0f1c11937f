"""Typed access-rule and audit-log queries, built from request parameters (no SQL here)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from gpufleet.core.access_fields import (
    ACCESS_RULE_FIELDS,
    AUDIT_FILTER_FIELDS,
    AUDIT_SORT_FIELDS,
    DEFAULT_ACCESS_RULE_SORT,
)
from gpufleet.query.errors import QueryError
from gpufleet.query.filters import FilterTerm, parse_filters, parse_timestamp
from gpufleet.query.listing import SortSpec, checked_offset, checked_plain_search, parse_sort

MAX_AUDIT_SAMPLES = 1000


@dataclass(frozen=True, slots=True)
class AccessRuleSelection:
    """Which access rules a list or count is about."""

    filters: tuple[FilterTerm, ...] = ()
    search: str | None = None
    include_deleted: bool = False
    subject_type: str | None = None
    subject_id_part: str | None = None
    subject_ids: tuple[str, ...] | None = None
    scope_type: str | None = None
    scope_id: str | None = None
    role_id: int | None = None
    cluster_id: str | None = None
    updated_since: datetime | None = None
    # Only rules on these (subject type, subject id) pairs: a caller's own.
    subjects: tuple[tuple[str, str], ...] | None = None
    # A department administrator sees the rules inside its departments only.
    within_departments: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class AccessRulePage:
    selection: AccessRuleSelection
    sort: SortSpec
    offset: int = 0
    limit: int | None = None


def split_list(values: Sequence[str] | None) -> tuple[str, ...] | None:
    """A list parameter sent comma-separated (``explode: false``) or repeated."""
    if values is None:
        return None
    return tuple(part for value in values for part in value.split(",") if part)


def build_access_rule_selection(
    *,
    filter_by: Sequence[str] | None = None,
    search: str | None = None,
    include_deleted: bool | None = None,
    last_updated: str | None = None,
    **narrowing,
) -> AccessRuleSelection:
    """The selection of a list or count; ``narrowing`` holds the dedicated parameters."""
    updated_since = None
    if last_updated is not None:
        updated_since = parse_timestamp(last_updated, parameter="lastUpdated")
    return AccessRuleSelection(
        filters=parse_filters(filter_by, ACCESS_RULE_FIELDS),
        search=checked_plain_search(search),
        include_deleted=bool(include_deleted),
        updated_since=updated_since,
        **narrowing,
    )


def build_access_rule_page(
    selection: AccessRuleSelection,
    *,
    sort_by: str | None = None,
    sort_order: str | None = None,
    offset: int | None = None,
    limit: int | None = None,
) -> AccessRulePage:
    return AccessRulePage(
        selection,
        parse_sort(ACCESS_RULE_FIELDS, sort_by, sort_order, DEFAULT_ACCESS_RULE_SORT),
        checked_offset(offset),
        limit,
    )


@dataclass(frozen=True, slots=True)
class AuditQuery:
    start: datetime
    end: datetime
    filters: tuple[FilterTerm, ...] = ()
    sort_by: str = "timestamp"
    descending: bool = False
    offset: int = 0
    limit: int = 20


def build_audit_query(
    *,
    start: datetime,
    end: datetime,
    filter_by: Sequence[str] | None,
    sort_by: str | None = None,
    sort_order: str | None = None,
    offset: int | None = None,
    limit: int = 20,
) -> AuditQuery:
    if end < start:
        raise QueryError("end", "must not be before start")
    if sort_by is not None and sort_by not in AUDIT_SORT_FIELDS:
        raise QueryError("sortBy", f"{sort_by!r} is not one of {', '.join(AUDIT_SORT_FIELDS)}")
    if sort_order not in (None, "asc", "desc"):
        raise QueryError("sortOrder", f"{sort_order!r} is not one of asc, desc")
    return AuditQuery(
        start=start,
        end=end,
        filters=parse_filters(filter_by, AUDIT_FILTER_FIELDS),
        sort_by=sort_by or "timestamp",
        descending=sort_order == "desc",
        offset=checked_offset(offset),
        limit=limit,
    )
