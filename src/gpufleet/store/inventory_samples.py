"""Inventory samples: the fleet's figures written at a sampling instant, read back per interval,
deleted after the retention.

A sample is ``(unit_type, unit_id, metric_type, series, ts_ms, value)``. The sampling instant
is rounded down to the sampling interval, so replicas sampling at the same time write the same
keys and the upsert keeps one sample.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gpufleet.core.metric_values import SampleWindow
from gpufleet.core.times import to_ms
from gpufleet.store.dialect import upsert
from gpufleet.store.inventory_figures import current_figures
from gpufleet.store.tables import inventory_samples

T = inventory_samples.c
_KEY = ("unit_type", "unit_id", "metric_type", "series", "ts_ms")
_CHUNK = 2_000
# Held by a producer that reports the fleet's past into the store (the living demo) while the
# store shows a moment behind the clock: the periodic sampler leaves that time unsampled, since
# what the store holds then is not the present. The producer samples the moments it reports.
BACKFILL_LEASE = "inventory-backfill"


def sample_inventory(conn: Connection, now: datetime, interval_seconds: int) -> int:
    """Write the current figures at ``now`` rounded down to the interval; returns how many."""
    step_ms = max(interval_seconds, 1) * 1000
    ts_ms = to_ms(now) // step_ms * step_ms
    rows = [{**figure._asdict(), "ts_ms": ts_ms} for figure in current_figures(conn, now)]
    statement = upsert(conn.dialect.name, inventory_samples, _KEY, ["value"])
    for offset in range(0, len(rows), _CHUNK):
        conn.execute(statement, rows[offset : offset + _CHUNK])
    return len(rows)


@dataclass(frozen=True, slots=True)
class SeriesPoint:
    series: str
    interval: int
    value: float


def mean_per_interval(
    conn: Connection,
    unit: tuple[str, str],
    metric_type: str,
    series: Sequence[str] | str,
    window: SampleWindow,
) -> list[SeriesPoint]:
    """The mean of each series in each interval of the window that has samples.

    ``series`` is a list of series names, or a group key ("Nodepool") for all its series.
    """
    offset = T.ts_ms - sa.literal(window.start_ms, sa.BigInteger)
    interval = (
        (offset * sa.literal(window.count, sa.BigInteger))
        // sa.literal(window.span_ms, sa.BigInteger)
    ).label("interval")
    chosen = (
        T.series.startswith(f"{series}=", autoescape=True)
        if isinstance(series, str)
        else T.series.in_(list(series))
    )
    statement = (
        sa.select(T.series, interval, sa.func.avg(T.value))
        .where(
            T.unit_type == unit[0],
            T.unit_id == unit[1],
            T.metric_type == metric_type,
            chosen,
            T.ts_ms >= window.start_ms,
            T.ts_ms < window.end_ms,
        )
        .group_by(T.series, interval)
        .order_by(T.series, interval)
    )
    return [SeriesPoint(s, int(i), float(v)) for s, i, v in conn.execute(statement)]


def delete_inventory_samples_before(conn: Connection, cutoff_ms: int) -> int:
    """Retention: drop every inventory sample older than ``cutoff_ms``."""
    result = conn.execute(sa.delete(inventory_samples).where(T.ts_ms < cutoff_ms))
    return int(result.rowcount or 0)
