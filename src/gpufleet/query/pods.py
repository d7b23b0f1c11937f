"""Typed pod list/count queries: the selection and page a request asks for (compiled to SQL in
``store.pods``); the fields they may name are ``core.pod_fields``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gpufleet.core.pod_fields import DEFAULT_POD_SORT, POD_FIELDS
from gpufleet.core.workload_fields import WorkloadField
from gpufleet.query.errors import QueryError
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
class PodSelection:
    """Which pods a list or count is about; ``scope`` is the caller's readable workloads."""

    filters: tuple[FilterTerm, ...] = ()
    search: str | None = None
    deleted: bool = False
    # None: all; True: only completed pods; False: only pods not completed.
    completed: bool | None = None
    workload_id: str | None = None
    scope: WorkloadScope = UNRESTRICTED


@dataclass(frozen=True, slots=True)
class PodPage:
    selection: PodSelection
    sort: WorkloadField
    descending: bool = False
    offset: int = 0
    limit: int = DEFAULT_LIMIT
    # Adds projectName and workloadName.
    full: bool = False


def _completed(value: str | None) -> bool | None:
    text = (value or "all").strip().lower()
    if text in ("", "all"):
        return None
    if text in ("true", "false"):
        return text == "true"
    raise QueryError("completed", f"{value!r} is not one of true, false, all")


def build_pod_selection(
    *,
    filter_by: Sequence[str] | None,
    search: str | None,
    deleted: bool | None,
    completed: str | None = None,
    workload_id: str | None = None,
    scope: WorkloadScope = UNRESTRICTED,
) -> PodSelection:
    return PodSelection(
        filters=parse_filters(filter_by, POD_FIELDS),
        search=checked_search(search),
        deleted=bool(deleted),
        completed=_completed(completed),
        workload_id=workload_id,
        scope=scope,
    )


def build_pod_page(
    selection: PodSelection,
    *,
    sort_by: str | None,
    sort_order: str | None,
    offset: int | None,
    limit: int | None,
    full: bool = False,
) -> PodPage:
    offset, limit = checked_offset(offset), checked_limit(limit)
    sort = parse_sort(POD_FIELDS, sort_by, sort_order, DEFAULT_POD_SORT)
    return PodPage(selection, sort.field, sort.descending, offset, limit, full)
