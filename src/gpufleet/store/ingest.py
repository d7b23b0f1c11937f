"""Applying a batch of workload updates from a cluster agent, in one transaction.

Ordering is enforced by the database, not by the caller: the upsert only overwrites a row when
the update's ``observedAt`` is not older than the stored one, so concurrent writers replaying
the same updates in any order converge on the newest state. Phase accounting happens in the
same statement (the SET expressions see the row as it was), and the rows the statement really
changed come back through RETURNING to drive the history, pod and node-pool writes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gpufleet.core.times import to_ms, truncate_to_ms
from gpufleet.schemas.enums import TERMINAL_PHASES, Phase
from gpufleet.store.dialect import (
    batch_parameters,
    batch_rows,
    batch_table,
    epoch_ms,
    insert_ignoring_conflicts,
    one_of,
    one_of_parameter,
    upsert_with,
    write_many,
)
from gpufleet.store.history import record_transitions
from gpufleet.store.organisation import record_cluster, record_organisation
from gpufleet.store.pods import delete_pods_of, record_pods
from gpufleet.store.tables import workload_nodepools, workloads
from gpufleet.store.types import UtcDateTime
from gpufleet.store.usage_ledger import observation_of, record_observations, record_releases
from gpufleet.store.workload_documents import nodepool_rows, workload_row

_TERMINAL = sorted(phase.value for phase in TERMINAL_PHASES)
# Columns the server maintains itself; every other column takes the reported value.
SERVER_COLUMNS = frozenset(
    {
        "id",
        "created_at",
        "phase_updated_at",
        "k8s_phase_updated_at",
        "completed_at",
        "pending_seconds_before",
        "running_seconds_before",
    }
)


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    """What a batch did. ``refused`` maps a reported workload id to the field that names
    something of another cluster (``id``, ``projectId`` or ``departmentId``);
    ``refused_deletions`` are ids in ``deletedIds`` of another cluster's workloads."""

    accepted: int
    stale: int
    deleted: int
    refused: Mapping[str, str] = field(default_factory=dict)
    refused_deletions: frozenset[str] = frozenset()


def _not_after(value: datetime | None, limit: datetime) -> datetime:
    return limit if value is None or value > limit else value


def ingest_row(item: Mapping[str, Any]) -> dict[str, Any]:
    """Column values of a reported workload as first inserted (the server-kept times filled)."""
    observed = truncate_to_ms(item["observedAt"])
    row = workload_row(item)
    row["phase_updated_at"] = _not_after(row["phase_updated_at"], observed)
    row["k8s_phase_updated_at"] = _not_after(row["k8s_phase_updated_at"], observed)
    row["updated_at"] = row["updated_at"] or observed
    terminal = row["phase"] in _TERMINAL
    row["completed_at"] = (row["completed_at"] or row["phase_updated_at"]) if terminal else None
    row["deleted_at"] = None
    row["observed_at"] = observed
    return row


