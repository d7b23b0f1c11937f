"""Workload queries: list, count, get and bulk insert, written once for both dialects."""

from __future__ import annotations

import functools
import operator
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gpufleet.core.workload_fields import PATTERNS, WORKLOAD_FIELDS_BY_NAME
from gpufleet.query.cursors import Keyset, encode_cursor
from gpufleet.query.listing import WorkloadPage, WorkloadSelection
from gpufleet.query.scope import UNRESTRICTED, WorkloadScope
from gpufleet.store.dialect import indexed_by
from gpufleet.store.tables import workload_nodepools, workloads
from gpufleet.store.workload_documents import (
    NO_HISTORY,
    SecondsBefore,
    nodepool_rows,
    workload_listing_json,
    workload_row,
    workload_wire,
)
from gpufleet.store.workload_filters import (
    keyset_condition,
    now_second,
    order_by,
    row_key,
    scope_condition,
    selection_conditions,
    selection_parts,
    stretch_began_by,
    total_seconds,
    total_seconds_at,
)
from gpufleet.store.workload_walks import Walk, merge_sorts_missing, merged_walks

# Columns a listing never reads: search_text, the id's key and the anchor of the time totals
# are internal.
_NOT_LISTED = frozenset({"search_text", "id_key", "seconds_anchor"})


def _dialect(conn: Connection) -> str:
    return conn.dialect.name


_PENDING = WORKLOAD_FIELDS_BY_NAME["totalPendingTimeSeconds"]
_RUNNING = WORKLOAD_FIELDS_BY_NAME["totalRunningTimeSeconds"]


def _totals(dialect: str, now: datetime) -> list[sa.ColumnElement[int]]:
    return [
        total_seconds(dialect, now, _PENDING).label("total_pending"),
        total_seconds(dialect, now, _RUNNING).label("total_running"),
    ]


def _to_wire(row: Mapping[str, Any], *, detailed: bool = False) -> dict[str, Any]:
    return workload_wire(
        row,
        total_pending_seconds=row["total_pending"],
        total_running_seconds=row["total_running"],
        detailed=detailed,
    )


def listing_statement(dialect: str, page: WorkloadPage) -> sa.Select:
    """The one statement that reads a page of workloads (and one more row, to tell if a next
    page exists)."""
    selection = page.selection
    listed_columns = [c for c in workloads.c if c.key not in _NOT_LISTED]
    ordering = order_by(dialect, selection.now, page.sort)
    statement = sa.select(*listed_columns, *_totals(dialect, selection.now))
    conditions = selection_conditions(dialect, selection, page.sort)
    walks = merged_walks(dialect, page)
    if walks is not None:
        return statement.select_from(_merged_page(dialect, conditions, page, walks)).order_by(
            *ordering
        )
    if page.after is not None:
        conditions.append(keyset_condition(page.sort, page.after))
    if page.offset or _patterns_on_the_sort_column(page):
        statement = _deferred_page(statement, dialect, conditions, ordering, page)
    else:
        statement = statement.where(*conditions).limit(page.limit + 1)
    return statement.order_by(*ordering)


@dataclass(frozen=True, slots=True)
class ListedPage:
    """A page of workloads as wire JSON, and where the next one starts (None on the last)."""

    items: list[bytes]
    next_offset: int | None
    next_cursor: str | None


def list_workloads(conn: Connection, page: WorkloadPage) -> ListedPage:
    """One page of workloads, each as its wire JSON, with the next page's offset and cursor.

    Rows go straight to JSON bytes (see ``workload_listing_json``): a page of 500 is the hot path.
    A page reached through a keyset cursor has no offset to report.
    """
    rows = conn.execute(listing_statement(_dialect(conn), page)).mappings().all()
    has_next = len(rows) > page.limit
    items = [
        workload_listing_json(
            row,
            total_pending_seconds=row["total_pending"],
            total_running_seconds=row["total_running"],
        )
        for row in rows[: page.limit]
    ]
    if not has_next:
        return ListedPage(items, None, None)
    next_offset = page.offset + page.limit
    last = rows[page.limit - 1]
    indexed = page.sort.field.sort_indexed
    after = Keyset(last[page.sort.field.column], last["id"]) if indexed else None
    cursor = encode_cursor(page.selection, page.sort, after=after, offset=next_offset)
    return ListedPage(items, None if page.after is not None else next_offset, cursor)


def _patterns_on_the_sort_column(page: WorkloadPage) -> bool:
    """Whether every filter of the page is a pattern (contains, starts or ends with) on the
    column it is sorted by.

    Both databases test such a pattern on each row they read along the sort's index, one table
    lookup per index entry, matching or not; asked for the keys alone they test it on the index
    entries (a covering, index-only scan) and read the rows of the page only.
    """
    selection = page.selection
    return (
        bool(selection.filters)
        and not selection.search
        and selection.scope.everything
        and all(t.field is page.sort.field and t.operator in PATTERNS for t in selection.filters)
    )


def _deferred_page(
    statement: sa.Select,
    dialect: str,
    conditions: list[sa.ColumnElement[bool]],
    ordering: list,
    page: WorkloadPage,
) -> sa.Select:
    """``statement`` reading the workloads of a deep page, found through their keys first (a
    deferred join).

    Skipping ``offset`` rows then only walks the sort's index (or sorts narrow key rows)
    instead of carrying every skipped row's columns and document; the full rows are read
    for the page alone.
    """
    key = row_key(dialect)
    keys = (
        sa.select(key.label("row_key"))
        .where(*conditions)
        .order_by(*ordering)
        .offset(page.offset)
        .limit(page.limit + 1)
    )
    if dialect == "postgresql":
        # The keys as one array, each looked up through the key's index: joined to them
        # instead, a table of some thousands is hashed whole, twice the time of the page.
        return statement.where(key == sa.any_(sa.func.array(keys.scalar_subquery())))
    page_keys = keys.subquery("page_keys")
    return statement.select_from(workloads.join(page_keys, key == page_keys.c.row_key))


