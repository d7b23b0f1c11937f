"""Clusters, departments and projects as the cluster agents report them.

Each ingest batch names the departments and projects its workloads belong to. New ones are
created; a changed name is taken only from an observation newer than the one that set the
stored name, and is carried into every workload row of that department or project (names and
the free-text search column), so list results always agree with each other.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gpufleet.core.workload_fields import SEARCH_FIELDS
from gpufleet.store.dialect import insert_ignoring_conflicts, upsert_with, write_many
from gpufleet.store.tables import clusters, departments, projects, workloads
from gpufleet.store.types import UtcDateTime
from gpufleet.store.workload_documents import SCALAR_COLUMNS, search_text

# The column each search field is read from, to rebuild search_text after a rename.
_SEARCH_COLUMNS = {field: SCALAR_COLUMNS[field] for field in SEARCH_FIELDS}


@dataclass(frozen=True, slots=True)
class _Reported:
    id: str
    name: str
    observed_at: datetime
    extra: Mapping[str, Any]


def _newest(reports: Iterable[_Reported]) -> list[_Reported]:
    """The newest report per id, sorted by id (a fixed lock order for concurrent writers)."""
    newest: dict[str, _Reported] = {}
    for report in reports:
        known = newest.get(report.id)
        if known is None or report.observed_at >= known.observed_at:
            newest[report.id] = report
    return [newest[key] for key in sorted(newest)]


def record_cluster(
    conn: Connection, cluster_id: str, name: str | None, tenant_id: int, now: datetime
) -> None:
    """Create the cluster on first contact; rename it when the agent reports a new name."""
    dialect = conn.dialect.name
    conn.execute(
        _insert_cluster(dialect),
        {
            "id": cluster_id,
            "name": name or cluster_id,
            "tenant_id": tenant_id,
            "created_at": now,
            "updated_at": now,
        },
    )
    if name:
        conn.execute(_RENAME_CLUSTER, {"cluster": cluster_id, "new_name": name, "now": now})


@cache
def _insert_cluster(dialect: str) -> sa.Insert:
    return insert_ignoring_conflicts(dialect, clusters, ["id"])


_RENAME_CLUSTER = (
    clusters.update()
    .where(clusters.c.id == sa.bindparam("cluster"), clusters.c.name != sa.bindparam("new_name"))
    .values(name=sa.bindparam("new_name"), updated_at=sa.bindparam("now", type_=UtcDateTime))
)


def record_organisation(
    conn: Connection, cluster_id: str, items: Iterable[Mapping[str, Any]]
) -> dict[str, str]:
    """Create or rename the departments and projects named by a batch of wire workloads.

    A department or project belongs to the cluster that reported it first, for good: only that
    cluster's agent creates, renames or re-parents it. Returns the workloads that name a
    department or project of another cluster, as ``{workload id: field}``; they must not be
    written, and nothing of theirs is recorded here.
    """
    naming = [
        _Naming(
            str(i["id"]),
            _Reported(str(i["departmentId"]), i["departmentName"], i["observedAt"], {}),
            _project(i["projectId"], i["projectName"], i),
        )
        for i in items
    ]
    return _settle(conn, cluster_id, naming)


@dataclass(frozen=True, slots=True)
class _Naming:
    """What one reported item (a workload, a scheduler queue) names: a department and, unless
    the item is a department itself, a project of it."""

    key: str
    department: _Reported
    project: _Reported | None


def _project(project_id: Any, name: str, item: Mapping[str, Any]) -> _Reported:
    extra = {"department_id": str(item["departmentId"]), "namespace": item["namespace"]}
    return _Reported(str(project_id), name, item["observedAt"], extra)


def _settle(conn: Connection, cluster_id: str, naming: list[_Naming]) -> dict[str, str]:
    """Claim the departments named, then the projects of the items whose department is the
    cluster's, and take the newer names of those kept. Returns the refused items' keys, each
    with the field that names another cluster's unit (``departmentId`` or ``projectId``)."""
    owned_departments = _claim(conn, departments, cluster_id, _newest(n.department for n in naming))
    refused = {n.key: "departmentId" for n in naming if n.department.id not in owned_departments}
    claimed = [n for n in naming if n.project is not None and n.key not in refused]
    reported_projects = _newest(n.project for n in claimed)
    owned_projects = _claim(conn, projects, cluster_id, reported_projects)
    refused.update((n.key, "projectId") for n in claimed if n.project.id not in owned_projects)
    kept = _newest(n.department for n in naming if n.key not in refused)
    _rename(conn, departments, cluster_id, kept, owned_departments, "department")
    owned = [r for r in reported_projects if r.id in owned_projects]
    _rename(conn, projects, cluster_id, owned, owned_projects, "project")
    return refused


