"""Demo seeding speed: ``seed_demo`` beside its floor, the same rows written by bare sqlite3.

The floor takes the exact column values the store would write (built before the clock starts)
and inserts them with ``sqlite3.executemany`` into an identical fresh schema, handling the
indexes the way the seeder does at that size. The ratio says what generation and the store's
row mapping add on top of the unavoidable database work.

    .venv/bin/python -m bench.demo_seed                     # 100,000 workloads
    .venv/bin/python -m bench.demo_seed --workloads 20000
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson

from gpufleet.demo import seed as demo_seed
from gpufleet.demo.workloads import generate_workloads
from gpufleet.settings import Settings
from gpufleet.store.engine import create_store_engine
from gpufleet.store.migrate import upgrade
from gpufleet.store.tables import workloads
from gpufleet.store.types import sqlite_time
from gpufleet.store.workload_documents import workload_row

ANCHOR = datetime(2026, 1, 1, tzinfo=UTC)


def _fresh_store(path: Path):
    engine = create_store_engine(Settings(database_url=f"sqlite:///{path}"))
    upgrade(engine)
    return engine


def _time_seed(directory: Path, count: int) -> float:
    engine = _fresh_store(directory / "seeded.db")
    started = time.perf_counter()
    demo_seed.seed_demo(engine, workloads=count, seed=1, anchor=ANCHOR, metrics_history=False)
    elapsed = time.perf_counter() - started
    engine.dispose()
    return elapsed


def _sqlite_value(value):
    if isinstance(value, datetime):
        return sqlite_time(value)
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return value


def _time_floor(directory: Path, count: int) -> float:
    engine = _fresh_store(directory / "floor.db")
    engine.dispose()
    columns = [column.name for column in workloads.columns if column.computed is None]
    simulated = list(generate_workloads(1, 0, count, ANCHOR))
    items = [workload.wire for workload in simulated]
    rows = [
        tuple(_sqlite_value(row.get(name)) for name in columns)
        for row in (workload_row(workload.wire, workload.before) for workload in simulated)
    ]
    index_of = {item["id"]: position for position, item in enumerate(items)}
    pools = [(item["id"], pool) for item in items for pool in item.get("currentNodePools") or []]
    index_sql = []
    connection = sqlite3.connect(directory / "floor.db", isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    statement = (
        f"INSERT INTO workloads ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    )
    started = time.perf_counter()
    if count >= demo_seed.BULK_LOAD_FROM:
        index_sql = [
            sql
            for (sql,) in connection.execute(
                "SELECT sql FROM sqlite_master WHERE type='index' AND tbl_name='workloads'"
                " AND sql IS NOT NULL"
            )
        ]
        for index in workloads.indexes:
            connection.execute(f"DROP INDEX {index.name}")
    for start in range(0, count, demo_seed.BATCH_SIZE):
        end = start + demo_seed.BATCH_SIZE
        connection.execute("BEGIN")
        connection.executemany(statement, rows[start:end])
        connection.executemany(
            "INSERT INTO workload_nodepools (workload_id, nodepool) VALUES (?, ?)",
            [pair for pair in pools if start <= index_of[pair[0]] < end],
        )
        connection.execute("COMMIT")
    for sql in index_sql:
        connection.execute(sql)
    elapsed = time.perf_counter() - started
    connection.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gpufleet-demo-bench-") as tmp:
        directory = Path(tmp)
        started = time.perf_counter()
        list(generate_workloads(1, 0, args.workloads, ANCHOR))
        generation = time.perf_counter() - started
        seeded = _time_seed(directory, args.workloads)
        floor = _time_floor(directory, args.workloads)
    per_row = 1e6 / args.workloads
    print(f"workloads            {args.workloads}")
    print(f"generation only      {generation:8.2f} s  ({generation * per_row:6.0f} us/workload)")
    print(f"seed_demo            {seeded:8.2f} s  ({seeded * per_row:6.0f} us/workload)")
    print(f"floor (bare sqlite3) {floor:8.2f} s  ({floor * per_row:6.0f} us/workload)")
    print(f"ratio seed/floor     {seeded / floor:8.2f}")


if __name__ == "__main__":
    main()