def _merged_page(
    dialect: str, conditions: list[sa.ColumnElement[bool]], page: WorkloadPage, walks: list[Walk]
) -> sa.Join:
    """The workloads of a page whose order is the merge of index walks (see
    ``store.workload_walks``): each walk yields its rows in order and stops after as many as
    the page reaches (offset, limit and one more); the page is the first of their merge."""
    descending = page.sort.descending

    def ordered(keys: Sequence[sa.ColumnElement[Any]]) -> list[sa.ColumnElement[Any]]:
        return [key.desc() if descending else key for key in keys]

    key = row_key(dialect)
    branches = []
    for walk in walks:
        branch = (
            sa.select(workloads.c.id_key, walk.value.label("value"), key.label("row_key"))
            .where(*conditions, walk.rows)
            .order_by(*ordered(walk.keys))
            .limit(page.offset + page.limit + 1)
        )
        if walk.index is not None:
            branch = indexed_by(dialect, branch, workloads, walk.index)
        branches.append(branch.subquery())
    merged = sa.union_all(*(sa.select(b.c.id_key, b.c.value, b.c.row_key) for b in branches))
    merged = merged.subquery("merged")
    keys = [merged.c.value, merged.c.id_key]
    if merge_sorts_missing(dialect, page.sort.field):
        # A missing value is the largest: after every value ascending, before them descending.
        keys.insert(0, merged.c.value.is_(None))
    page_keys = (
        sa.select(merged.c.row_key)
        .order_by(*ordered(keys))
        .offset(page.offset)
        .limit(page.limit + 1)
        .subquery("page_keys")
    )
    return workloads.join(page_keys, key == page_keys.c.row_key)


def count_statement(dialect: str, selection: WorkloadSelection) -> sa.Select:
    """The count of a selection: the sum of its parts' counts, each through its own index
    (see ``selection_parts``).

    Only a bound on a total depends on the request's time; without one, the statement is
    built once for its filters, search, ``deleted`` and scope and then reused, its values in
    it (building and keying it anew was a tenth of a count's time in Python).
    """
    if any(term.field.time_dependent for term in selection.filters):
        return _count_statement(dialect, selection)
    # No time at all, rather than any one: a condition reading it would fail, not go stale.
    return _timeless_count_statement(dialect, replace(selection, now=None))  # type: ignore[arg-type]


@functools.lru_cache(maxsize=256)
def _timeless_count_statement(dialect: str, selection: WorkloadSelection) -> sa.Select:
    return _count_statement(dialect, selection)


def _count_statement(dialect: str, selection: WorkloadSelection) -> sa.Select:
    counts = []
    for part in selection_parts(dialect, selection):
        count = sa.select(sa.func.count()).select_from(workloads).where(*part.conditions)
        if part.index is not None:
            count = indexed_by(dialect, count, workloads, part.index)
        counts.append(count)
    if len(counts) == 1:
        return counts[0]
    return sa.select(functools.reduce(operator.add, (c.scalar_subquery() for c in counts)))


def count_workloads(conn: Connection, selection: WorkloadSelection) -> int:
    return int(conn.execute(count_statement(_dialect(conn), selection)).scalar_one())


def _workload_by_id() -> sa.Select:
    """One workload with its totals, ``now`` and the id bound when it runs."""
    second = sa.bindparam("now_second", type_=sa.BigInteger)
    began_by = sa.bindparam("stretch_began_by", type_=workloads.c.phase_updated_at.type)
    return sa.select(
        workloads,
        total_seconds_at(_PENDING, second, began_by).label("total_pending"),
        total_seconds_at(_RUNNING, second, began_by).label("total_running"),
    ).where(workloads.c.id == sa.bindparam("workload_id"))


# Built once: building and keying it anew took a third of a get's time in Python.
_WORKLOAD_BY_ID = _workload_by_id()


def get_workload(
    conn: Connection, workload_id: str, now: datetime, scope: WorkloadScope = UNRESTRICTED
) -> dict[str, Any] | None:
    """The detailed wire shape of one workload, deleted or not; None if unknown or out of scope."""
    statement = _WORKLOAD_BY_ID
    if not scope.everything:
        statement = statement.where(scope_condition(scope))
    parameters = {
        "workload_id": workload_id,
        "now_second": now_second(now),
        "stretch_began_by": stretch_began_by(now),
    }
    row = conn.execute(statement, parameters).mappings().first()
    return None if row is None else _to_wire(row, detailed=True)


def insert_workloads(
    conn: Connection,
    items: Iterable[Mapping[str, Any]],
    seconds_before: Mapping[str, SecondsBefore] | None = None,
) -> int:
    """Bulk-insert new workloads given in wire shape; returns how many.

    ``seconds_before`` maps the id of a workload whose history is already known (the demo's)
    to the time it spent pending and running before; the others start from nothing.
    """
    known = seconds_before or {}
    rows: list[dict[str, Any]] = []
    memberships: list[dict[str, str]] = []
    for item in items:
        rows.append(workload_row(item, known.get(str(item["id"]), NO_HISTORY)))
        memberships.extend(nodepool_rows(item))
    if rows:
        conn.execute(workloads.insert(), rows)
    if memberships:
        conn.execute(workload_nodepools.insert(), memberships)
    return len(rows)
