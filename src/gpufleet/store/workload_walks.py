"""Sorted pages read as the merge of several index walks, where one walk cannot give the order.

A total of time in a phase grows with the clock for the workloads in that phase and stands
still for the others, so no single index holds its order; on SQLite a field that may be
missing sorts it last, which its index (NULLs first) does not hold either. Either order is a
few index walks, each already in order: the listing reads ``offset + limit + 1`` rows from
each and merges them (``store.workloads``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from gpufleet.core.workload_fields import WORKLOAD_FIELDS_BY_NAME, WorkloadField
from gpufleet.query.cursors import Keyset
from gpufleet.query.listing import WorkloadPage
from gpufleet.store.dialect import without_index
from gpufleet.store.tables import anchor_index, before_index, sort_index, workloads
from gpufleet.store.workload_filters import (
    id_key_of,
    now_second,
    pinned_phase,
    stretch_began_by,
)

_DELETED_AT = WORKLOAD_FIELDS_BY_NAME["deletedAt"]


@dataclass(frozen=True, slots=True)
class Walk:
    """One walk: ``rows`` chooses its workloads, ``keys`` is their order along ``index``
    (None: a small range the planner finds itself), ``value`` their sort value."""

    rows: sa.ColumnElement[bool]
    keys: tuple[sa.ColumnElement[Any], ...]
    value: sa.ColumnElement[Any]
    index: str | None


def merged_walks(dialect: str, page: WorkloadPage) -> list[Walk] | None:
    """The walks whose merge is the page's order, or None where one index walk gives it."""
    field = page.sort.field
    if field.time_dependent:
        return _timed_walks(dialect, page)
    if dialect == "sqlite" and _sorts_missing_last(field):
        return _nulls_last_walks(field, page.sort.descending, page.after)
    return None


def merge_sorts_missing(dialect: str, field: WorkloadField) -> bool:
    """Whether the merged walks of ``field`` yield missing values, sorted as the largest."""
    return dialect == "sqlite" and _sorts_missing_last(field)


def _sorts_missing_last(field: WorkloadField) -> bool:
    return (
        field.sort_indexed and field is not _DELETED_AT and bool(workloads.c[field.column].nullable)
    )


def _timed_walks(dialect: str, page: WorkloadPage) -> list[Walk]:
    """The walks of a sort by a total of time in a phase.

    The workloads in the timed phase walk their anchor's partial index (their totals are the
    anchor plus now); the others walk their stored seconds' partial index. A phase that
    began after now's second (a clock ahead of the server's) counts nothing yet: those few
    come from the ``phase_updated_at`` index, ordered by their stored seconds. A ``phase==``
    filter leaves out the walks it rules out.
    """
    field, now = page.sort.field, page.selection.now
    stored, anchor, row_key = (
        workloads.c[field.column],
        workloads.c.seconds_anchor,
        workloads.c.id_key,
    )
    began_by = sa.literal(stretch_began_by(now), workloads.c.phase_updated_at.type)
    # Written into the SQL, not bound: the planner proves a partial index (phase = 'Running')
    # usable from the statement's text.
    phase = sa.literal_column(f"'{field.timed_phase}'", workloads.c.phase.type)
    in_phase = workloads.c.phase == phase
    stretching = Walk(
        sa.and_(in_phase, without_index(dialect, workloads.c.phase_updated_at) < began_by),
        (anchor, row_key),
        anchor + sa.literal(now_second(now), sa.BigInteger),
        anchor_index(field),
    )
    others = Walk(workloads.c.phase != phase, (stored, row_key), stored, before_index(field))
    late = Walk(
        sa.and_(
            without_index(dialect, workloads.c.phase) == phase,
            workloads.c.phase_updated_at >= began_by,
        ),
        (stored, row_key),
        stored,
        None,
    )
    pinned = pinned_phase(page.selection)
    if pinned is None:
        return [stretching, others, late]
    return [stretching, late] if pinned == field.timed_phase else [others]


def _nulls_last_walks(field: WorkloadField, descending: bool, after: Keyset | None) -> list[Walk]:
    """The workloads with a value along the index, and those without it by id (the same
    index's first range); a cursor's row leaves out the walk it is past and seeks in the other.
    Missing values sort as the largest: last ascending, first descending."""
    column, row_key = workloads.c[field.column], workloads.c.id_key
    index = sort_index(field.column)
    valued = Walk(column.is_not(None), (column, row_key), column, index)
    missing = Walk(column.is_(None), (row_key,), column, index)
    if after is None:
        return [valued, missing]
    after_key = id_key_of(after.id)
    if after.value is None:
        # Past the row without a value: only the rest of that walk (ascending, it is last).
        beyond = row_key < after_key if descending else row_key > after_key
        rest = Walk(sa.and_(missing.rows, beyond), missing.keys, column, index)
        return [rest, valued] if descending else [rest]
    key = sa.tuple_(column, row_key)
    bound = sa.tuple_(sa.literal(after.value, column.type), after_key)
    beyond = key < bound if descending else key > bound
    rest = Walk(sa.and_(valued.rows, beyond), valued.keys, column, index)
    return [rest] if descending else [rest, missing]
