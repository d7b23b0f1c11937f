"""``gpufleet serve --workers N``: several processes serve one port, periodic tasks run once,
and no request handler holds the event loop while it waits for the database."""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from gpufleet.metrics.tasks import run_leased, task_lease
from gpufleet.store.leases import lease_holder, release_lease
from tests.support.agent_reports import batch, ingest_path, report


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # The command name is in parentheses and may hold spaces; the parent follows it.
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return sorted(found)


def _healthy(base_url: str) -> bool:
    # A new connection each time: the kernel gives it to a worker that is accepting.
    with httpx.Client(base_url=base_url, timeout=30) as fresh:
        return fresh.get("/healthz").status_code == 200


def test_two_workers_each_serve_and_stop_with_the_parent(start_server):
    server = start_server(args=["--workers", "2"])
    parent = server.process.pid
    workers = _children(parent)
    assert len(workers) == 2
    # With one worker stopped, the other alone takes new connections, and the other way round:
    # each of the two processes really serves the port.
    for paused in workers:
        os.kill(paused, signal.SIGSTOP)
        try:
            assert _healthy(server.base_url)
        finally:
            os.kill(paused, signal.SIGCONT)
    assert server.stop() == 0
    assert all(not Path(f"/proc/{pid}").exists() or _zombie(pid) for pid in workers)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_a_worker_that_dies_is_replaced(start_server):
    server = start_server(args=["--workers", "2"])
    first = _children(server.process.pid)
    os.kill(first[0], signal.SIGKILL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        now = _children(server.process.pid)
        if len(now) == 2 and first[0] not in now:
            break
        time.sleep(0.2)
    replaced = _children(server.process.pid)
    assert len(replaced) == 2 and first[0] not in replaced
    assert _healthy(server.base_url)


def test_a_periodic_task_runs_in_one_process_at_a_time(engine):
    runs: list[str] = []

    def job(holder: str):
        return lambda: runs.append(holder) or 1

    assert run_leased(engine, "retention", "first", 60, job("first")) == 1
    assert run_leased(engine, "retention", "second", 60, job("second")) is None
    assert run_leased(engine, "retention", "first", 60, job("first")) == 1
    # Another task has a lease of its own.
    assert run_leased(engine, "idle_gpus", "second", 60, job("second")) == 1
    with engine.begin() as conn:
        assert lease_holder(conn, task_lease("retention"), 0) == "first"
        release_lease(conn, task_lease("retention"), "first")
    assert run_leased(engine, "retention", "second", 60, job("second")) == 1
    assert runs == ["first", "first", "second", "second"]


def _hold_write_lock(engine: sa.Engine) -> sa.Connection:
    """A connection whose open transaction keeps every other writer of workloads waiting
    (and on PostgreSQL every reader too)."""
    conn = engine.connect()
    if engine.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.exec_driver_sql("LOCK TABLE workloads IN ACCESS EXCLUSIVE MODE")
    return conn


def _waiting_on_the_lock(engine: sa.Engine, count: int, seen: threading.Event) -> None:
    """Until ``count`` statements of the server wait for the lock (PostgreSQL shows them),
    or until the requests have been sent (SQLite's wait is invisible from outside)."""
    if engine.dialect.name == "sqlite":
        seen.wait(30)
        time.sleep(0.5)
        return
    deadline = time.monotonic() + 60
    with engine.connect() as conn:
        while time.monotonic() < deadline:
            waiting = conn.exec_driver_sql(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            ).scalar_one()
            # The activity view is read once per transaction: a new one sees it anew.
            conn.rollback()
            if waiting >= count:
                return
            time.sleep(0.05)
    pytest.fail("the requests never reached the database")


def test_requests_waiting_for_the_database_leave_the_event_loop_free(client, engine):
    workload_id = str(uuid.uuid4())
    assert client.post(ingest_path(), json=batch(report(workload_id))).status_code == 200
    requests = [("POST", ingest_path(), batch(report(workload_id, observed=60)))]
    if engine.dialect.name == "postgresql":
        # Reads wait on PostgreSQL's table lock too; SQLite's readers never wait for a writer.
        requests += [
            ("GET", "/api/v1/workloads", None),
            ("GET", f"/api/v1/workloads/{workload_id}", None),
            ("GET", "/api/v1/workloads/count", None),
            ("GET", "/api/v1/workloads/telemetry?telemetryType=WORKLOADS_COUNT", None),
        ]
    answers: dict[str, int] = {}
    sent = threading.Event()

    def call(method: str, path: str, body: dict | None) -> None:
        sent.set()
        answers[path] = client.request(method, path, json=body).status_code

    lock = _hold_write_lock(engine)
    threads = [threading.Thread(target=call, args=request) for request in requests]
    try:
        for thread in threads:
            thread.start()
        _waiting_on_the_lock(engine, len(requests), sent)
        # Answered while every request above is still waiting for the database.
        assert client.get("/healthz").status_code == 200
        assert answers == {}
    finally:
        lock.rollback()
        lock.close()
    for thread in threads:
        thread.join(60)
    assert answers == {path: 200 for _method, path, _body in requests}
