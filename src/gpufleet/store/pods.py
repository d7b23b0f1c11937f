"""Pods of workloads: written from the agent's workload reports, listed and counted in SQL.

A pod is keyed by its uid. A report of a workload carries all its pods: those reported are
upserted (a pod may move to another workload when its owner changes), those no longer reported
are soft-deleted. A pod row of another cluster is never overwritten: the upsert's WHERE decides
it in the statement. A pod is visible to a reader exactly when its workload is.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from datetime import datetime
from functools import cache
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gpufleet.core.quantities import parse_quantity
from gpufleet.core.times import format_rfc3339
from gpufleet.core.workload_fields import WorkloadField
from gpufleet.query.pods import PodPage, PodSelection
from gpufleet.store.dialect import batch_parameters, batch_table, one_of, write_many
from gpufleet.store.reported import earliest, upsert_reported
from gpufleet.store.tables import workload_pods, workloads
from gpufleet.store.workload_filters import compare, scope_condition

# Ids per IN list: well within both databases' limits on a statement's parameters.
_CHUNK = 1000
# Kubernetes pod phases after which a pod runs no more.
_FINISHED_PHASES = ("Succeeded", "Failed")
# Wire keys kept in the document as reported (never filtered or sorted on).
_DOCUMENT_KEYS = (
    "priorityClassName",
    "containers",
    "requestedResources",
    "allocatedResources",
    "tolerations",
    "nodeAffinity",
    "requestedNodePools",
    "ip",
    "gpuIndices",
)


def _json_ready(value: Any) -> Any:
    return orjson.loads(orjson.dumps(value))


def _holds(node_name: str | None, phase: str) -> bool:
    """Whether a pod holds its allocation: bound to a node and not finished."""
    return bool(node_name) and phase not in _FINISHED_PHASES


def pod_holdings(
    node_name: str | None, phase: str, allocated: Mapping[str, Any] | None
) -> dict[str, float]:
    """What a pod holds on its node: its allocation while bound and not finished, else 0."""
    allocated = allocated or {}
    holds = _holds(node_name, phase)
    memory = parse_quantity(allocated.get("cpuMemory")) if holds else None
    return {
        "allocated_gpu": float(allocated.get("gpu") or 0.0) if holds else 0.0,
        "allocated_cpu_cores": float(allocated.get("cpu") or 0.0) if holds else 0.0,
        "allocated_memory_bytes": float(memory or 0),
    }


def _pod_row(
    pod: Mapping[str, Any], workload_id: str, cluster_id: str, observed: datetime
) -> dict[str, Any]:
    phase = str(pod["phase"])
    completed = pod.get("completedAt") or (observed if phase in _FINISHED_PHASES else None)
    revision = pod.get("revisionId")
    return {
        "id": str(pod["uid"]),
        "workload_id": workload_id,
        "cluster_id": cluster_id,
        "name": pod["name"],
        "node_name": pod.get("nodeName"),
        "nodepool": pod.get("nodepool"),
        "k8s_phase": phase,
        "revision_id": str(revision) if revision else None,
        "created_at": pod.get("createdAt") or observed,
        "completed_at": completed if phase in _FINISHED_PHASES else None,
        "deleted_at": None,
        "updated_at": observed,
        "k8s_phase_updated_at": observed,
        **pod_holdings(pod.get("nodeName"), phase, pod.get("allocatedResources")),
        "document": _json_ready({key: pod[key] for key in _DOCUMENT_KEYS if pod.get(key)}),
    }


# The columns of a stored pod that a newer report overwrites (the rest are kept from the first).
REPORTED_COLUMNS = (
    "workload_id",
    "name",
    "node_name",
    "nodepool",
    "k8s_phase",
    "revision_id",
    "completed_at",
    "deleted_at",
    "updated_at",
    "allocated_gpu",
    "allocated_cpu_cores",
    "allocated_memory_bytes",
    "document",
)


@cache
def _upsert_statement(dialect: str) -> sa.Insert:
    stored = workload_pods.c

    def assignments(new: Any) -> dict[str, Any]:
        values = {name: new[name] for name in REPORTED_COLUMNS}
        values["k8s_phase_updated_at"] = sa.case(
            (stored.k8s_phase != new.k8s_phase, new.updated_at),
            else_=stored.k8s_phase_updated_at,
        )
        values["created_at"] = earliest(new.created_at, stored.created_at)
        return values

    return upsert_reported(dialect, workload_pods, assignments, reported_at="updated_at")


def record_pods(
    conn: Connection,
    cluster_id: str,
    reported: Mapping[str, tuple[datetime, Iterable[Mapping[str, Any]]]],
) -> int:
    """Make the live pods of each reported workload the ones reported with it.

    ``reported`` maps a workload id (already written for ``cluster_id``) to its observation
    time and its pods. Returns how many pods were written.
    """
    if not reported:
        return 0
    # A pod reported under two workloads of one batch (its owner changed) is written once, as
    # the newest report has it: one statement may not upsert the same row twice.
    newest: dict[str, dict[str, Any]] = {}
    for workload_id, (observed, pods) in sorted(reported.items()):
        for pod in pods:
            row = _pod_row(pod, workload_id, cluster_id, observed)
            known = newest.get(row["id"])
            if known is None or row["updated_at"] >= known["updated_at"]:
                newest[row["id"]] = row
    rows = [newest[key] for key in sorted(newest)]
    written = 0
    if rows:
        written = len(write_many(conn, _upsert_statement(conn.dialect.name), rows).all())
    kept = {(row["workload_id"], row["id"]) for row in rows}
    _delete_unreported(conn, {w: observed for w, (observed, _) in reported.items()}, kept)
    return written


def _delete_unreported(
    conn: Connection, observed: Mapping[str, datetime], kept: Collection[tuple[str, str]]
) -> None:
    """Soft-delete the live pods of these workloads that were not reported with them, at the
    time each workload was observed. A batch costs one statement on PostgreSQL; on SQLite one
    read finds them (usually none), so a batch costs one round trip here instead of one per
    workload."""
    if conn.dialect.name == "postgresql":
        _delete_unreported_in_one(conn, observed, kept)
        return
    stored = workload_pods.c
    ids = sorted(observed)
    gone: dict[datetime, list[str]] = {}
    for start in range(0, len(ids), _CHUNK):
        live = conn.execute(
            sa.select(stored.workload_id, stored.id).where(
                one_of(conn.dialect.name, stored.workload_id, ids[start : start + _CHUNK]),
                stored.deleted_at.is_(None),
            )
        )
        for workload_id, pod_id in live:
            if (workload_id, pod_id) not in kept:
                gone.setdefault(observed[workload_id], []).append(pod_id)
    for moment, pod_ids in sorted(gone.items()):
        pod_ids.sort()
        for start in range(0, len(pod_ids), _CHUNK):
            conn.execute(
                workload_pods.update()
                .where(one_of(conn.dialect.name, stored.id, pod_ids[start : start + _CHUNK]))
                .where(stored.deleted_at.is_(None))
                .values(deleted_at=moment, updated_at=moment)
            )


def _delete_unreported_in_one(
    conn: Connection, observed: Mapping[str, datetime], kept: Collection[tuple[str, str]]
) -> None:
    """``_delete_unreported`` as one statement (PostgreSQL): the reported workloads and the
    pods kept travel as two batches; the pods to delete are locked in id order first."""
    conn.execute(
        _DELETE_UNREPORTED,
        {
            **batch_parameters(
                conn.dialect,
                workload_pods,
                _SEEN,
                [{"workload_id": w, "updated_at": at} for w, at in sorted(observed.items())],
                name="seen",
            ),
            **batch_parameters(
                conn.dialect,
                workload_pods,
                _KEPT,
                [{"workload_id": w, "id": pod} for w, pod in kept],
                name="kept",
            ),
        },
    )


_SEEN = ("workload_id", "updated_at")
_KEPT = ("workload_id", "id")


def _delete_unreported_statement() -> sa.Update:
    stored = workload_pods.c
    seen = batch_table(workload_pods, _SEEN, name="seen")
    reported = batch_table(workload_pods, _KEPT, name="kept")
    gone = (
        sa.select(stored.id, seen.c.updated_at.label("at"))
        .join_from(workload_pods, seen, stored.workload_id == seen.c.workload_id)
        .where(
            stored.deleted_at.is_(None),
            sa.tuple_(stored.workload_id, stored.id).not_in(
                sa.select(reported.c.workload_id, reported.c.id)
            ),
        )
        .order_by(stored.id)
        .with_for_update(of=workload_pods)
        .cte("gone")
    )
    return (
        workload_pods.update()
        .where(stored.id == gone.c.id)
        .values(deleted_at=gone.c.at, updated_at=gone.c.at)
    )


_DELETE_UNREPORTED = _delete_unreported_statement()


def delete_pods_of(conn: Connection, deletions: Mapping[str, datetime]) -> None:
    """Soft-delete the live pods of deleted workloads, each at its workload's deletion time."""
    stored = workload_pods.c
    by_moment: dict[datetime, list[str]] = {}
    for workload_id, moment in deletions.items():
        by_moment.setdefault(moment, []).append(workload_id)
    for moment, ids in sorted(by_moment.items()):
        conn.execute(
            workload_pods.update()
            .where(
                one_of(conn.dialect.name, stored.workload_id, sorted(ids)),
                stored.deleted_at.is_(None),
            )
            .values(deleted_at=moment, updated_at=moment)
        )


