"""Typed pod list/count queries: the selection and page a request asks for (compiled to SQL in
``store.pods``); the fields they may name are ``core.pod_fields``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gpufleet.core.pod_fields import DEFAULT_POD_SORT, POD_FIELDS
from gpufleet.core.workload_fields import WorkloadField
from gpufleet.query.errors import QueryError
from gpufleet.query.filters import FilterTerm, parse_filters
from gpufleet.query.listing import DEFAULT_LIMIT, MAX_LIMIT, MAX_OFFSET, MAX_SEARCH_LENGTH
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
    if search is not None:
        if len(search) > MAX_SEARCH_LENGTH:
            raise QueryError("search", f"at most {MAX_SEARCH_LENGTH} characters are allowed")
        search = search.strip().lower() or None
    return PodSelection(
        filters=parse_filters(filter_by, POD_FIELDS),
        search=search,
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
    offset = 0 if offset is None else offset
    limit = DEFAULT_LIMIT if limit is None else limit
    if not 0 <= offset <= MAX_OFFSET:
        raise QueryError("offset", f"must be between 0 and {MAX_OFFSET}")
    if not 1 <= limit <= MAX_LIMIT:
        raise QueryError("limit", f"must be between 1 and {MAX_LIMIT}")
    if sort_order not in (None, "asc", "desc"):
        raise QueryError("sortOrder", f"{sort_order!r} is not one of asc, desc")
    field = POD_FIELDS.get(sort_by or DEFAULT_POD_SORT)
    if field is None:
        raise QueryError("sortBy", f"unknown field {sort_by!r}")
    return PodPage(selection, field, sort_order == "desc", offset, limit, full)
