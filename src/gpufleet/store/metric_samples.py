"""The embedded metric samples: writing, windowed aggregation in SQL, retention.

A sample is ``(workload_id, metric_type, series, ts_ms, value)`` (``pod_id`` in place of
``workload_id`` for pod samples, see ``SampleSource``); ``series`` is "" for a total,
``"gpu=0"`` for one GPU and ``"le=0.5"`` for one histogram bucket. Every read
is a range scan of the primary key ``(workload_id, metric_type, series, ts_ms)`` grouped into
the request's intervals by integer arithmetic, so the database returns at most
``series x intervals`` rows whatever the sample density.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import groupby
from operator import itemgetter
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gpufleet.core.metric_values import SampleWindow
from gpufleet.store.dialect import bulk_append, upsert
from gpufleet.store.tables import metric_samples, pod_metric_samples, workloads

_PRIMARY_KEY = ("workload_id", "metric_type", "series", "ts_ms")
_COLUMNS = (*_PRIMARY_KEY, "value")
_CHUNK = 5_000
# Rows per guarded statement: 5 parameters each, within SQLite's limit of 32,766.
_OWNED_CHUNK = 2_000
# How far before a window a counter's previous sample is looked for, so the increase into
# the first interval is counted.
MIN_COUNTER_LOOKBACK_MS = 5 * 60 * 1000
T = metric_samples.c
W = workloads.c
_FIRST, _REST = itemgetter(0), itemgetter(1, 2, 3)


@dataclass(frozen=True, slots=True)
class SampleSource:
    """A samples table and the column saying whose samples they are; both are read alike."""

    table: sa.Table
    owner_column: str

    @property
    def owner(self) -> sa.Column:
        return self.table.c[self.owner_column]


WORKLOAD_SAMPLES = SampleSource(metric_samples, "workload_id")
POD_SAMPLES = SampleSource(pod_metric_samples, "pod_id")


def series_labels(key: str) -> dict[str, str] | None:
    if not key:
        return None
    name, _, value = key.partition("=")
    return {name: value}


def write_samples(
    conn: Connection,
    rows: Sequence[Mapping[str, object]],
    clusters: Collection[str] | None = None,
) -> int:
    """Insert samples; a sample already stored for the same series and time is replaced.

    With ``clusters``, a sample is written only if its workload belongs to one of them, decided
    by the writing statement itself; returns how many were written.
    """
    if clusters is not None:
        return sum(
            _write_owned(conn, rows[offset : offset + _OWNED_CHUNK], clusters)
            for offset in range(0, len(rows), _OWNED_CHUNK)
        )
    statement = upsert(conn.dialect.name, metric_samples, _PRIMARY_KEY, ["value"])
    for offset in range(0, len(rows), _CHUNK):
        conn.execute(statement, list(rows[offset : offset + _CHUNK]))
    return len(rows)


def _write_owned(
    conn: Connection, rows: Sequence[Mapping[str, object]], clusters: Collection[str]
) -> int:
    """One statement for a chunk: ``INSERT ... SELECT`` from a VALUES list, keeping the rows
    whose workload is of ``clusters``; RETURNING counts what it wrote (the drivers' row counts
    are not reliable for this statement on both dialects)."""
    # A CTE, not "(VALUES ...) AS given (...)", which SQLite cannot parse.
    given = (
        sa.values(*(sa.column(name, T[name].type) for name in _COLUMNS), name="given")
        .data([tuple(row[name] for name in _COLUMNS) for row in rows])
        .cte("given")
    )
    # Literal ORs over the few clusters of one caller.
    of_clusters = sa.or_(sa.false(), *(W.cluster_id == sa.literal(c) for c in sorted(clusters)))
    owned = sa.exists().where(W.id == given.c.workload_id, of_clusters)
    select = sa.select(*(sa.cast(given.c[name], T[name].type) for name in _COLUMNS)).where(owned)
    statement = upsert(conn.dialect.name, metric_samples, _PRIMARY_KEY, ["value"])
    statement = statement.from_select(list(_COLUMNS), select).returning(T.workload_id)
    return len(conn.execute(statement).all())


def append_samples(conn: Connection, rows: Iterable[tuple[str, str, str, int, float]]) -> int:
    """Bulk-insert samples known to be new (the demo, benchmarks), straight through the driver.

    Rows are ``(workload_id, metric_type, series, ts_ms, value)`` tuples.
    """
    return bulk_append(conn, metric_samples, _COLUMNS, rows)


def interval_of(ts_ms: sa.ColumnElement[int], window: SampleWindow) -> sa.ColumnElement[int]:
    """The index of the window's interval a sample at ``ts_ms`` falls in."""
    offset = ts_ms - sa.literal(window.start_ms, sa.BigInteger)
    return (offset * sa.literal(window.count, sa.BigInteger)) // sa.literal(
        window.span_ms, sa.BigInteger
    )