def _term_condition(term) -> sa.ColumnElement[bool]:
    return compare(workload_pods.c[term.field.column], term.operator, term.value)


def _conditions(selection: PodSelection) -> list[sa.ColumnElement[bool]]:
    stored = workload_pods.c
    conditions = [
        stored.deleted_at.is_not(None) if selection.deleted else stored.deleted_at.is_(None)
    ]
    if selection.workload_id is not None:
        conditions.append(stored.workload_id == selection.workload_id)
    if selection.completed is not None:
        finished = stored.completed_at.is_not(None)
        conditions.append(finished if selection.completed else ~finished)
    conditions.extend(_term_condition(term) for term in selection.filters)
    if selection.search:
        conditions.append(sa.func.lower(stored.name).contains(selection.search, autoescape=True))
    if not selection.scope.everything:
        conditions.append(scope_condition(selection.scope))
    return conditions


def _from(selection: PodSelection, full: bool) -> Any:
    """Pods, joined to their workloads only when the scope or the answer needs them."""
    if selection.scope.everything and not full:
        return workload_pods
    return workload_pods.join(workloads, workloads.c.id == workload_pods.c.workload_id)


def _order(dialect: str, field: WorkloadField, descending: bool) -> list[Any]:
    column = workload_pods.c[field.column]
    tiebreak = workload_pods.c.id
    if descending:
        primary = column.desc().nulls_first() if dialect == "sqlite" else column.desc()
        return [primary, tiebreak.desc()]
    primary = column.asc().nulls_last() if dialect == "sqlite" else column.asc()
    return [primary, tiebreak.asc()]


