"""How stored times are kept: on SQLite integer microseconds in every time column of every
table (a value written as text would order before none of them and after all, silently), in a
store of 8 KiB pages; on PostgreSQL ``timestamptz``."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import sqlalchemy as sa

from gpufleet.demo.seed import seed_demo
from gpufleet.store.dialect import SQLITE_PAGE_SIZE
from gpufleet.store.tables import metadata, workloads
from gpufleet.store.types import UtcDateTime

TIME_COLUMNS = [
    (table, column)
    for table in metadata.sorted_tables
    for column in table.columns
    if isinstance(column.type, UtcDateTime)
]


def _kinds(conn: sa.Connection) -> Counter:
    """How many values of each storage class the time columns hold, by table."""
    kinds: Counter = Counter()
    for table, column in TIME_COLUMNS:
        counted = conn.execute(
            sa.select(sa.func.typeof(column), sa.func.count()).group_by(sa.func.typeof(column))
        )
        for kind, count in counted:
            kinds[(table.name, kind)] += count
    return kinds


def test_every_time_column_holds_integers_or_timestamptz(client, engine):
    seed_demo(engine, workloads=40, seed=3)
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            found = {
                conn.execute(
                    sa.text(
                        "SELECT data_type FROM information_schema.columns "
                        "WHERE table_schema = current_schema() AND table_name = :table "
                        "AND column_name = :column"
                    ),
                    {"table": t.name, "column": c.name},
                ).scalar_one()
                for t, c in TIME_COLUMNS
            }
            assert found == {"timestamp with time zone"}
            return
        kinds = _kinds(conn)
        assert conn.exec_driver_sql("PRAGMA page_size").scalar_one() == SQLITE_PAGE_SIZE
    # The demo, the administrator's token and its audit wrote times into these tables.
    for table in ("workloads", "workload_pods", "workload_events", "workload_phase_history"):
        assert kinds[(table, "integer")] > 0, table
    assert kinds[("signing_keys", "integer")] > 0
    assert {kind for _, kind in kinds} <= {"integer", "null"}, kinds


def test_times_compare_and_read_back_to_the_microsecond(engine):
    """Times of one second apart in either direction of the epoch's digits, and within one
    millisecond, order and come back exactly as they went in."""
    moments = [
        datetime(2026, 12, 6, 4, 59, 59, 999999, tzinfo=UTC),
        datetime(2026, 12, 6, 5, 0, 0, tzinfo=UTC),
        datetime(2026, 12, 6, 5, 0, 0, 1, tzinfo=UTC),
        datetime(2001, 9, 9, 1, 46, 40, tzinfo=UTC),  # 10**9 epoch seconds
    ]
    probe = sa.Table("time_probe", sa.MetaData(), sa.Column("at", UtcDateTime))
    with engine.begin() as conn:
        probe.create(conn)
        conn.execute(probe.insert(), [{"at": m} for m in moments])
        ordered = conn.execute(sa.select(probe.c.at).order_by(probe.c.at)).scalars().all()
        later = conn.execute(sa.select(sa.func.count()).where(probe.c.at > moments[1])).scalar_one()
        latest = conn.execute(sa.select(sa.func.max(probe.c.at))).scalar_one()
        probe.drop(conn)
    assert ordered == sorted(moments)
    assert (later, latest) == (1, moments[2])
    assert all(m.tzinfo is UTC for m in ordered)
    # The table's own columns are of the same type.
    assert isinstance(workloads.c.created_at.type, UtcDateTime)
