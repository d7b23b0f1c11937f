"""A long background task that writes page after page leaves SQLite's write lock free between
its transactions, so a writer waiting for it (an agent's ingest) gets in before its busy
timeout instead of failing with 503 (seen at 1,000,000 workloads while the usage ledger
accrued some 600,000 live workloads a minute)."""

from __future__ import annotations

import sqlite3
import threading
import time

import sqlalchemy as sa

from gpufleet.settings import Settings
from gpufleet.store.dialect import pause_for_waiting_writers
from gpufleet.store.engine import create_store_engine

# The task holds the lock this long per transaction, in all longer than the writer may wait:
# the writer can only get in between two of the task's transactions.
HELD_SECONDS = 0.03
TRANSACTIONS = 60
WRITER_TIMEOUT_SECONDS = 1.0


def test_a_writer_waiting_behind_a_task_of_many_transactions_gets_in(tmp_path):
    path = tmp_path / "busy.db"
    engine = create_store_engine(Settings(database_url=f"sqlite:///{path}"))
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE pages (n INTEGER)")
    started = threading.Event()

    def task() -> None:
        for n in range(TRANSACTIONS):
            with engine.begin() as conn:
                conn.execute(sa.text("INSERT INTO pages VALUES (:n)"), {"n": n})
                started.set()
                time.sleep(HELD_SECONDS)  # the page's work, the lock held
            pause_for_waiting_writers(engine.dialect.name)

    worker = threading.Thread(target=task)
    worker.start()
    try:
        assert started.wait(10)
        writer = sqlite3.connect(path, timeout=WRITER_TIMEOUT_SECONDS, isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")  # raises "database is locked" after the timeout
        writer.execute("INSERT INTO pages VALUES (-1)")
        writer.execute("COMMIT")
        writer.close()
    finally:
        worker.join()
        engine.dispose()
    with sqlite3.connect(path) as check:
        assert check.execute("SELECT count(*) FROM pages").fetchone() == (TRANSACTIONS + 1,)
