"""Projects and departments: listed, counted and read in SQL, with the caller's scope.

One statement selects a page: the unit's columns and its computed figures (GPU quota and
allocation) are named as ``core.org_unit_fields`` names them, so filters and sorts apply to
them in SQL. Per node pool figures are then read for the page's units only.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gpufleet.core.org_unit_fields import PROJECT_PHASE
from gpufleet.core.workload_fields import FieldKind, WorkloadField
from gpufleet.query.filters import FilterTerm
from gpufleet.query.org_units import OrgUnitPage, OrgUnitSelection
from gpufleet.query.scope import WorkloadScope
from gpufleet.store.org_figures import UnitKind, allocated_gpus
from gpufleet.store.org_quotas import gpu_quota
from gpufleet.store.tables import departments, projects
from gpufleet.store.workload_filters import compare

P, D = projects.c, departments.c


def _project_columns() -> dict[str, sa.ColumnElement[Any]]:
    return {
        "id": P.id,
        "name": P.name,
        "cluster_id": P.cluster_id,
        "department_id": P.department_id,
        "department_name": D.name,
        "namespace": P.namespace,
        "phase": sa.literal(PROJECT_PHASE, sa.String),
        "created_at": P.created_at,
        "updated_at": P.updated_at,
        "gpu_quota": gpu_quota(UnitKind.PROJECT, P.id),
        "gpu_allocated": allocated_gpus(UnitKind.PROJECT, P.id),
    }


def _department_columns() -> dict[str, sa.ColumnElement[Any]]:
    return {
        "id": D.id,
        "name": D.name,
        "cluster_id": D.cluster_id,
        "created_at": D.created_at,
        "updated_at": D.updated_at,
        "gpu_quota": gpu_quota(UnitKind.DEPARTMENT, D.id),
        "gpu_allocated": allocated_gpus(UnitKind.DEPARTMENT, D.id),
    }


def _source(kind: UnitKind) -> sa.FromClause:
    if kind is UnitKind.PROJECT:
        return projects.outerjoin(departments, D.id == P.department_id)
    return departments


def _columns(kind: UnitKind) -> dict[str, sa.ColumnElement[Any]]:
    return _project_columns() if kind is UnitKind.PROJECT else _department_columns()


def scope_condition(kind: UnitKind, scope: WorkloadScope) -> sa.ColumnElement[bool]:
    """Units the caller may read: a project reader sees its project, not its department."""
    if scope.everything:
        return sa.true()
    table = P if kind is UnitKind.PROJECT else D
    allowed = []
    if scope.cluster_ids:
        allowed.append(table.cluster_id.in_(sorted(scope.cluster_ids)))
    if scope.department_ids:
        own = P.department_id if kind is UnitKind.PROJECT else D.id
        allowed.append(own.in_(sorted(scope.department_ids)))
    if scope.project_ids and kind is UnitKind.PROJECT:
        allowed.append(P.id.in_(sorted(scope.project_ids)))
    return sa.or_(*allowed) if allowed else sa.false()


def _term(columns: dict[str, sa.ColumnElement[Any]], term: FilterTerm) -> sa.ColumnElement[bool]:
    value: Any = term.value
    if term.field.kind is FieldKind.NUMBER:
        value = sa.literal(value, sa.Float)
    return compare(columns[term.field.column], term.operator, value)


def _conditions(
    kind: UnitKind, columns: dict[str, sa.ColumnElement[Any]], selection: OrgUnitSelection
) -> list[sa.ColumnElement[bool]]:
    conditions = [scope_condition(kind, selection.scope)]
    conditions.extend(_term(columns, term) for term in selection.filters)
    if selection.search:
        name = sa.func.lower(columns["name"])
        conditions.append(name.contains(selection.search, autoescape=True))
    return conditions


def _order(
    columns: dict[str, sa.ColumnElement[Any]], sort: WorkloadField, descending: bool
) -> list[sa.ColumnElement[Any]]:
    """The sort with the id as tiebreak; an unknown (NULL) quota sorts as the largest value."""
    expression = columns[sort.column]
    if descending:
        return [expression.desc().nulls_first(), columns["id"].desc()]
    return [expression.asc().nulls_last(), columns["id"].asc()]


def list_units(
    conn: Connection, kind: UnitKind, page: OrgUnitPage
) -> tuple[list[dict[str, Any]], int | None]:
    """One page of units as rows keyed like ``_columns``, and the next offset (or None)."""
    columns = _columns(kind)
    statement = (
        sa.select(*(expression.label(name) for name, expression in columns.items()))
        .select_from(_source(kind))
        .where(*_conditions(kind, columns, page.selection))
        .order_by(*_order(columns, page.sort, page.descending))
        .offset(page.offset)
        .limit(page.limit + 1)
    )
    rows = [dict(row) for row in conn.execute(statement).mappings()]
    more = len(rows) > page.limit
    return rows[: page.limit], page.offset + page.limit if more else None


def count_units(conn: Connection, kind: UnitKind, selection: OrgUnitSelection) -> int:
    columns = _columns(kind)
    statement = (
        sa.select(sa.func.count())
        .select_from(_source(kind))
        .where(*_conditions(kind, columns, selection))
    )
    return int(conn.execute(statement).scalar_one())


def get_unit(
    conn: Connection, kind: UnitKind, unit_id: str, scope: WorkloadScope
) -> dict[str, Any] | None:
    """One unit's row, or None when it is unknown or out of the caller's scope."""
    columns = _columns(kind)
    statement = (
        sa.select(*(expression.label(name) for name, expression in columns.items()))
        .select_from(_source(kind))
        .where(columns["id"] == unit_id, scope_condition(kind, scope))
    )
    row = conn.execute(statement).mappings().first()
    return None if row is None else dict(row)