class IntervalValue(NamedTuple):
    # A tuple: rows unpack as they come from the driver, thousands per answer.
    series: str
    interval: int
    value: float


def means_per_interval(
    conn: Connection,
    owner_id: str,
    metric_types: Sequence[str],
    window: SampleWindow,
    source: SampleSource = WORKLOAD_SAMPLES,
) -> dict[str, list[tuple[str, int, float]]]:
    """Gauges: the mean of each series' samples in each interval that has any, for every type
    of ``metric_types`` at once (one grouped statement), by type."""
    by_type: dict[str, list[tuple[str, int, float]]] = {t: [] for t in metric_types}
    # Rows come ordered by type: each type's rows are cut out in C, as they came from the
    # driver (the interval is integer arithmetic on both dialects, the mean a float), all
    # fetched at once (row by row, the result's iteration costs more than the cutting).
    rows = conn.execute(means_statement(owner_id, metric_types, window, source)).all()
    for metric_type, of_type in groupby(rows, key=_FIRST):
        by_type[metric_type] = list(map(_REST, of_type))
    return by_type


def means_statement(
    owner_id: str,
    metric_types: Sequence[str],
    window: SampleWindow,
    source: SampleSource = WORKLOAD_SAMPLES,
) -> sa.Select:
    """One pass over the owner's primary-key range for every gauge type asked, grouped by type,
    series and interval: one statement whatever the number of types."""
    c = source.table.c
    interval = interval_of(c.ts_ms, window).label("interval")
    return (
        sa.select(c.metric_type, c.series, interval, sa.func.avg(c.value).label("value"))
        .where(
            source.owner == owner_id,
            c.metric_type.in_(sorted(set(metric_types))),
            c.ts_ms >= window.start_ms,
            c.ts_ms < window.end_ms,
        )
        .group_by(c.metric_type, c.series, interval)
        .order_by(c.metric_type, c.series, interval)
    )


def increase_per_interval(
    conn: Connection,
    owner_id: str,
    metric_type: str,
    window: SampleWindow,
    source: SampleSource = WORKLOAD_SAMPLES,
    *,
    at_rate: bool = False,
) -> Sequence[sa.Row[tuple[str, int, float]]]:
    """Counters and histogram buckets: each series' increase within each interval.

    The increase between two consecutive samples belongs to the interval of the later one;
    a drop means the counter restarted, and the new value is the increase since. Intervals
    holding samples but no increase report 0.

    ``at_rate`` gives instead the interval's length times the rate its increase was made at
    (the increase over the time from the sample before the interval's first to its last),
    which is what Prometheus' ``rate(...) * step`` answers: a counter sampled every 10
    minutes then reads the same in every 12-minute interval, where the bare increase is
    twice as high in the intervals that happen to hold two samples. An interval whose
    samples have none before them has no rate and no row.

    Rows as the driver returns them, read as ``IntervalValue`` is (unpacked, or by
    ``series``, ``interval`` and ``value``): the interval is integer arithmetic and the sum a
    float on both dialects, and an answer holds thousands of rows.
    """
    statement = increase_statement(owner_id, metric_type, window, source, at_rate=at_rate)
    rows = conn.execute(statement).all()
    if not at_rate:
        return rows
    # The rate in Python, divided before it is scaled: a counter may hold up to 1e300, and in
    # SQL an increase times the step overflowed a double (an error on PostgreSQL, "inf" on
    # SQLite). An interval whose rate a double cannot hold has no point.
    step = window.step_ms
    rated = (
        (series, interval, increase / covered * step)
        for series, interval, increase, covered in rows
    )
    return [row for row in rated if math.isfinite(row[2])]


