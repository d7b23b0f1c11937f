"""The batch helpers of the dialect seam: one_of (IN, or = ANY of one array) and update_many
(one UPDATE … FROM the unnested rows, or an executemany), on both databases."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from gpufleet.settings import Settings
from gpufleet.store.dialect import one_of, one_of_parameter, update_many, write_many
from gpufleet.store.engine import create_store_engine
from gpufleet.store.tables import usage_open, usage_states

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
