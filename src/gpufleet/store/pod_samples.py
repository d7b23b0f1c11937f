"""Writing the embedded samples of pods, each kept to its own pod, workload and cluster.

Reading goes through ``metric_samples`` with ``POD_SAMPLES``; only the write differs: a pod
sample names its pod and the pod's workload, and the writing statement itself keeps only those
whose pod belongs to that workload (and, for an agent, to one of its clusters), so a sample
never lands on another cluster's pod however the requests interleave.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gpufleet.store.dialect import upsert
from gpufleet.store.tables import pod_metric_samples, workload_pods

_PRIMARY_KEY = ("pod_id", "metric_type", "series", "ts_ms")
_COLUMNS = (*_PRIMARY_KEY, "value")
# Rows per statement: 6 parameters each, within SQLite's limit of 32,766.
_CHUNK = 2_000
S = pod_metric_samples.c
P = workload_pods.c


def pod_owners(conn: Connection, pod_ids: Sequence[str]) -> dict[str, tuple[str, str]]:
    """``(workload id, cluster id)`` of each known pod among ``pod_ids`` (deleted ones too)."""
    owners: dict[str, tuple[str, str]] = {}
    for offset in range(0, len(pod_ids), 500):
        chunk = list(pod_ids[offset : offset + 500])
        statement = sa.select(P.id, P.workload_id, P.cluster_id).where(P.id.in_(chunk))
        rows = conn.execute(statement)
        owners.update((row.id, (row.workload_id, row.cluster_id)) for row in rows)
    return owners


def write_pod_samples(
    conn: Connection,
    rows: Sequence[Mapping[str, object]],
    clusters: Collection[str] | None = None,
) -> int:
    """Insert pod samples (``pod_id``, ``workload_id``, ``metric_type``, ``series``, ``ts_ms``,
    ``value``); a sample stored for the same series and time is replaced.

    A sample is written only when its pod belongs to its workload and, with ``clusters``, to
    one of them; returns how many were written.
    """
    return sum(
        _write_chunk(conn, rows[offset : offset + _CHUNK], clusters)
        for offset in range(0, len(rows), _CHUNK)
    )


def _write_chunk(
    conn: Connection, rows: Sequence[Mapping[str, object]], clusters: Collection[str] | None
) -> int:
    names = (*_COLUMNS, "workload_id")
    types = {**{name: S[name].type for name in _COLUMNS}, "workload_id": P.workload_id.type}
    given = (
        sa.values(*(sa.column(name, types[name]) for name in names), name="given")
        .data([tuple(row[name] for name in names) for row in rows])
        .cte("given")
    )
    owned = sa.exists().where(P.id == given.c.pod_id, P.workload_id == given.c.workload_id)
    if clusters is not None:
        # Literal ORs over the few clusters of one caller.
        owned = owned.where(sa.or_(sa.false(), *(P.cluster_id == sa.literal(c) for c in clusters)))
    select = sa.select(*(sa.cast(given.c[name], types[name]) for name in _COLUMNS)).where(owned)
    statement = upsert(conn.dialect.name, pod_metric_samples, _PRIMARY_KEY, ["value"])
    statement = statement.from_select(list(_COLUMNS), select).returning(S.pod_id)
    return len(conn.execute(statement).all())
