"""How the API behaves at 10,000 … 1,000,000 workloads, on SQLite and on PostgreSQL.

For each database and size, the demo organisation is seeded, a real ``gpufleet serve`` process is
started, and every request is timed beside its floor: the very SQL the server runs for that
request (captured from an in-process app with the same parameters), executed straight through
the driver. Ingest is timed through the API with batches of 500 beside a raw batch upsert of
the same rows. Prints p50/p95, the ratios and the server's peak memory.

    .venv/bin/python -m bench.scale --sizes 10000,100000 --databases sqlite,postgresql
    .venv/bin/python -m bench.scale --sizes 10000,100000,1000000   # the full run
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import sqlalchemy as sa
from fastapi.testclient import TestClient
from tests.support.agent_reports import report
from tests.support.ports import free_port
from tests.support.postgres import PostgresServer, start_postgres

from gpufleet.api.app import create_app
from gpufleet.demo.seed import seed_demo
from gpufleet.settings import Settings
from gpufleet.store.dialect import upsert
from gpufleet.store.engine import create_store_engine
from gpufleet.store.ingest import ingest_row
from gpufleet.store.migrate import upgrade
from gpufleet.store.tables import workloads

ADMIN_ID, ADMIN_SECRET = "bench-admin", "bench-admin-secret"
BENCH_CLUSTER = "3e1f4c2a-9b7d-4e6f-8a5c-0d2b4f6a8c1e"
INGEST_BATCH = 500
WORKLOADS = "/api/v1/workloads"

# name, path, params: at least four filter/sort combinations, each at limit 50 and 500.
LIST_CASES = [
    ("default sort", {}),
    ("createdAt desc", {"sortBy": "createdAt", "sortOrder": "desc"}),
    ("phase==Running by allocatedGPU", {"filterBy": "phase==Running", "sortBy": "allocatedGPU"}),
    ("name contains, by name", {"filterBy": "name=@train", "sortBy": "name"}),
    ("by totalRunningTimeSeconds desc", {"sortBy": "totalRunningTimeSeconds", "sortOrder": "desc"}),
]


@dataclass
class Row:
    database: str
    size: int
    case: str
    api: list[float]
    floor: list[float]
    unit: str = "ms"

    def line(self) -> str:
        if self.unit == "ms":
            api50, api95 = _p(self.api, 50), _p(self.api, 95)
            floor50, floor95 = _p(self.floor, 50), _p(self.floor, 95)
            ratio = api50 / floor50 if floor50 else float("inf")
            return (
                f"{self.database:<10} {self.size:>9,} {self.case:<44} "
                f"{api50:>8.2f} {api95:>8.2f} {floor50:>8.2f} {floor95:>8.2f} {ratio:>6.2f}x"
            )
        api_rate, floor_rate = self.api[0], self.floor[0]
        return (
            f"{self.database:<10} {self.size:>9,} {self.case:<44} "
            f"{api_rate:>8.0f} {'/s':>8} {floor_rate:>8.0f} {'/s':>8} "
            f"{api_rate / floor_rate:>6.2f}x"
        )


def _p(values: list[float], percentile: int) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, round(percentile / 100 * (len(ordered) - 1)))
    return ordered[index]


class Capture:
    """Records the statements an in-process app sends to the database."""

    def __init__(self, engine: sa.Engine) -> None:
        self.statements: list[tuple[str, Any]] = []
        sa.event.listen(engine, "before_cursor_execute", self._record)

    def _record(self, _conn, _cursor, statement, parameters, _context, _executemany) -> None:
        self.statements.append((statement, parameters))

    def workload_statements(self) -> list[tuple[str, Any]]:
        # The request's own queries; token checks and access rules are API overhead.
        return [(s, p) for s, p in self.statements if "workloads" in s]


class Floor:
    """The same SQL through the bare driver, with the connection setup the server uses."""

    def __init__(self, database_url: str) -> None:
        url = sa.make_url(database_url)
        if url.get_backend_name() == "sqlite":
            self.conn: Any = sqlite3.connect(url.database, check_same_thread=False)
            for pragma in ("journal_mode=WAL", "foreign_keys=ON", "case_sensitive_like=ON"):
                self.conn.execute(f"PRAGMA {pragma}")
        else:
            self.conn = psycopg.connect(url.set(drivername="postgresql").render_as_string(False))

    def run(self, statements: list[tuple[str, Any]]) -> float:
        started = time.perf_counter()
        cursor = self.conn.cursor()
        for statement, parameters in statements:
            cursor.execute(statement, parameters)
            cursor.fetchall()
        cursor.close()
        self.conn.rollback()
        return (time.perf_counter() - started) * 1000

    def close(self) -> None:
        self.conn.close()


@contextmanager
def server_process(database_url: str, log_path: Path) -> Iterator[tuple[str, int]]:
    """A real ``gpufleet serve``; yields its base URL and process id."""
    port = free_port()
    executable = Path(sys.executable).with_name("gpufleet")
    command = [str(executable), "serve", "--database-url", database_url, "--port", str(port)]
    env = {
        **os.environ,
        "GPUFLEET_ADMIN_CLIENT_ID": ADMIN_ID,
        "GPUFLEET_ADMIN_CLIENT_SECRET": ADMIN_SECRET,
        "GPUFLEET_LOG_LEVEL": "warning",
        "GPUFLEET_DB_POOL_SIZE": "10",
    }
    with open(log_path, "ab") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited; see {log_path}")
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server did not become ready")
            time.sleep(0.2)
        yield base, process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _token(client: httpx.Client | TestClient) -> str:
    body = {"grantType": "client_credentials", "clientID": ADMIN_ID, "clientSecret": ADMIN_SECRET}
    response = client.post("/api/v1/token", json=body)
    response.raise_for_status()
    return response.json()["accessToken"]


def _time_api(client: httpx.Client, path: str, params: dict, repeats: int) -> list[float]:
    timings = []
    for _ in range(repeats + 1):
        started = time.perf_counter()
        response = client.get(path, params=params)
        timings.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    return timings[1:]


def _request_cases(sample_id: str) -> list[tuple[str, str, dict]]:
    cases = []
    for name, params in LIST_CASES:
        for limit in (50, 500):
            cases.append((f"list {name} (limit {limit})", WORKLOADS, {**params, "limit": limit}))
    cases += [
        ("count", f"{WORKLOADS}/count", {}),
        ("count phase==Running", f"{WORKLOADS}/count", {"filterBy": "phase==Running"}),
        ("count name contains", f"{WORKLOADS}/count", {"filterBy": "name=@train"}),
        ("get", f"{WORKLOADS}/{sample_id}", {}),
        (
            "telemetry WORKLOADS_COUNT by Phase",
            f"{WORKLOADS}/telemetry",
            {"telemetryType": "WORKLOADS_COUNT", "groupBy": "Phase"},
        ),
    ]
    return cases


def _ingest_batches(count: int) -> list[list[dict]]:
    rng = random.Random(count)
    return [
        [
            report(
                str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                observed=rng.randrange(3600),
                phase=rng.choice(["Pending", "Running", "Completed"]),
                cluster_id=BENCH_CLUSTER,
            )
            for _ in range(INGEST_BATCH)
        ]
        for _ in range(count)
    ]


def _ingest_api(client: httpx.Client, batches: list[list[dict]]) -> float:
    path = f"/api/v1/ingest/clusters/{BENCH_CLUSTER}/workloads"
    started = time.perf_counter()
    for items in batches:
        client.post(path, json={"workloads": items}).raise_for_status()
    return sum(map(len, batches)) / (time.perf_counter() - started)


def _ingest_floor(engine: sa.Engine, batches: list[list[dict]]) -> float:
    from gpufleet.schemas.ingest import IngestWorkload

    rows = [[ingest_row(IngestWorkload.model_validate(i).model_dump()) for i in b] for b in batches]
    columns = [c for c in rows[0][0] if c != "id"]
    statement = upsert(engine.dialect.name, workloads, ["id"], columns)
    started = time.perf_counter()
    for batch_rows in rows:
        with engine.begin() as conn:
            conn.execute(statement, batch_rows)
    return sum(map(len, rows)) / (time.perf_counter() - started)


def _remove_bench_cluster(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(workloads.delete().where(workloads.c.cluster_id == BENCH_CLUSTER))


def bench_size(
    database: str, database_url: str, size: int, repeats: int, ingest_batches: int, workdir: Path
) -> tuple[list[Row], float]:
    settings = Settings(
        database_url=database_url, admin_client_id=ADMIN_ID, admin_client_secret=ADMIN_SECRET
    )
    engine = create_store_engine(settings)
    capture = Capture(engine)
    app = create_app(settings, engine=engine)
    with engine.connect() as conn:
        sample_id = conn.execute(
            sa.select(workloads.c.id).order_by(workloads.c.id).offset(size // 2).limit(1)
        ).scalar_one()
    floor = Floor(database_url)
    rows: list[Row] = []
    with (
        TestClient(app) as local,
        server_process(database_url, workdir / f"server-{database}-{size}.log") as (base, pid),
        httpx.Client(base_url=base, timeout=300) as remote,
    ):
        local.headers["Authorization"] = f"Bearer {_token(local)}"
        remote.headers["Authorization"] = f"Bearer {_token(remote)}"
        for case, path, params in _request_cases(sample_id):
            capture.statements.clear()
            local.get(path, params=params).raise_for_status()
            statements = capture.workload_statements()
            api = _time_api(remote, path, params, repeats)
            floor_times = [floor.run(statements) for _ in range(repeats)]
            rows.append(Row(database, size, case, api, floor_times))
            print(rows[-1].line(), flush=True)
        batches = _ingest_batches(ingest_batches * 2)
        api_rate = _ingest_api(remote, batches[:ingest_batches])
        floor_rate = _ingest_floor(engine, batches[ingest_batches:])
        rows.append(
            Row(
                database,
                size,
                f"ingest (batches of {INGEST_BATCH})",
                [api_rate],
                [floor_rate],
                "rate",
            )
        )
        print(rows[-1].line(), flush=True)
        memory = peak_rss_mib(pid)
    floor.close()
    _remove_bench_cluster(engine)
    engine.dispose()
    return rows, memory


def _seed_to(engine: sa.Engine, size: int) -> None:
    with engine.connect() as conn:
        present = conn.execute(sa.select(sa.func.count()).select_from(workloads)).scalar_one()
    if present < size:
        started = time.perf_counter()
        seed_demo(engine, workloads=size - present, seed=11)
        print(f"# seeded {size - present:,} workloads in {time.perf_counter() - started:.0f}s")
        # What autovacuum would soon do on PostgreSQL; SQLite is left as the server leaves it.
        if engine.dialect.name == "postgresql":
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE")


@contextmanager
def database(kind: str, workdir: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{workdir / 'scale.db'}"
        return
    server: PostgresServer = start_postgres()
    try:
        yield server.create_database("scale")
    finally:
        server.destroy()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--repeats", type=int, default=15, help="timed requests per case")
    parser.add_argument("--ingest-batches", type=int, default=10)
    args = parser.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    workdir = Path(tempfile.mkdtemp(prefix="gpufleet-scale-"))
    print(
        f"{'database':<10} {'workloads':>9} {'case':<44} "
        f"{'api p50':>8} {'api p95':>8} {'floor50':>8} {'floor95':>8} {'ratio':>7}"
    )
    memory: list[tuple[str, int, float]] = []
    all_rows: list[Row] = []
    try:
        for kind in args.databases.split(","):
            with database(kind, workdir) as url:
                engine = create_store_engine(Settings(database_url=url))
                upgrade(engine)
                for size in sizes:
                    _seed_to(engine, size)
                    repeats = max(5, args.repeats // max(1, size // 100_000))
                    rows, peak = bench_size(kind, url, size, repeats, args.ingest_batches, workdir)
                    all_rows += rows
                    memory.append((kind, size, peak))
                engine.dispose()
        print("\nserver peak memory (VmHWM):")
        for kind, size, peak in memory:
            print(f"  {kind:<10} {size:>9,} workloads: {peak:7.1f} MiB")
        _print_scaling(all_rows)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def _print_scaling(rows: list[Row]) -> None:
    """List p50 at the largest size over p50 at the smallest, per database and case."""
    by_key: dict[tuple[str, str], dict[int, float]] = {}
    for row in rows:
        if row.unit == "ms" and row.case.startswith("list"):
            by_key.setdefault((row.database, row.case), {})[row.size] = _p(row.api, 50)
    print("\nlist p50, largest size / smallest size:")
    for (kind, case), timings in by_key.items():
        if len(timings) > 1:
            low, high = min(timings), max(timings)
            print(f"  {kind:<10} {case:<52} {timings[high] / timings[low]:6.2f}x")


if __name__ == "__main__":
    sys.exit(main())