def increase_statement(
    owner_id: str,
    metric_type: str,
    window: SampleWindow,
    source: SampleSource = WORKLOAD_SAMPLES,
    *,
    at_rate: bool = False,
) -> sa.Select:
    c = source.table.c
    lookback = max(MIN_COUNTER_LOOKBACK_MS, int(window.step_ms))
    by_series = {"partition_by": c.series, "order_by": c.ts_ms}
    previous = [sa.func.lag(c.value).over(**by_series).label("previous")]
    if at_rate:
        previous.append(sa.func.lag(c.ts_ms).over(**by_series).label("previous_at"))
    ordered = (
        sa.select(c.series, c.ts_ms, c.value, *previous)
        .where(
            source.owner == owner_id,
            c.metric_type == metric_type,
            c.ts_ms >= window.start_ms - lookback,
            c.ts_ms < window.end_ms,
        )
        .subquery()
    )
    interval = interval_of(ordered.c.ts_ms, window).label("interval")
    delta = sa.case(
        (ordered.c.previous.is_(None), 0.0),
        (ordered.c.value >= ordered.c.previous, ordered.c.value - ordered.c.previous),
        else_=ordered.c.value,
    )
    columns = [ordered.c.series, interval, sa.func.sum(delta).label("value")]
    if at_rate:
        # The time the interval's increase was made in: from the sample before its first.
        since = sa.func.min(ordered.c.previous_at)
        columns.append((sa.func.max(ordered.c.ts_ms) - since).label("covered"))
    statement = (
        sa.select(*columns)
        .where(ordered.c.ts_ms >= window.start_ms)
        .group_by(ordered.c.series, interval)
        .order_by(ordered.c.series, interval)
    )
    return statement.having(since.is_not(None)) if at_rate else statement


@dataclass(frozen=True, slots=True)
class UtilisationSummary:
    workload_id: str
    series: str
    recent_max: float | None
    recent_count: int
    first_ts_ms: int


def utilisation_summaries(
    conn: Connection, workload_ids: Sequence[str], now_ms: int, window_ms: int, metric_type: str
) -> list[UtilisationSummary]:
    """Per workload and GPU series: the highest value in ``(now - window, now]``, how many
    samples that holds, and the earliest sample since ``now - 2 x window``."""
    in_window = T.ts_ms > now_ms - window_ms
    summaries: list[UtilisationSummary] = []
    for offset in range(0, len(workload_ids), 500):
        chunk = list(workload_ids[offset : offset + 500])
        statement = (
            sa.select(
                T.workload_id,
                T.series,
                sa.func.max(sa.case((in_window, T.value))).label("recent_max"),
                sa.func.count(sa.case((in_window, 1))).label("recent_count"),
                sa.func.min(T.ts_ms).label("first_ts"),
            )
            .where(
                # Given when it runs: a literal list would be held by a reference cycle.
                T.workload_id.in_(sa.bindparam("ids", expanding=True)),
                T.metric_type == metric_type,
                T.ts_ms > now_ms - 2 * window_ms,
                T.ts_ms <= now_ms,
            )
            .group_by(T.workload_id, T.series)
        )
        summaries.extend(
            UtilisationSummary(
                r.workload_id,
                r.series,
                None if r.recent_max is None else float(r.recent_max),
                int(r.recent_count),
                int(r.first_ts),
            )
            for r in conn.execute(statement, {"ids": chunk})
        )
    return summaries


def delete_samples_before(conn: Connection, cutoff_ms: int) -> int:
    """Retention: drop every sample (of workloads and of pods) older than ``cutoff_ms``;
    returns how many went."""
    deleted = 0
    for table in (metric_samples, pod_metric_samples):
        result = conn.execute(sa.delete(table).where(table.c.ts_ms < cutoff_ms))
        deleted += int(result.rowcount or 0)
    return deleted


def count_samples(conn: Connection, workload_id: str | None = None) -> int:
    statement = sa.select(sa.func.count()).select_from(metric_samples)
    if workload_id is not None:
        statement = statement.where(T.workload_id == workload_id)
    return int(conn.execute(statement).scalar_one())


def derive_series(
    conn: Connection,
    workload_id: str,
    source: tuple[str, str],
    target: tuple[str, str],
    *,
    constant: float | None = None,
    scale: float | None = None,
) -> None:
    """Write a series at the timestamps of another one of the same workload, in the database.

    ``source`` and ``target`` are ``(metric_type, series)``; the value is ``constant`` or the
    source value times ``scale`` rounded to a whole number (histogram buckets). The demo uses
    it for flat request/limit series and for buckets that follow a request counter.
    """
    if constant is not None:
        value: sa.ColumnElement = sa.literal(float(constant), sa.Float)
    else:
        value = sa.func.round(T.value * sa.literal(float(scale or 0.0), sa.Float))
    select = sa.select(
        sa.literal(workload_id, sa.String),
        sa.literal(target[0], sa.String),
        sa.literal(target[1], sa.String),
        T.ts_ms,
        value,
    ).where(T.workload_id == workload_id, T.metric_type == source[0], T.series == source[1])
    conn.execute(
        metric_samples.insert().from_select(
            ["workload_id", "metric_type", "series", "ts_ms", "value"], select
        )
    )


def workloads_with_samples(conn: Connection) -> int:
    """How many workloads have any stored sample."""
    inner = sa.select(T.workload_id).distinct().subquery()
    return int(conn.execute(sa.select(sa.func.count()).select_from(inner)).scalar_one())
