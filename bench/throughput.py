"""Requests per second at 1, 8 and 32 concurrent clients, beside the raw queries at the same
concurrency, on SQLite and PostgreSQL.

A real ``gpufleet serve --workers N`` serves a store of ``--workloads`` demo workloads. For
each request (a list page, a get, a count, a telemetry grouping) the benchmark runs, for
``--seconds`` per cell:

* **API**: that many clients, each with its own keep-alive connection, sending the request
  back to back (an asyncio client in this process);
* **raw**: that many threads, each with its own driver connection, running the statements
  the server sends for the request (captured from an in-process app) with every row fetched.

Prints requests per second of both, API/raw, and the machine's load average after each
cell. The machine's cores are shared by the server, the database and the clients, so the raw
column is what the database alone does at that concurrency, and the ratio is what HTTP,
authentication, scope and JSON cost on top.

    .venv/bin/python -m bench.throughput                       # both databases, 2 workers
    .venv/bin/python -m bench.throughput --databases sqlite --workers 4 --seconds 5
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from bench.floors import Capture, execute, raw_connection
from bench.scale import ADMIN_ID, ADMIN_SECRET, QUIET, postgres_server, server_process
from fastapi.testclient import TestClient

from gpufleet.api.app import create_app
from gpufleet.demo.seed import seed_demo
from gpufleet.settings import Settings
from gpufleet.store.engine import create_store_engine
from gpufleet.store.migrate import upgrade
from gpufleet.store.tables import workloads

CONCURRENCY = (1, 8, 32)
WORKLOADS = "/api/v1/workloads"


def requests_for(sample_id: str) -> list[tuple[str, str, dict]]:
    return [
        ("list (limit 50)", WORKLOADS, {"limit": 50}),
        ("get", f"{WORKLOADS}/{sample_id}", {}),
        ("count phase==Running", f"{WORKLOADS}/count", {"filterBy": "phase==Running"}),
        (
            "telemetry by Phase",
            f"{WORKLOADS}/telemetry",
            {"telemetryType": "WORKLOADS_COUNT", "groupBy": "Phase"},
        ),
    ]


@contextmanager
def workers_server(database_url: str, workers: int, log_path: Path) -> Iterator[str]:
    """``gpufleet serve --workers N`` on ``database_url``; yields its base URL."""
    env = {
        # 32 clients over N workers: each worker's pool holds its share of them.
        "GPUFLEET_DB_POOL_SIZE": str(max(5, 32 // workers + 2)),
        # Every client is the administrator: the per-caller bound on expensive reads would
        # measure the queue, not the server.
        "GPUFLEET_CALLER_MAX_CONCURRENT_READS": "64",
    }
    with server_process(database_url, log_path, ["--workers", str(workers)], env) as (base, _):
        yield base


def _token(base: str) -> str:
    body = {"grantType": "client_credentials", "clientID": ADMIN_ID, "clientSecret": ADMIN_SECRET}
    response = httpx.post(f"{base}/api/v1/token", json=body, timeout=60)
    response.raise_for_status()
    return response.json()["accessToken"]


async def _api_rate(base: str, token: str, path: str, params: dict, clients: int, seconds: float):
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    done = 0
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=120) as c:
        await c.get(path, params=params)
        stop = time.perf_counter() + seconds

        async def one_client() -> None:
            nonlocal done
            while time.perf_counter() < stop:
                (await c.get(path, params=params)).raise_for_status()
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(clients)))
        return done / (time.perf_counter() - started)


def _raw_rate(url: str, statements: list[tuple[str, Any]], clients: int, seconds: float) -> float:
    counts = [0] * clients
    ready = threading.Barrier(clients + 1)
    stop = [0.0]

    def one_client(slot: int) -> None:
        with raw_connection(url) as conn:
            for sql, parameters in statements:
                execute(conn, sql, parameters)
            ready.wait()
            while time.perf_counter() < stop[0]:
                for sql, parameters in statements:
                    execute(conn, sql, parameters)
                counts[slot] += 1

    threads = [threading.Thread(target=one_client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    stop[0] = time.perf_counter() + 3600
    ready.wait()
    started = time.perf_counter()
    stop[0] = started + seconds
    for thread in threads:
        thread.join()
    return sum(counts) / (time.perf_counter() - started)


def captured(app_client: TestClient, capture: Capture, path: str, params: dict) -> list:
    """The statements the server sends for a request, without authentication's own."""
    capture.take()
    app_client.get(path, params=params).raise_for_status()
    return [(s, p) for s, p in capture.take() if "workloads" in s]


