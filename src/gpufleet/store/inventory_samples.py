"""Inventory samples: the fleet's figures written at a sampling instant, read back per interval,
deleted after the retention.

A sample is ``(unit_type, unit_id, metric_type, series, ts_ms, value)``. The sampling instant
is rounded down to the sampling interval, so replicas sampling at the same time write the same
keys and the upsert keeps one sample. The sampler writes what it finds: a count or amount of a
group that has nothing is not written, and reads back as 0 at the instants the unit's cluster
was sampled (``inventory_figures.ZERO_WHEN_ABSENT``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gpufleet.core.metric_values import SampleWindow
from gpufleet.core.times import to_ms
from gpufleet.store.dialect import upsert
from gpufleet.store.inventory_figures import (
    CLUSTER,
    SAMPLED_INSTANTS,
    ZERO_WHEN_ABSENT,
    current_figures,
)
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


def _interval(window: SampleWindow) -> sa.ColumnElement[int]:
    offset = T.ts_ms - sa.literal(window.start_ms, sa.BigInteger)
    return (
        (offset * sa.literal(window.count, sa.BigInteger))
        // sa.literal(window.span_ms, sa.BigInteger)
    ).label("interval")


def instants_statement(cluster_id: str, window: SampleWindow) -> sa.Select:
    """How many times the cluster was sampled in each interval of the window."""
    metric_type, series = SAMPLED_INSTANTS
    interval = _interval(window)
    return (
        sa.select(interval, sa.func.count().label("instants"))
        .where(
            T.unit_type == CLUSTER,
            T.unit_id == cluster_id,
            T.metric_type == metric_type,
            T.series == series,
            T.ts_ms >= window.start_ms,
            T.ts_ms < window.end_ms,
        )
        .group_by(interval)
    )


def sampled_instants(conn: Connection, cluster_id: str, window: SampleWindow) -> dict[int, int]:
    """The sampling instants of the cluster (and so of its projects and departments) in each
    interval of the window that has any."""
    return {int(i): int(n) for i, n in conn.execute(instants_statement(cluster_id, window))}


def series_statement(
    unit: tuple[str, str], metric_type: str, series: Sequence[str] | str, window: SampleWindow
) -> sa.Select:
    """The sum and the number of the samples of each series in each interval of the window.

    ``series`` is a list of series names, or a group key ("Nodepool") for all its series.
    """
    interval = _interval(window)
    chosen = (
        T.series.startswith(f"{series}=", autoescape=True)
        if isinstance(series, str)
        else T.series.in_(list(series))
    )
    return (
        sa.select(T.series, interval, sa.func.sum(T.value), sa.func.count())
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


def mean_per_interval(
    conn: Connection,
    unit: tuple[str, str],
    metric_type: str,
    series: Sequence[str] | str,
    window: SampleWindow,
    instants: Mapping[int, int],
) -> list[SeriesPoint]:
    """The mean of each series over each interval of the window, ordered by series and
    interval; ``instants`` are the unit's cluster's (``sampled_instants``).

    A type of ``ZERO_WHEN_ABSENT`` counts an instant without a sample of a series as 0: each
    named series, and each series of the group with a sample in the window, has a point in
    every interval with an instant, its samples' sum over the instants. Another type has a
    point where a series has samples, their mean.
    """
    sums: dict[str, dict[int, tuple[float, int]]] = {}
    for name, interval, total, count in conn.execute(
        series_statement(unit, metric_type, series, window)
    ):
        sums.setdefault(name, {})[int(interval)] = (float(total), int(count))
    if metric_type not in ZERO_WHEN_ABSENT:
        return [
            SeriesPoint(name, interval, total / count)
            for name, found in sums.items()
            for interval, (total, count) in found.items()
        ]
    if not isinstance(series, str):
        for name in series:
            sums.setdefault(name, {})
    points = []
    for name in sorted(sums):
        found = sums[name]
        for interval in sorted(instants.keys() | found.keys()):
            total, count = found.get(interval, (0.0, 0))
            # A series has no more samples in an interval than its cluster has instants; were
            # the two ever to disagree, the larger divides, never 0.
            divisor = max(instants.get(interval, 0), count)
            points.append(SeriesPoint(name, interval, total / divisor))
    return points


def delete_inventory_samples_before(conn: Connection, cutoff_ms: int) -> int:
    """Retention: drop every inventory sample older than ``cutoff_ms``."""
    result = conn.execute(sa.delete(inventory_samples).where(T.ts_ms < cutoff_ms))
    return int(result.rowcount or 0)