def page_ids_statement(dialect: str, page: PodPage) -> sa.Select:
    """The ids of one page of pods (and one more, to tell whether a next page exists)."""
    selection = page.selection
    return (
        sa.select(workload_pods.c.id)
        .select_from(_from(selection, full=False))
        .where(*_conditions(selection))
        .order_by(*_order(dialect, page.sort, page.descending))
        .offset(page.offset)
        .limit(page.limit + 1)
    )


def list_pods(conn: Connection, page: PodPage) -> tuple[list[dict[str, Any]], int | None]:
    """One page of pods in the Run:ai ``Pod`` shape, and the next offset.

    One statement: the page's ids come from an index range of the sort column in a subquery,
    and only those rows are then joined to their pods and workloads, so the join never runs
    over the whole selection (and no list of ids makes a second round trip).
    """
    dialect = conn.dialect.name
    ids = page_ids_statement(dialect, page).subquery("page")
    statement = (
        sa.select(*_POD_ROW)
        .select_from(
            ids.join(workload_pods, workload_pods.c.id == ids.c.id).join(
                workloads, workloads.c.id == workload_pods.c.workload_id
            )
        )
        .order_by(*_order(dialect, page.sort, page.descending))
    )
    rows = conn.execute(statement).all()
    next_offset = page.offset + page.limit if len(rows) > page.limit else None
    return [_wire_pod(row, page.full) for row in rows[: page.limit]], next_offset


def count_pods(conn: Connection, selection: PodSelection) -> int:
    statement = (
        sa.select(sa.func.count())
        .select_from(_from(selection, full=False))
        .where(*_conditions(selection))
    )
    return int(conn.execute(statement).scalar_one())


# A pod row with the fields of its workload that the wire shape carries.
_POD_ROW = (
    workload_pods,
    workloads.c.tenant_id,
    workloads.c.project_id,
    workloads.c.project_name,
    workloads.c.name.label("workload_name"),
)


def _time(value: datetime | None) -> str | None:
    return None if value is None else format_rfc3339(value)


def _wire_pod(row: Any, full: bool) -> dict[str, Any]:
    document = dict(row.document)
    pod = {
        "id": row.id,
        "name": row.name,
        "workloadId": row.workload_id,
        "clusterId": row.cluster_id,
        "projectId": row.project_id,
        "nodeName": row.node_name,
        "currentNodePool": row.nodepool,
        "requestedNodePools": document.get("requestedNodePools") or [],
        "k8sPhase": row.k8s_phase,
        "priorityClassName": document.get("priorityClassName") or "",
        "revisionId": row.revision_id,
        "ip": document.get("ip"),
        "createdAt": _time(row.created_at),
        "completedAt": _time(row.completed_at),
        "containers": document.get("containers") or [],
        "requestedResources": document.get("requestedResources"),
        # What it holds now, as the node and workload figures count it: a finished or unbound
        # pod holds nothing, whatever the agent last said it was given.
        "allocatedResources": (
            document.get("allocatedResources") if _holds(row.node_name, row.k8s_phase) else None
        ),
        "tenantId": row.tenant_id,
        "updatedAt": _time(row.updated_at),
        "k8sPhaseUpdatedAt": _time(row.k8s_phase_updated_at),
        "deletedAt": _time(row.deleted_at),
    }
    for key in ("tolerations", "nodeAffinity", "gpuIndices"):
        if key in document:
            pod[key] = document[key]
    if full:
        pod["projectName"] = row.project_name
        pod["workloadName"] = row.workload_name
    return pod