@dataclass(frozen=True, slots=True)
class _Stored:
    """A unit's name as stored, and the time of the observation that set it."""

    name: str
    updated_at: datetime


def _claim(
    conn: Connection, table: sa.Table, cluster_id: str, reported: list[_Reported]
) -> dict[str, _Stored]:
    """Insert the units not known yet; return the reported units that belong to
    ``cluster_id``, by id, with their stored names.

    One statement decides ownership: a unit of another cluster conflicts, fails the upsert's
    WHERE and is not returned. The no-op update also locks the row (in id order) until commit,
    and returns it as it was stored (a unit inserted now, as reported), so the renaming that
    follows needs no second read.
    """
    if not reported:
        return {}
    statement = _claim_statement(conn.dialect.name, table)
    rows = [
        {
            "id": r.id,
            "name": r.name,
            "updated_at": r.observed_at,
            "created_at": r.observed_at,
            "cluster_id": cluster_id,
            **r.extra,
        }
        for r in reported
    ]
    written = write_many(conn, statement, rows)
    return {row.id: _Stored(row.name, row.updated_at) for row in written}


@cache
def _claim_statement(dialect: str, table: sa.Table) -> sa.Insert:
    return upsert_with(
        dialect,
        table,
        ["id"],
        lambda new: {"cluster_id": new.cluster_id},
        lambda new: table.c.cluster_id == new.cluster_id,
    ).returning(table.c.id, table.c.name, table.c.updated_at)


def _rename(
    conn: Connection,
    table: sa.Table,
    cluster_id: str,
    reported: list[_Reported],
    stored: Mapping[str, _Stored],
    kind: str,
) -> None:
    """Take newer names (and, for projects, department and namespace) of the cluster's own
    units; ``stored`` holds their names as the claim found them."""
    for report in reported:
        row = stored.get(report.id)
        if row is None or row.name == report.name or report.observed_at <= row.updated_at:
            continue
        # The cluster condition is what keeps one cluster's agent from renaming or re-parenting
        # another's unit, whatever was read above.
        renamed = conn.execute(
            table.update()
            .where(
                table.c.id == report.id,
                table.c.cluster_id == cluster_id,
                table.c.updated_at < report.observed_at,
            )
            .values(name=report.name, updated_at=report.observed_at, **report.extra)
        ).rowcount
        if renamed:
            _rename_in_workloads(conn, cluster_id, kind, report.id, report.name)


def _rename_in_workloads(
    conn: Connection, cluster_id: str, kind: str, entity_id: str, name: str
) -> None:
    id_column = workloads.c[f"{kind}_id"]
    name_column = workloads.c[f"{kind}_name"]
    rows = conn.execute(
        sa.select(workloads.c.id, *(workloads.c[c] for c in _SEARCH_COLUMNS.values())).where(
            id_column == entity_id, workloads.c.cluster_id == cluster_id, name_column != name
        )
    ).mappings()
    updates = []
    for row in rows:
        wire = {field: row[column] for field, column in _SEARCH_COLUMNS.items()}
        wire[f"{kind}Name"] = name
        updates.append({"row_id": row["id"], "new_name": name, "new_search": search_text(wire)})
    if updates:
        conn.execute(
            workloads.update()
            .where(workloads.c.id == sa.bindparam("row_id"))
            .values(
                {
                    name_column.name: sa.bindparam("new_name"),
                    "search_text": sa.bindparam("new_search"),
                }
            ),
            updates,
        )


def _department_of(unit: Mapping[str, Any]) -> _Reported:
    """The department a unit is or belongs to, as reported."""
    if unit["type"] == "project":
        return _Reported(str(unit["departmentId"]), unit["departmentName"], unit["observedAt"], {})
    return _Reported(str(unit["id"]), unit["name"], unit["observedAt"], {})


def record_units(conn: Connection, cluster_id: str, units: Iterable[Mapping[str, Any]]) -> set[str]:
    """Create or rename the projects and departments scheduler queues stand for.

    Each unit is ``{key, type, id, name, observedAt}`` plus, for a project, ``departmentId``,
    ``departmentName`` and ``namespace``. Ownership is decided as for workloads (the cluster
    that reported a unit first owns it); returns the keys of units that name another
    cluster's project or department, of which nothing is recorded.
    """
    naming = [
        _Naming(
            u["key"],
            _department_of(u),
            _project(u["id"], u["name"], u) if u["type"] == "project" else None,
        )
        for u in units
    ]
    return set(_settle(conn, cluster_id, naming))
