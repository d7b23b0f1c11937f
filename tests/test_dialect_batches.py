"""The batch helpers of the dialect seam: one_of (IN, or = ANY of one array), write_many and
update_many (one statement over the rows as JSON, or an executemany), on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from gpufleet.settings import Settings
from gpufleet.store.dialect import one_of, one_of_parameter, update_many, write_many
from gpufleet.store.engine import create_store_engine
from gpufleet.store.tables import usage_open, usage_states
from gpufleet.store.types import Json, UtcDateTime, UuidKey

ROWS = [
    {
        "workload_id": f"w{n:03d}",
        "at_ms": 1000 * n,
        "until_ms": 1000 * n,
        "cluster_id": "c",
        "department_id": "d",
        "project_id": "p",
        "submitter": "s",
        "type": "Training",
        "nodepools": "default",
        "gpu": 1.0,
        "cpu_cores": 0.0,
        "memory_gib": 0.0,
        "pending": False,
    }
    for n in range(300)
]


@pytest.fixture(scope="module")
def engine(module_database_url: str):
    engine = create_store_engine(Settings(database_url=module_database_url))
    with engine.begin() as conn:
        write_many(conn, usage_states.insert(), ROWS)
        write_many(
            conn, usage_open.insert(), [{"workload_id": r["workload_id"], "at_ms": 0} for r in ROWS]
        )
    yield engine
    engine.dispose()


@pytest.mark.parametrize(
    "wanted", [[], ["w001"], ["w299", "w000", "nope"], [r["workload_id"] for r in ROWS]]
)
def test_one_of_selects_exactly_the_listed_values(engine, wanted):
    with engine.connect() as conn:
        found = conn.execute(
            sa.select(usage_open.c.workload_id).where(
                one_of(conn.dialect.name, usage_open.c.workload_id, wanted)
            )
        ).scalars()
        assert sorted(found) == sorted(w for w in wanted if w != "nope")


@pytest.mark.parametrize(
    "wanted", [[], ["w001"], ["w299", "w000", "nope"], [r["workload_id"] for r in ROWS]]
)
def test_one_of_parameter_selects_the_values_given_when_it_runs(engine, wanted):
    with engine.connect() as conn:
        statement = sa.select(usage_open.c.workload_id).where(
            one_of_parameter(conn.dialect.name, usage_open.c.workload_id, "ids")
        )
        found = conn.execute(statement, {"ids": wanted}).scalars()
        assert sorted(found) == sorted(w for w in wanted if w != "nope")


def test_update_many_sets_each_row_by_its_key_and_leaves_the_others(engine):
    changed = [
        {**row, "until_ms": row["until_ms"] + 7, "gpu": 2.5, "pending": True} for row in ROWS[::3]
    ]
    with engine.begin() as conn:
        update_many(conn, usage_states, ("workload_id", "at_ms"), changed)
    with engine.connect() as conn:
        stored = {
            row.workload_id: row
            for row in conn.execute(sa.select(usage_states).order_by(usage_states.c.workload_id))
        }
    for n, row in enumerate(ROWS):
        got = stored[row["workload_id"]]
        if n % 3 == 0:
            assert (got.until_ms, got.gpu, bool(got.pending)) == (row["until_ms"] + 7, 2.5, True)
        else:
            assert (got.until_ms, got.gpu, bool(got.pending)) == (row["until_ms"], 1.0, False)


# Every kind of column a batch writes, in a table of its own.
_KINDS = sa.Table(
    "batch_value_kinds",
    sa.MetaData(),
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("text", sa.Text),
    sa.Column("small", sa.Integer),
    sa.Column("big", sa.BigInteger),
    sa.Column("share", sa.Float),
    sa.Column("flag", sa.Boolean),
    sa.Column("at", UtcDateTime),
    sa.Column("packed", sa.LargeBinary),
    sa.Column("document", Json),
    sa.Column("key", UuidKey),
)
_AWKWARD = ['a "quoted", {braced} text', "back\\slash\\", "naïve ✓ 🚀", "", "NULL", "line\nbreak"]


def _kind_rows() -> list[dict]:
    east = timezone(timedelta(hours=5, minutes=30))
    return [
        {
            "id": f"k{n:02d}",
            "text": _AWKWARD[n % len(_AWKWARD)] if n % 7 else None,
            "small": -(2**31) + 1 + n if n % 2 else 2**31 - 1 - n,
            "big": 2**62 + n if n % 2 else -(2**62) - n,
            "share": 0.1 * n + 1e-9 if n % 5 else None,
            "flag": [True, False, None][n % 3],
            "at": datetime(2025, 3, 1, 8, 0, n, 123000, tzinfo=UTC if n % 2 else east),
            "packed": bytes(range(n, n + 40)) if n % 4 else b"",
            "document": {"name": _AWKWARD[n % len(_AWKWARD)], "values": [n, 1.5, None, True]},
            "key": f"3e1f4c2a-9b7d-4e6f-8a5c-0d2b4f6a8c{n:02x}",
        }
        for n in range(24)
    ]


def test_write_many_stores_every_kind_of_value_as_a_plain_insert_would(module_database_url):
    engine = create_store_engine(Settings(database_url=module_database_url))
    try:
        _KINDS.create(engine)
        rows = _kind_rows()
        with engine.begin() as conn:
            write_many(conn, _KINDS.insert(), rows)
        with engine.connect() as conn:
            stored = [dict(row._mapping) for row in conn.execute(sa.select(_KINDS).order_by("id"))]
        for row in rows:
            row["at"] = row["at"].astimezone(UTC)
        assert stored == rows
    finally:
        _KINDS.drop(engine, checkfirst=True)
        engine.dispose()


def test_one_statement_serves_batches_of_different_columns(module_database_url):
    """A statement built once is wrapped per set of columns: each batch writes its own."""
    engine = create_store_engine(Settings(database_url=module_database_url))
    statement = _KINDS.insert()
    try:
        _KINDS.create(engine)
        with engine.begin() as conn:
            write_many(conn, statement, [{"id": "a", "text": "first", "small": 1}])
            write_many(conn, statement, [{"id": "b", "big": 2**40, "flag": True}])
            write_many(conn, statement, [{"id": "c", "text": "third", "small": 3}])
        with engine.connect() as conn:
            stored = conn.execute(
                sa.select(
                    _KINDS.c.id, _KINDS.c.text, _KINDS.c.small, _KINDS.c.big, _KINDS.c.flag
                ).order_by(_KINDS.c.id)
            ).all()
        assert [tuple(row) for row in stored] == [
            ("a", "first", 1, None, None),
            ("b", None, None, 2**40, True),
            ("c", "third", 3, None, None),
        ]
    finally:
        _KINDS.drop(engine, checkfirst=True)
        engine.dispose()


def test_a_batch_refuses_a_naive_time(module_database_url):
    engine = create_store_engine(Settings(database_url=module_database_url))
    try:
        _KINDS.create(engine)
        naive = {"id": "n", "at": datetime(2025, 3, 1, 8, 0)}
        with engine.begin() as conn, pytest.raises((ValueError, sa.exc.StatementError)) as raised:
            write_many(conn, _KINDS.insert(), [{"id": "m", "at": datetime.now(UTC)}, naive])
        assert "naive datetime" in str(raised.value)
        with engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(_KINDS)).scalar() == 0
    finally:
        _KINDS.drop(engine, checkfirst=True)
        engine.dispose()