def _elapsed_seconds(dialect: str, new: Any) -> sa.ColumnElement[int]:
    """Whole seconds from the start of the stored phase stretch to the new observation."""
    elapsed_ms = epoch_ms(dialect, new.observed_at) - epoch_ms(
        dialect, workloads.c.phase_updated_at
    )
    return sa.case((elapsed_ms > 0, elapsed_ms // 1000), else_=0)


def _assignments(dialect: str, columns: Sequence[str], new: Any) -> dict[str, Any]:
    stored = workloads.c
    phase_changed = stored.phase != new.phase
    elapsed = _elapsed_seconds(dialect, new)

    def accumulate(column: str, phase: Phase) -> sa.ColumnElement[int]:
        left_phase = sa.and_(phase_changed, stored.phase == phase.value)
        return stored[column] + sa.case((left_phase, elapsed), else_=0)

    values: dict[str, Any] = {c: new[c] for c in columns if c not in SERVER_COLUMNS}
    values.update(
        pending_seconds_before=accumulate("pending_seconds_before", Phase.PENDING),
        running_seconds_before=accumulate("running_seconds_before", Phase.RUNNING),
        phase_updated_at=sa.case((phase_changed, new.observed_at), else_=stored.phase_updated_at),
        k8s_phase_updated_at=sa.case(
            (stored.k8s_phase != new.k8s_phase, new.observed_at),
            else_=stored.k8s_phase_updated_at,
        ),
        # An explicit OR, not IN: expanding IN parameters cannot run in an executemany.
        completed_at=sa.case(
            (sa.not_(sa.or_(*(new.phase == phase for phase in _TERMINAL))), sa.null()),
            (phase_changed, new.observed_at),
            else_=sa.func.coalesce(stored.completed_at, new.completed_at),
        ),
    )
    return values


@cache
def _upsert_statement(dialect: str, columns: tuple[str, ...]) -> sa.Insert:
    """Built once per dialect and set of columns: building and keying it took a tenth of a
    batch's time."""
    statement = upsert_with(
        dialect,
        workloads,
        ["id"],
        lambda new: _assignments(dialect, columns, new),
        # A row of another cluster is never overwritten: the id is refused, not moved. Equal
        # times re-apply (a replay is idempotent); older ones are stale. A deleted row's
        # observation is its deletion: only a later one brings it back.
        lambda new: sa.and_(
            workloads.c.cluster_id == new.cluster_id,
            sa.or_(
                workloads.c.observed_at.is_(None),
                new.observed_at > workloads.c.observed_at,
                sa.and_(
                    new.observed_at == workloads.c.observed_at,
                    workloads.c.deleted_at.is_(None),
                ),
            ),
        ),
    )
    return statement.returning(
        workloads.c.id, workloads.c.phase, workloads.c.phase_message, workloads.c.phase_updated_at
    )


def _newest_per_id(items: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """One item per workload id, the newest observation (the later one on a tie), by id.

    The ids come back as text: every later step keys by it (a UUID renders anew each time).
    """
    newest: dict[str, Mapping[str, Any]] = {}
    for item in items:
        key = str(item["id"])
        known = newest.get(key)
        if known is None or item["observedAt"] >= known["observedAt"]:
            newest[key] = item
    return [{**newest[key], "id": key} for key in sorted(newest)]


def _soft_delete(
    conn: Connection,
    cluster_id: str,
    condition: sa.ColumnElement[bool],
    moment_of: Callable[[str], datetime],
    usage_since_ms: int | None = None,
) -> int:
    """Soft-delete the cluster's live workloads that meet ``condition``, each at the time
    ``moment_of(id)`` or, if it was observed later than that, at its last observation: the
    deletion is an observation too, and a workload seen live is not deleted before then."""
    stored = workloads.c
    # Lock in id order, as the upsert does, so concurrent writers queue instead of deadlocking.
    found = conn.execute(
        sa.select(stored.id, stored.observed_at)
        .where(stored.cluster_id == cluster_id, stored.deleted_at.is_(None), condition)
        .order_by(stored.id)
        .with_for_update()
    ).all()
    if not found:
        return 0
    moments = {
        row.id: max(moment_of(row.id), row.observed_at or datetime.min.replace(tzinfo=UTC))
        for row in found
    }
    deleted = 0
    ids = list(moments)
    for start in range(0, len(ids), 1000):
        chunk = {i: moments[i] for i in ids[start : start + 1000]}
        deleted += _stamp_deletions(conn, cluster_id, chunk)
        record_releases(conn, chunk, usage_since_ms)
        delete_pods_of(conn, chunk)
    return deleted


def _stamp_deletions(conn: Connection, cluster_id: str, moments: Mapping[str, datetime]) -> int:
    """Set each workload's ``deletedAt`` and ``observedAt`` to its deletion time, if it is
    still live and of this cluster (checked here too: the statement keeps to the cluster)."""
    stored = workloads.c
    rows = [{"id": workload_id, "deleted_at": at} for workload_id, at in moments.items()]
    if conn.dialect.name == "postgresql":
        source = batch_rows(conn.dialect, workloads, ("id", "deleted_at"), rows)
        return conn.execute(
            workloads.update()
            .where(
                stored.id == source.c.id,
                stored.cluster_id == cluster_id,
                stored.deleted_at.is_(None),
            )
            .values(deleted_at=source.c.deleted_at, observed_at=source.c.deleted_at)
        ).rowcount
    at = sa.bindparam("at", type_=UtcDateTime)
    return conn.execute(
        workloads.update()
        .where(
            stored.id == sa.bindparam("key"),
            stored.cluster_id == cluster_id,
            stored.deleted_at.is_(None),
        )
        .values(deleted_at=at, observed_at=at),
        [{"key": row["id"], "at": row["deleted_at"]} for row in rows],
    ).rowcount


def _replace_nodepools(
    conn: Connection, applied: set[str], items: Sequence[Mapping[str, Any]]
) -> None:
    memberships = [
        row for item in items if str(item["id"]) in applied for row in nodepool_rows(item)
    ]
    dialect = conn.dialect.name
    if dialect == "postgresql":
        conn.execute(
            _REPLACE_NODEPOOLS,
            {
                "written": sorted(applied),
                **batch_parameters(conn.dialect, workload_nodepools, _MEMBERSHIP, memberships),
            },
        )
        return
    conn.execute(
        workload_nodepools.delete().where(
            one_of(dialect, workload_nodepools.c.workload_id, sorted(applied))
        )
    )
    if memberships:
        write_many(conn, workload_nodepools.insert(), memberships)


_MEMBERSHIP = ("workload_id", "nodepool")


def _replace_nodepools_in_one() -> sa.Insert:
    """PostgreSQL, one statement: the memberships of the written workloads (``written``) that
    were not reported go, the reported ones are inserted unless already there (the two sets
    are disjoint, so the statement never deletes and inserts one row)."""
    stored = workload_nodepools.c
    pools = batch_table(workload_nodepools, _MEMBERSHIP)
    reported = sa.select(pools.c.workload_id, pools.c.nodepool)
    gone = (
        workload_nodepools.delete()
        .where(
            one_of_parameter("postgresql", stored.workload_id, "written"),
            sa.tuple_(stored.workload_id, stored.nodepool).not_in(reported),
        )
        .cte("gone")
    )
    return (
        insert_ignoring_conflicts("postgresql", workload_nodepools, list(_MEMBERSHIP))
        .from_select(list(_MEMBERSHIP), reported)
        .add_cte(gone)
    )


_REPLACE_NODEPOOLS = _replace_nodepools_in_one()


def ingest_workloads(
    conn: Connection,
    cluster_id: str,
    items: Sequence[Mapping[str, Any]],
    *,
    deletions: Mapping[str, datetime] | None = None,
    full_sync: bool = False,
    cluster_name: str | None = None,
    now: datetime,
    usage_since: datetime | None = None,
) -> IngestOutcome:
    """Apply one batch (wire-shaped dicts with ``observedAt`` and ``pods``); caller commits.

    ``deletions`` maps the ids of workloads the agent saw deleted to when it saw it (at most
    ``now``); workloads a full sync finds missing are deleted at ``now``.

    The usage ledger accounts nothing before ``usage_since`` (the usage retention's horizon),
    however old the times an agent reports.
    """
    dialect = conn.dialect.name
    since_ms = None if usage_since is None else to_ms(usage_since)
    unique = _newest_per_id(items)
    if unique or cluster_name:
        tenant_id = int(unique[0]["tenantId"]) if unique else 1
        record_cluster(conn, cluster_id, cluster_name, tenant_id, now)
    refused = record_organisation(conn, cluster_id, unique)
    unique = [item for item in unique if str(item["id"]) not in refused]

    applied: set[str] = set()
    if unique:
        rows = [ingest_row(item) for item in unique]
        returned = write_many(conn, _upsert_statement(dialect, tuple(rows[0])), rows).all()
        applied = {row.id for row in returned}
        # Not written: stale, or the id is another cluster's (a row never changes cluster, so
        # reading it afterwards in the same transaction tells which).
        missed = [str(item["id"]) for item in unique if str(item["id"]) not in applied]
        refused.update((i, "id") for i in _of_other_clusters(conn, cluster_id, missed))
        # The ledger takes every observation of the cluster's own workloads, stale ones too:
        # a late observation still says what the workload held at its time.
        record_observations(
            conn,
            (
                observation_of(item, truncate_to_ms(item["observedAt"]))
                for item in unique
                if str(item["id"]) not in refused
            ),
            since_ms,
        )
        record_transitions(
            conn,
            (
                {
                    "workload_id": r.id,
                    "phase": r.phase,
                    "message": r.phase_message,
                    "at": r.phase_updated_at,
                }
                for r in returned
            ),
        )
        record_pods(
            conn,
            cluster_id,
            {
                str(item["id"]): (truncate_to_ms(item["observedAt"]), item.get("pods") or ())
                for item in unique
                if str(item["id"]) in applied
            },
        )
        _replace_nodepools(conn, applied, unique)

    deleted = 0
    refused_deletions: frozenset[str] = frozenset()
    if deletions:
        wanted = sorted(deletions)
        deleted += sum(
            _soft_delete(
                conn,
                cluster_id,
                one_of(dialect, workloads.c.id, wanted[i : i + 1000]),
                deletions.__getitem__,
                since_ms,
            )
            for i in range(0, len(wanted), 1000)
        )
        refused_deletions = frozenset(_of_other_clusters(conn, cluster_id, wanted))
    if full_sync:
        # Only what was last seen before this snapshot was taken: a workload reported by a
        # newer, concurrent request is not deleted by an older full listing.
        taken_at = max((truncate_to_ms(i["observedAt"]) for i in unique), default=now)
        reported = [str(item["id"]) for item in unique]
        missing = sa.and_(
            workloads.c.id.not_in(reported),
            sa.or_(workloads.c.observed_at.is_(None), workloads.c.observed_at < taken_at),
        )
        deleted += _soft_delete(conn, cluster_id, missing, lambda _: now, since_ms)
    refused_items = sum(1 for item in items if str(item["id"]) in refused) if refused else 0
    return IngestOutcome(
        accepted=len(applied),
        stale=len(items) - len(applied) - refused_items,
        deleted=deleted,
        refused=refused,
        refused_deletions=refused_deletions,
    )


def _of_other_clusters(conn: Connection, cluster_id: str, ids: Sequence[str]) -> list[str]:
    """Those of ``ids`` that are workloads of a cluster other than ``cluster_id``."""
    statement = _of_other_clusters_statement(conn.dialect.name)
    found: list[str] = []
    for start in range(0, len(ids), 1000):
        chunk = list(ids[start : start + 1000])
        found.extend(conn.execute(statement, {"ids": chunk, "cluster": cluster_id}).scalars())
    return found


@cache
def _of_other_clusters_statement(dialect: str) -> sa.Select:
    return sa.select(workloads.c.id).where(
        one_of_parameter(dialect, workloads.c.id, "ids"),
        workloads.c.cluster_id != sa.bindparam("cluster"),
    )
