"""Writing the ledger's hourly rollups: differences added in one upsert per batch.

A rollup row is ``(workload, UTC hour, node pool)`` with GPU-, CPU core-, memory GiB- and
pending seconds. A state held over a stretch of time is cut at hour boundaries and shared out
equally among its node pools; the pieces of one batch are summed in memory and added to the
stored rows by an upsert whose SET adds (so concurrent writers never lose each other's part).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gpufleet.store.dialect import (
    batch_parameters,
    batch_table,
    one_of_parameter,
    upsert_with,
    write_many,
)
from gpufleet.store.tables import usage_hourly, usage_utilisation

if TYPE_CHECKING:
    from gpufleet.store.usage_ledger import HeldState

HOUR_MS = 3_600_000
H = usage_hourly.c
U = usage_utilisation.c
MEASURES = ("gpu_seconds", "cpu_core_seconds", "memory_gib_seconds", "pending_seconds")
_OWNER = ("cluster_id", "department_id", "project_id", "submitter", "type")
# The columns of a batch of differences, as ``apply`` builds its rows.
_ADDED = ("workload_id", "hour_ms", "nodepool", *MEASURES, *_OWNER)
_CHUNK = 2_000
# Differences held in memory before they are written: a stretch of a year is 8,760 rows per
# node pool, and a batch of such workloads must not grow the process without bound. A held row
# costs about 700 bytes of Python objects, so this bounds the batch at a few megabytes.
SPILL_ROWS = 5_000


def hour_of(ms: int) -> int:
    return ms - ms % HOUR_MS


class RollupDeltas:
    """Differences to add to the rollups, keyed by (workload, hour, node pool).

    With ``since_ms``, nothing before it is accounted (the retention's horizon: rollups older
    than that would be deleted anyway), so an agent's ancient timestamps cannot make one
    stretch cost more rows than the retention holds. ``floors`` maps clusters to the moment
    their usage is accounted from (``store.clusters.usage_floors``): nothing of theirs before
    it is accounted either. Every difference of a stretch is cut the same way, so what is
    added and later taken back always matches.
    """

    def __init__(
        self, since_ms: int | None = None, floors: Mapping[str, int] | None = None
    ) -> None:
        self._rows: dict[tuple[str, int, str], dict[str, Any]] = {}
        self._since_ms = since_ms
        self._floors = floors or {}

    def __bool__(self) -> bool:
        return bool(self._rows)

    def spill(self, conn: Connection, limit: int = SPILL_ROWS) -> None:
        """Write what is held once it exceeds ``limit`` rows (memory stays bounded)."""
        if len(self._rows) >= limit:
            self.apply(conn)

    def add(
        self, workload_id: str, state: HeldState, start_ms: int, end_ms: int, sign: float
    ) -> None:
        """``state`` held over [start, end) (``sign`` -1 takes it back)."""
        if self._since_ms is not None:
            start_ms = max(start_ms, self._since_ms)
        start_ms = max(start_ms, self._floors.get(state.cluster_id, start_ms))
        if start_ms >= end_ms:
            # Wholly before the cut: cut to start after its end, it would count backwards in
            # the cut's hour and take off what later stretches add.
            return
        pools = state.pools()
        owner = {name: getattr(state, name) for name in _OWNER}
        hour = hour_of(start_ms)
        while hour < end_ms:
            seconds = (min(end_ms, hour + HOUR_MS) - max(start_ms, hour)) / 1000.0
            share = sign * seconds / len(pools)
            for pool in pools:
                row = self._rows.get((workload_id, hour, pool))
                if row is None:
                    row = self._rows[(workload_id, hour, pool)] = dict.fromkeys(MEASURES, 0.0)
                row.update(owner)
                row["gpu_seconds"] += share * state.gpu
                row["cpu_core_seconds"] += share * state.cpu_cores
                row["memory_gib_seconds"] += share * state.memory_gib
                row["pending_seconds"] += share if state.pending else 0.0
            hour += HOUR_MS

    def apply(self, conn: Connection) -> None:
        """Add the differences to the stored rows (in key order, a fixed lock order)."""
        keys = sorted(self._rows)
        for offset in range(0, len(keys), _CHUNK):
            chunk = keys[offset : offset + _CHUNK]
            rows = [
                {"workload_id": w, "hour_ms": h, "nodepool": p, **self._rows[(w, h, p)]}
                for w, h, p in chunk
            ]
            if conn.dialect.name == "postgresql":
                _add_measured(conn, rows)
                continue
            measured = _measured(conn, {(w, h) for w, h, _ in chunk})
            for row in rows:
                util = measured.get((row["workload_id"], row["hour_ms"]), (None, None))
                row["gpu_utilisation"], row["idle_share"] = util
            write_many(conn, _add_statement(conn.dialect.name), rows)
        self._rows.clear()


def _add_measured(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """PostgreSQL: the upsert of ``apply`` in one statement (``_ADD_MEASURED``)."""
    conn.execute(_ADD_MEASURED, batch_parameters(conn.dialect, usage_hourly, _ADDED, rows))


def _add_measured_statement() -> sa.Insert:
    """A row it creates takes the stored utilisation of its workload and hour from a join (no
    read before it). Rows go in key order (byte order, as Python sorts the keys), the lock
    order of every writer of the rollups."""
    batch = batch_table(usage_hourly, _ADDED)
    measured = sa.and_(U.workload_id == batch.c.workload_id, U.hour_ms == batch.c.hour_ms)
    source = (
        sa.select(*(batch.c[name] for name in _ADDED), U.gpu_utilisation, U.idle_share)
        .select_from(batch.outerjoin(usage_utilisation, measured))
        .order_by(
            sa.collate(batch.c.workload_id, "C"),
            batch.c.hour_ms,
            sa.collate(batch.c.nodepool, "C"),
        )
    )
    return _add_statement("postgresql").from_select(
        [*_ADDED, "gpu_utilisation", "idle_share"], source
    )


@cache
def _add_statement(dialect: str) -> sa.Insert:
    def assignments(new: Any) -> dict[str, Any]:
        values: dict[str, Any] = {name: H[name] + new[name] for name in MEASURES}
        values.update((name, new[name]) for name in _OWNER)
        return values

    return upsert_with(
        dialect,
        usage_hourly,
        ["workload_id", "hour_ms", "nodepool"],
        assignments,
        lambda _new: sa.true(),
    )


# PostgreSQL: built once, every batch that accrues something runs it.
_ADD_MEASURED = _add_measured_statement()


def _measured(
    conn: Connection, pairs: set[tuple[str, int]]
) -> dict[tuple[str, int], tuple[float, float]]:
    """Stored utilisation of these (workload, hour) pairs, for rows created now."""
    if not pairs:
        return {}
    workloads = sorted({w for w, _ in pairs})
    hours = [h for _, h in pairs]
    rows = conn.execute(
        sa.select(U.workload_id, U.hour_ms, U.gpu_utilisation, U.idle_share).where(
            one_of_parameter(conn.dialect.name, U.workload_id, "workloads"),
            U.hour_ms >= min(hours),
            U.hour_ms <= max(hours),
        ),
        {"workloads": workloads},
    )
    return {
        (r.workload_id, int(r.hour_ms)): (r.gpu_utilisation, r.idle_share)
        for r in rows
        if (r.workload_id, int(r.hour_ms)) in pairs
    }


def write_utilisation(conn: Connection, measured: Sequence[dict[str, Any]]) -> None:
    """Store ``{workload_id, hour_ms, gpu_utilisation, idle_share}`` and copy them into the
    hour's rollup rows (every node pool of the workload)."""
    if not measured:
        return
    conn.execute(
        upsert_with(
            conn.dialect.name,
            usage_utilisation,
            ["workload_id", "hour_ms"],
            lambda new: {"gpu_utilisation": new.gpu_utilisation, "idle_share": new.idle_share},
            lambda _new: sa.true(),
        ),
        list(measured),
    )
    conn.execute(
        usage_hourly.update()
        .where(H.workload_id == sa.bindparam("w"), H.hour_ms == sa.bindparam("h"))
        .values(gpu_utilisation=sa.bindparam("u"), idle_share=sa.bindparam("i")),
        [
            {
                "w": m["workload_id"],
                "h": m["hour_ms"],
                "u": m["gpu_utilisation"],
                "i": m["idle_share"],
            }
            for m in measured
        ],
    )


def delete_rollups_before(conn: Connection, cutoff_ms: int) -> int:
    """Retention: drop rollups (and measurements) of hours that began before ``cutoff_ms``."""
    conn.execute(sa.delete(usage_utilisation).where(U.hour_ms < cutoff_ms))
    result = conn.execute(sa.delete(usage_hourly).where(H.hour_ms < cutoff_ms))
    return int(result.rowcount or 0)