@contextmanager
def store(kind: str, workdir: Path, size: int) -> Iterator[str]:
    """A seeded store: a SQLite file, or a database of a throwaway PostgreSQL."""
    if kind == "sqlite":
        url = f"sqlite:///{workdir / 'throughput.db'}"
    else:
        server_cm = postgres_server(None)
        server = server_cm.__enter__()
        url = server.create_database("throughput")
    try:
        engine = create_store_engine(Settings(database_url=url))
        upgrade(engine)
        seed_demo(engine, workloads=size, seed=11, details=False, metrics_history=False)
        if kind == "postgresql":
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE")
        engine.dispose()
        yield url
    finally:
        if kind != "sqlite":
            server_cm.__exit__(None, None, None)


def bench_database(kind: str, args: argparse.Namespace, workdir: Path) -> None:
    with store(kind, workdir, args.workloads) as url:
        settings = Settings(
            database_url=url, admin_client_id=ADMIN_ID, admin_client_secret=ADMIN_SECRET, **QUIET
        )
        engine = create_store_engine(settings)
        capture = Capture(engine)
        with engine.connect() as conn:
            sample_id = conn.execute(
                sa.select(workloads.c.id).order_by(workloads.c.id).limit(1)
            ).scalar_one()
        cases = requests_for(sample_id)
        with TestClient(create_app(settings, engine=engine)) as local:
            local.headers["Authorization"] = f"Bearer {_local_token(local)}"
            statements = {name: captured(local, capture, p, q) for name, p, q in cases}
        engine.dispose()
        with workers_server(url, args.workers, workdir / f"server-{kind}.log") as base:
            token = _token(base)
            for name, path, params in cases:
                for clients in CONCURRENCY:
                    api = asyncio.run(_api_rate(base, token, path, params, clients, args.seconds))
                    raw = _raw_rate(url, statements[name], clients, args.seconds)
                    print(
                        f"{kind:<10} {args.workers:>7} {name:<22} {clients:>7} "
                        f"{api:>9,.0f} {raw:>9,.0f} {api / raw:>8.2f} {_load():>6}",
                        flush=True,
                    )


def _load() -> str:
    """The machine's one-minute load average: other work on shared cores lowers every rate."""
    return f"{os.getloadavg()[0]:.1f}"


def _local_token(client: TestClient) -> str:
    body = {"grantType": "client_credentials", "clientID": ADMIN_ID, "clientSecret": ADMIN_SECRET}
    response = client.post("/api/v1/token", json=body)
    response.raise_for_status()
    return response.json()["accessToken"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--workers", type=int, default=2, help="server processes")
    parser.add_argument("--workloads", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=3.0, help="per cell")
    args = parser.parse_args(argv)
    print(
        f"{'database':<10} {'workers':>7} {'request':<22} {'clients':>7} "
        f"{'API r/s':>9} {'raw q/s':>9} {'API/raw':>8} {'load':>6}"
    )
    print(f"# {os.cpu_count()} cores; load average before: {_load()}")
    with tempfile.TemporaryDirectory(prefix="gpufleet-throughput-") as directory:
        for kind in args.databases.split(","):
            bench_database(kind, args, Path(directory))
    return 0


if __name__ == "__main__":
    sys.exit(main())
