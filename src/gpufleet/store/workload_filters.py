"""Compiling typed workload selections (``query.listing``) into SQL conditions and orderings.

List, count and telemetry all select workloads through ``selection_conditions``, so a filter
means the same thing on every endpoint.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from gpufleet.core.times import to_ms
from gpufleet.core.workload_fields import (
    WORKLOAD_FIELDS_BY_NAME,
    FieldKind,
    Operator,
    WorkloadField,
)
from gpufleet.query.cursors import Keyset
from gpufleet.query.filters import FilterTerm
from gpufleet.query.listing import SortSpec, WorkloadSelection
from gpufleet.query.scope import WorkloadScope
from gpufleet.store.dialect import without_index
from gpufleet.store.tables import (
    anchor_index,
    before_index,
    sort_index,
    workload_nodepools,
    workloads,
)

_NEGATIVE = {Operator.NE: Operator.EQ, Operator.NOT_CONTAINS: Operator.CONTAINS}
_DELETED_AT = WORKLOAD_FIELDS_BY_NAME["deletedAt"]
_PHASE = WORKLOAD_FIELDS_BY_NAME["phase"]
_RANGE_OPERATORS = (Operator.EQ, Operator.LE, Operator.GE)


def now_second(now: datetime) -> int:
    return to_ms(now) // 1000


def stretch_began_by(now: datetime) -> datetime:
    """A phase updated before this counts toward its total at ``now`` (in now's second or
    earlier)."""
    return datetime.fromtimestamp(now_second(now) + 1, UTC)


def total_seconds(dialect: str, now: datetime, field: WorkloadField) -> sa.ColumnElement[int]:
    """Seconds in a phase: what was accumulated before, plus the current stretch if in it.

    The stretch counts whole seconds of the clock, from the second the phase began to the
    second of ``now`` (none if it began later): then the total is the workload's
    ``seconds_anchor`` plus ``now``'s epoch second, which the anchor's index orders.
    """
    del dialect  # the anchor is computed by the database, alike on both
    return total_seconds_at(
        field,
        sa.literal(now_second(now), sa.BigInteger),
        sa.literal(stretch_began_by(now), workloads.c.phase_updated_at.type),
    )


def total_seconds_at(
    field: WorkloadField, second: sa.ColumnElement[int], began_by: sa.ColumnElement[datetime]
) -> sa.ColumnElement[int]:
    """``total_seconds`` with now's epoch second and ``stretch_began_by(now)`` given as
    expressions: bound parameters, for a statement built once and run at any ``now``."""
    in_stretch = sa.and_(
        workloads.c.phase == field.timed_phase, workloads.c.phase_updated_at < began_by
    )
    return sa.case(
        (in_stretch, workloads.c.seconds_anchor + second), else_=workloads.c[field.column]
    )


def _total_condition(
    dialect: str, now: datetime, field: WorkloadField, operator: Operator, value: float
) -> sa.ColumnElement[bool]:
    """A bound on a total, as ranges of the indexes a sort by it walks (see
    ``store.workload_walks``)."""
    if operator not in _RANGE_OPERATORS:
        return compare(total_seconds(dialect, now, field), operator, _typed_number(field, value))
    return sa.or_(*(rows for rows, _ in _total_ranges(dialect, now, field, operator, value)))


@dataclass(frozen=True, slots=True)
class Part:
    """One disjoint part of a selection: its WHERE, and the index that finds its rows (None:
    the planner's choice)."""

    conditions: list[sa.ColumnElement[bool]]
    index: str | None = None


def _total_ranges(
    dialect: str, now: datetime, field: WorkloadField, operator: Operator, value: float
) -> list[tuple[sa.ColumnElement[bool], str]]:
    """A range of a total as three disjoint ranges, each of one index: the workloads in the
    timed phase by their anchor, the others by their stored seconds, and the few whose phase
    began after now's second (their stored seconds) by the time it began."""
    shifted = _typed_number(field, value - now_second(now))
    bound = _typed_number(field, value)
    stored = workloads.c[field.column]
    began = workloads.c.phase_updated_at
    began_by = sa.literal(stretch_began_by(now), began.type)
    # Written into the SQL, not bound: the planner proves a partial index (phase = 'Running')
    # usable from the statement's text.
    phase = sa.literal_column(f"'{field.timed_phase}'", workloads.c.phase.type)
    in_phase = workloads.c.phase == phase
    return [
        (
            sa.and_(
                in_phase,
                without_index(dialect, began) < began_by,
                compare(workloads.c.seconds_anchor, operator, shifted),
            ),
            anchor_index(field),
        ),
        (
            sa.and_(workloads.c.phase != phase, compare(stored, operator, bound)),
            before_index(field),
        ),
        (
            sa.and_(
                without_index(dialect, workloads.c.phase) == phase,
                began >= began_by,
                compare(without_index(dialect, stored), operator, bound),
            ),
            sort_index(began.name),
        ),
    ]


def selection_parts(dialect: str, selection: WorkloadSelection) -> list[Part]:
    """The WHERE of an unsorted selection (a count, telemetry) as disjoint parts: each is
    ``selection_conditions`` with one part of a range on a total in place of the range.

    As one OR of three ranges neither planner uses the ranges' indexes (SQLite takes the
    phase index for the parts in the phase, PostgreSQL scans the table), so each part is
    read on its own through its index. A selection without such a range is one part.
    """
    ranged = next(
        (t for t in selection.filters if t.field.time_dependent and t.operator in _RANGE_OPERATORS),
        None,
    )
    if ranged is None:
        return [Part(selection_conditions(dialect, selection))]
    rest = [t for t in selection.filters if t is not ranged]
    base = selection_conditions(dialect, replace(selection, filters=tuple(rest)))
    ranges = _total_ranges(dialect, selection.now, ranged.field, ranged.operator, ranged.value)
    return [Part([*base, rows], index) for rows, index in ranges]


def _typed_number(field: WorkloadField, value: Any) -> sa.ColumnElement[Any]:
    if field.kind is FieldKind.INTEGER and float(value).is_integer() and abs(value) < 2**62:
        # An integral bound compares against the integer column as is, keeping its index usable.
        return sa.literal(int(value), sa.BigInteger)
    return sa.literal(value, sa.Float)


def field_expression(dialect: str, now: datetime, field: WorkloadField) -> sa.ColumnElement[Any]:
    if field.time_dependent:
        return total_seconds(dialect, now, field)
    return workloads.c[field.column]


def compare(expression: sa.ColumnElement[Any], operator: Operator, value: Any):
    """One filter operator applied to a column; negations also match NULL."""
    match operator:
        case Operator.EQ:
            return expression == value
        case Operator.NE:
            return sa.or_(expression.is_(None), expression != value)
        case Operator.LE:
            return expression <= value
        case Operator.GE:
            return expression >= value
        case Operator.CONTAINS:
            return expression.contains(value, autoescape=True)
        case Operator.NOT_CONTAINS:
            return sa.or_(expression.is_(None), ~expression.contains(value, autoescape=True))
        case Operator.STARTS_WITH:
            return expression.startswith(value, autoescape=True)
        case Operator.ENDS_WITH:
            return expression.endswith(value, autoescape=True)
    raise AssertionError(operator)  # pragma: no cover - the enum is exhaustive


def term_condition(
    dialect: str, now: datetime, term: FilterTerm, walked: WorkloadField | None = None
) -> sa.ColumnElement[bool]:
    """One filter term; ``walked`` is the field whose index a sorted page walks (see
    ``selection_conditions``)."""
    if term.field.multi_valued:
        # A workload matches when any current node pool matches; != and !@ mean none does.
        positive = _NEGATIVE.get(term.operator, term.operator)
        # An alias of its own: telemetry grouped by node pool joins the table in the outer
        # query, and the subquery must not be correlated to that join.
        pools = workload_nodepools.alias("matched_pools")
        exists = (
            sa.select(sa.literal(1))
            .where(pools.c.workload_id == workloads.c.id)
            .where(compare(pools.c.nodepool, positive, term.value))
            .exists()
        )
        return ~exists if term.operator in _NEGATIVE else exists
    if term.field.time_dependent:
        return _total_condition(dialect, now, term.field, term.operator, term.value)
    value = term.value
    if term.field.kind in (FieldKind.NUMBER, FieldKind.INTEGER):
        value = _typed_number(term.field, value)
    expression = field_expression(dialect, now, term.field)
    if _checked_row_by_row(term.field, walked):
        expression = without_index(dialect, expression)
    return compare(expression, term.operator, value)


def _checked_row_by_row(field: WorkloadField, walked: WorkloadField | None) -> bool:
    """Whether a coarse filter is left to be tested on the rows of the sort's index walk."""
    return walked is not None and field.coarse and field is not walked


def scope_condition(
    scope: WorkloadScope, table: sa.Table = workloads, dialect: str | None = None
) -> sa.ColumnElement[bool]:
    """Rows (workloads, or anything with the same three columns) in any of the caller's
    clusters, departments or projects.

    With ``dialect``, the scope is tested row by row on a walk of the sort's index (a caller's
    clusters, departments and projects are coarse: see ``selection_conditions``).
    """
    if scope.everything:
        return sa.true()

    def column(name: str) -> sa.ColumnElement[Any]:
        return table.c[name] if dialect is None else without_index(dialect, table.c[name])

    allowed = [
        column(name).in_(sorted(ids))
        for name, ids in (
            ("cluster_id", scope.cluster_ids),
            ("department_id", scope.department_ids),
            ("project_id", scope.project_ids),
        )
        if ids
    ]
    return sa.or_(*allowed) if allowed else sa.false()


def selection_conditions(
    dialect: str, selection: WorkloadSelection, sort: SortSpec | None = None
) -> list[sa.ColumnElement[bool]]:
    """The WHERE of a list, count or telemetry request.

    Given the ``sort`` of a page whose field has an index, the coarse filters (those the
    catalogue marks: phase, project, cluster, ...), the scope and ``deleted`` are tested on the
    rows of a walk along that index instead of choosing the rows themselves: the walk stops
    after the page, where gathering every Running workload and sorting them does not.
    """
    walked = sort.field if sort is not None and walks_an_index(sort.field) else None
    deleted_at: sa.ColumnElement[Any] = workloads.c.deleted_at
    if walked is not None and walked is not _DELETED_AT:
        deleted_at = without_index(dialect, deleted_at)
    conditions: list[sa.ColumnElement[bool]] = [
        deleted_at.is_not(None) if selection.deleted else workloads.c.deleted_at.is_(None)
    ]
    if not selection.scope.everything:
        scope_dialect = dialect if walked is not None else None
        conditions.append(scope_condition(selection.scope, dialect=scope_dialect))
    conditions.extend(term_condition(dialect, selection.now, t, walked) for t in selection.filters)
    if selection.search:
        conditions.append(workloads.c.search_text.contains(selection.search, autoescape=True))
    return conditions


def walks_an_index(field: WorkloadField) -> bool:
    """A sorted page of it walks indexes: the column's, or the merged walks of a total."""
    return field.sort_indexed or field.time_dependent


def pinned_phase(selection: WorkloadSelection) -> str | None:
    """The phase a ``phase==`` filter of the selection names, if it names one."""
    named = {t.value for t in selection.filters if t.field is _PHASE and t.operator is Operator.EQ}
    return next(iter(named)) if len(named) == 1 else None


def order_by(dialect: str, now: datetime, sort: SortSpec) -> list[sa.ColumnElement[Any]]:
    """ORDER BY for a sort, with the id as tiebreak; NULL sorts as the largest value.

    The tiebreak is the id's key (``id_key``), which the sort indexes hold and which orders as
    the id does.
    """
    expression = field_expression(dialect, now, sort.field)
    nullable = not sort.field.time_dependent and workloads.c[sort.field.column].nullable
    if sort.descending:
        primary = expression.desc()
        if nullable and dialect == "sqlite":
            primary = primary.nulls_first()
        return [primary, workloads.c.id_key.desc()]
    primary = expression.asc()
    if nullable and dialect == "sqlite":
        primary = primary.nulls_last()
    return [primary, workloads.c.id_key.asc()]


# SQLite's rowid of a workload, which no Column of the table names.
_ROWID = sa.sql.expression.ColumnClause("rowid", sa.Integer, _selectable=workloads)


def row_key(dialect: str) -> sa.ColumnElement[Any]:
    """What keys found along an index are joined back to their rows by.

    SQLite: the rowid, which every index entry holds and by which the table is stored, so a
    row is one lookup away and no index of the id's key need be kept. PostgreSQL: the id's
    key, through its unique index.
    """
    return _ROWID if dialect == "sqlite" else workloads.c.id_key


def id_key_of(workload_id: str) -> sa.ColumnElement[str]:
    """A workload id as a bound value of ``id_key``, to compare with the sort indexes' tiebreak."""
    return sa.literal(workload_id, workloads.c.id_key.type)


def keyset_condition(sort: SortSpec, after: Keyset) -> sa.ColumnElement[bool]:
    """Rows after ``after`` in the order of ``order_by`` (NULL as the largest value).

    Written as a row-value comparison where it can be, so both databases seek to the row
    through the sort's (column, id_key) index.
    """
    column = workloads.c[sort.field.column]
    row_key, after_key = workloads.c.id_key, id_key_of(after.id)
    if after.value is None:
        # Ascending, NULLs come last: only NULLs with a larger id follow. Descending, they
        # come first: NULLs with a smaller id, then every value.
        if sort.descending:
            return sa.or_(column.is_not(None), sa.and_(column.is_(None), row_key < after_key))
        return sa.and_(column.is_(None), row_key > after_key)
    key = sa.tuple_(column, row_key)
    bound = sa.tuple_(sa.literal(after.value, column.type), after_key)
    if sort.descending:
        return key < bound
    following = key > bound
    return sa.or_(following, column.is_(None)) if column.nullable else following
