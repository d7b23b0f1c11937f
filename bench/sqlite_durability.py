"""What durable ingest costs on SQLite: ingest throughput with ``synchronous`` NORMAL vs FULL.

In WAL mode, NORMAL syncs the log only at checkpoints, so a power loss can drop the last
transactions the server has already answered 200 for; FULL syncs the log at every commit.
This benchmark posts the same ingest batches to an in-process server on a fresh SQLite file
in each mode and prints workloads per second and milliseconds per request, beside the floor:
bare one-row commits through ``sqlite3`` in the same mode (what one fsync per commit costs on
this disk).

    .venv/bin/python -m bench.sqlite_durability [--requests 200] [--sizes 1,100,500]
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
import uuid
from pathlib import Path

from fastapi.testclient import TestClient
from tests.support.access import key_with_role
from tests.support.agent_reports import CLUSTER_ID, report
from tests.support.shared_app import admin_client

from gpufleet.api.app import create_app
from gpufleet.settings import Settings

MODES = ("NORMAL", "FULL")
ADMIN_ID, ADMIN_SECRET = "test-admin", "test-admin-secret"


def ingest_rate(workdir: Path, mode: str, requests: int, size: int) -> tuple[float, float]:
    """Workloads per second and milliseconds per request, posting new workloads."""
    settings = Settings(
        database_url=f"sqlite:///{workdir / f'{mode}-{size}.db'}",
        admin_client_id=ADMIN_ID,
        admin_client_secret=ADMIN_SECRET,
        sqlite_synchronous=mode,
    )
    app = create_app(settings)
    path = f"/api/v1/ingest/clusters/{CLUSTER_ID}/workloads"
    batches = [
        {"workloads": [report(str(uuid.uuid4()), observed=i) for _ in range(size)]}
        for i in range(requests)
    ]
    with admin_client(app) as admin:
        agent = key_with_role(admin, "cluster-agent", "cluster", CLUSTER_ID)
        with TestClient(app, headers=agent) as client:
            client.post(path, json=batches[0]).raise_for_status()
            started = time.perf_counter()
            for batch in batches[1:]:
                client.post(path, json=batch).raise_for_status()
            elapsed = time.perf_counter() - started
    app.state.gpufleet.engine.dispose()
    done = requests - 1
    return done * size / elapsed, elapsed / done * 1000


def commit_floor(workdir: Path, mode: str, commits: int) -> float:
    """Milliseconds per bare one-row commit in WAL mode with ``synchronous=mode``."""
    conn = sqlite3.connect(workdir / f"floor-{mode}.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={mode}")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    started = time.perf_counter()
    for i in range(commits):
        conn.execute("BEGIN")
        conn.execute("INSERT INTO t (v) VALUES (?)", (str(i),))
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed / commits * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200, help="ingest requests per case")
    parser.add_argument("--sizes", default="1,100,500", help="workloads per request")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="gpufleet-durability-") as tmp:
        workdir = Path(tmp)
        floors = {mode: commit_floor(workdir, mode, args.requests * 5) for mode in MODES}
        print(f"{'workloads/request':>18} {'mode':>7} {'workloads/s':>12} {'ms/request':>11}")
        results = {}
        for size in sizes:
            for mode in MODES:
                rate, per_request = ingest_rate(workdir, mode, args.requests, size)
                results[size, mode] = rate
                print(f"{size:>18} {mode:>7} {rate:>12.0f} {per_request:>11.2f}")
        print()
        print(f"{'workloads/request':>18} {'FULL / NORMAL throughput':>26}")
        for size in sizes:
            print(f"{size:>18} {results[size, 'FULL'] / results[size, 'NORMAL']:>26.2f}")
        print()
        print("floor: one-row commit through sqlite3, ms per commit")
        for mode in MODES:
            print(f"{mode:>7} {floors[mode]:.3f}")


if __name__ == "__main__":
    main()
