"""Consumption reports: requests, their status, and the file each produces.

A report is created ``Pending``; the worker (``metrics.report_tasks``) claims the oldest one
that is not finished, marks it ``Processing``, builds its file from the usage ledger and
stores it with ``Ready`` (or ``Failed`` and why). Everything is in the database, so a restart
or another replica carries on where the last one stopped.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gpufleet.core.report_fields import ReportStatus
from gpufleet.core.times import format_rfc3339
from gpufleet.query.reports import ReportPage, ReportSelection
from gpufleet.query.scope import WorkloadScope
from gpufleet.store.tables import reports
from gpufleet.store.workload_filters import compare

R = reports.c
_UNFINISHED = (ReportStatus.PENDING.value, ReportStatus.PROCESSING.value)


def scope_document(scope: WorkloadScope) -> dict[str, Any]:
    return {
        "everything": scope.everything,
        "clusters": sorted(scope.cluster_ids),
        "departments": sorted(scope.department_ids),
        "projects": sorted(scope.project_ids),
    }


def scope_of(document: Mapping[str, Any]) -> WorkloadScope:
    return WorkloadScope(
        everything=bool(document.get("everything")),
        cluster_ids=frozenset(document.get("clusters") or ()),
        department_ids=frozenset(document.get("departments") or ()),
        project_ids=frozenset(document.get("projects") or ()),
    )


def create_report(conn: Connection, row: Mapping[str, Any]) -> dict[str, Any]:
    """Store a new Pending report (``row`` holds the table's columns but status)."""
    values = {
        **row,
        "status": ReportStatus.PENDING.value,
        "status_message": "Report in queue",
        "status_updated_at": row["created_at"],
    }
    conn.execute(reports.insert().values(values))
    return report_wire(values)


def report_wire(row: Mapping[str, Any]) -> dict[str, Any]:
    """The reference's Report of a stored row (the file and scope stay inside)."""
    body: dict[str, Any] = {
        "name": row["name"],
        "start": format_rfc3339(row["start_at"]),
        "end": format_rfc3339(row["end_at"]),
        "groupBy": row["group_by"],
        "filterBy": list(row["filter_by"]),
        "id": row["id"],
        "tenantId": row["tenant_id"],
        "createdAt": format_rfc3339(row["created_at"]),
        "createdBy": row["created_by"],
        "status": row["status"],
        "statusUpdatedAt": format_rfc3339(row["status_updated_at"]),
    }
    if row.get("description") is not None:
        body["description"] = row["description"]
    if row.get("status_message") is not None:
        body["statusMessage"] = row["status_message"]
    return body


_WIRE_COLUMNS = [c for c in reports.columns if c.name not in ("file", "scope")]


def get_report(conn: Connection, report_id: str, created_by: str | None) -> dict[str, Any] | None:
    """One report, if it exists and (with ``created_by``) is that caller's."""
    statement = sa.select(*_WIRE_COLUMNS).where(R.id == report_id)
    if created_by is not None:
        statement = statement.where(R.created_by == created_by)
    row = conn.execute(statement).mappings().first()
    return None if row is None else report_wire(row)


def report_file(conn: Connection, report_id: str) -> str | None:
    return conn.execute(sa.select(R.file).where(R.id == report_id)).scalar_one_or_none()


def delete_report(conn: Connection, report_id: str, created_by: str | None) -> bool:
    statement = sa.delete(reports).where(R.id == report_id)
    if created_by is not None:
        statement = statement.where(R.created_by == created_by)
    return bool(conn.execute(statement).rowcount)


def _conditions(selection: ReportSelection) -> list[sa.ColumnElement[bool]]:
    conditions = [compare(R[t.field.column], t.operator, t.value) for t in selection.filters]
    if selection.search:
        conditions.append(R.name.contains(selection.search, autoescape=True))
    if selection.created_by is not None:
        conditions.append(R.created_by == selection.created_by)
    return conditions


def list_reports(conn: Connection, page: ReportPage) -> list[dict[str, Any]]:
    column = R[page.sort.field.column]
    order = [column.desc(), R.id.desc()] if page.sort.descending else [column, R.id]
    statement = (
        sa.select(*_WIRE_COLUMNS)
        .where(*_conditions(page.selection))
        .order_by(*order)
        .offset(page.offset)
        .limit(page.limit)
    )
    return [report_wire(row) for row in conn.execute(statement).mappings()]


def count_reports(conn: Connection, selection: ReportSelection) -> int:
    statement = sa.select(sa.func.count()).select_from(reports).where(*_conditions(selection))
    return int(conn.execute(statement).scalar_one())


def next_unfinished(conn: Connection) -> Mapping[str, Any] | None:
    """The oldest report not yet built (Processing ones were left by a stopped worker)."""
    statement = (
        sa.select(reports).where(R.status.in_(_UNFINISHED)).order_by(R.created_at, R.id).limit(1)
    )
    return conn.execute(statement).mappings().first()


def set_status(
    conn: Connection,
    report_id: str,
    status: ReportStatus,
    message: str,
    now: datetime,
    file: str | None = None,
) -> bool:
    """Move a report on; False when it was deleted meanwhile."""
    values: dict[str, Any] = {"status": status.value, "status_message": message}
    values["status_updated_at"] = now
    if file is not None:
        values["file"] = file
    return bool(conn.execute(reports.update().where(R.id == report_id).values(values)).rowcount)
