"""Periodic work of the usage ledger: the live part brought up to now, utilisation pulled from
Prometheus (when it is the metrics backend), and retention.

The live part runs in one replica at a time (the ``usage-ledger`` lease): the lease's write
comes first in the transaction, which on SQLite also holds the write lock for what follows.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.engine import Engine

from gpufleet.core.metric_values import WorkloadTarget
from gpufleet.core.times import to_ms
from gpufleet.metrics.backend import IdleRule
from gpufleet.metrics.prometheus import PrometheusBackend
from gpufleet.store.dialect import pause_for_waiting_writers, without_statement_timeout
from gpufleet.store.leases import take_lease
from gpufleet.store.usage_ledger import advance_open, compact_states, delete_states_before
from gpufleet.store.usage_rollups import (
    HOUR_MS,
    delete_rollups_before,
    hour_of,
    write_utilisation,
)
from gpufleet.store.usage_utilisation import gpu_holders

LEDGER_LEASE = "usage-ledger"
UTILISATION_LEASE = "usage-utilisation"
# Hours before the current one measured again on every run: scrapes and remote writes land late.
UTILISATION_HOURS_BACK = 2
# Live workloads moved per transaction: with the rollup differences (at most SPILL_ROWS), what
# the task holds in memory however many workloads run.
_BATCH = 1000
# Observations later than this are not expected: older runs of equal points are merged.
COMPACT_AFTER = timedelta(days=1)


def lease_term_ms(interval_seconds: float) -> int:
    """A lease outlives three missed runs, and at least half a minute."""
    return max(30_000, int(interval_seconds * 3000))


def accrue_live_usage(
    engine: Engine, holder: str, now: datetime, term_ms: int, retention_days: int | None = None
) -> int:
    """Bring every running or pending workload's ledger up to ``now``; returns how many moved.

    Nothing happens in a replica that does not hold the lease. With ``retention_days``,
    nothing older than the retention is accrued (a workload last seen long ago).
    """
    since_ms = None if retention_days is None else to_ms(now - timedelta(days=retention_days))
    moved = 0
    while True:
        with engine.begin() as conn:
            if not take_lease(conn, LEDGER_LEASE, holder, to_ms(now), term_ms):
                return moved
            done = advance_open(conn, now, limit=_BATCH, since_ms=since_ms)
        moved += done
        if done < _BATCH:
            return moved
        pause_for_waiting_writers(engine.dialect.name)


def enforce_usage_retention(engine: Engine, retention_days: int, now: datetime) -> int:
    """Delete rollups and timeline points older than the retention and merge runs of equal
    points older than a day; returns rollups deleted."""
    cutoff = to_ms(now - timedelta(days=retention_days))
    with engine.begin() as conn:
        without_statement_timeout(conn)
        delete_states_before(conn, cutoff)
        compact_states(conn, to_ms(now - COMPACT_AFTER))
        return delete_rollups_before(conn, cutoff)


def pull_utilisation(
    engine: Engine,
    backend: PrometheusBackend,
    rule: IdleRule,
    holder: str,
    now: datetime,
    term_ms: int,
    hours_back: int = UTILISATION_HOURS_BACK,
) -> int:
    """Measure the current hour and the ``hours_back`` before it from Prometheus, for every
    workload that held GPUs then; returns how many (workload, hour) figures were written."""
    now_ms = to_ms(now)
    current = hour_of(now_ms)
    written = 0
    for hour in range(current - hours_back * HOUR_MS, current + 1, HOUR_MS):
        # A page of holders at a time: memory and query size do not grow with the fleet.
        after: str | None = ""
        while after is not None:
            with engine.begin() as conn:
                if not take_lease(conn, UTILISATION_LEASE, holder, now_ms, term_ms):
                    return written
                targets, after = gpu_holders(conn, hour, after)
            if targets:
                written += _pull_page(engine, backend, rule, targets, hour, now_ms)
    return written


def _pull_page(
    engine: Engine,
    backend: PrometheusBackend,
    rule: IdleRule,
    targets: list[WorkloadTarget],
    hour: int,
    now_ms: int,
) -> int:
    """Measure these holders over the hour and store the figures; returns how many."""
    figures = backend.hourly_utilisation(targets, hour, min(hour + HOUR_MS, now_ms), rule)
    rows = [
        {
            "workload_id": workload_id,
            "hour_ms": hour,
            "gpu_utilisation": figure.mean_percent,
            "idle_share": figure.idle_share,
        }
        for workload_id, figure in sorted(figures.items())
    ]
    with engine.begin() as conn:
        write_utilisation(conn, rows)
    return len(rows)
