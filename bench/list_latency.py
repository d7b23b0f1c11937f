"""List latency: ``limit=500`` with a filter and a sort over 100,000 demo workloads.

The API is a real ``gpufleet serve`` process timed over HTTP (keep-alive, full body read). Its
floor is the very SQL the server runs for the same request, captured from an in-process app
with the same parameters, executed straight through the driver (``sqlite3`` or ``psycopg``,
rows fetched) on a connection set up like the server's. Prints p50/p95 of both and the ratio.

    .venv/bin/python -m bench.list_latency                       # SQLite, 100,000 workloads
    .venv/bin/python -m bench.list_latency --postgresql          # a throwaway PostgreSQL
    .venv/bin/python -m bench.list_latency --profile 3           # where case 3's time goes
"""

from __future__ import annotations

import argparse
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import sqlalchemy as sa
from fastapi.testclient import TestClient
from tests.support.server import ADMIN_ID, ADMIN_SECRET, ServerProcess

from gpufleet.api.app import create_app
from gpufleet.settings import Settings

WORKLOADS = "/api/v1/workloads"
GOAL_RATIO = 1.5
CASES: list[tuple[str, dict[str, str]]] = [
    (
        "phase==Running, createdAt desc",
        {"filterBy": "phase==Running", "sortBy": "createdAt", "sortOrder": "desc"},
    ),
    (
        "project + GPUs, allocatedGPU desc",
        {
            "filterBy": "projectName==llm-pretrain,allocatedGPU>=1",
            "sortBy": "allocatedGPU",
            "sortOrder": "desc",
        },
    ),
    ("name=@train, by name", {"filterBy": "name=@train", "sortBy": "name"}),
]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def stored_workloads(database_url: str) -> int:
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table("workloads"):
                return 0
            return int(conn.execute(sa.text("SELECT count(*) FROM workloads")).scalar_one())
    finally:
        engine.dispose()


def seed(database_url: str, workloads: int) -> None:
    """Top the store up to ``workloads`` with ``gpufleet demo seed``."""
    missing = workloads - stored_workloads(database_url)
    if missing <= 0:
        return
    print(f"seeding {missing:,} demo workloads (once; kept for later runs)", flush=True)
    command = [sys.executable, "-m", "gpufleet.cli", "demo", "seed", "--workloads", str(missing)]
    subprocess.run([*command, "--database-url", database_url], check=True)


class Capture:
    """The SQL statements (with parameters) an engine sends to its driver."""

    def __init__(self, engine: sa.Engine) -> None:
        self.statements: list[tuple[str, Any]] = []
        sa.event.listen(engine, "before_cursor_execute", self._record)

    def _record(self, _conn, _cursor, statement, parameters, _context, _many) -> None:
        self.statements.append((statement, parameters))

    def take(self) -> list[tuple[str, Any]]:
        taken, self.statements = self.statements, []
        return taken


def listing_statement(database_url: str, params: dict[str, str]) -> tuple[str, Any]:
    """The statement the server runs to list workloads for ``params``."""
    app = create_app(
        Settings(
            database_url=database_url, admin_client_id=ADMIN_ID, admin_client_secret=ADMIN_SECRET
        )
    )
    engine = app.state.gpufleet.engine
    capture = Capture(engine)
    try:
        with TestClient(app) as client:
            token = client.post(
                "/api/v1/token",
                json={
                    "grantType": "client_credentials",
                    "clientID": ADMIN_ID,
                    "clientSecret": ADMIN_SECRET,
                },
            ).json()["accessToken"]
            capture.take()
            response = client.get(
                WORKLOADS, params=params, headers={"Authorization": f"Bearer {token}"}
            )
            response.raise_for_status()
    finally:
        engine.dispose()
    listed = [(s, p) for s, p in capture.take() if "FROM workloads" in s and "LIMIT" in s]
    if len(listed) != 1:
        raise RuntimeError(f"expected one listing statement, captured {len(listed)}")
    return listed[0]


@contextmanager
def raw_connection(database_url: str) -> Iterator[Any]:
    """A bare driver connection, set up like the server's (SQLite pragmas)."""
    url = sa.make_url(database_url)
    if url.get_backend_name() == "sqlite":
        conn: Any = sqlite3.connect(url.database)
        for pragma in ("journal_mode=WAL", "foreign_keys=ON", "case_sensitive_like=ON"):
            conn.execute(f"PRAGMA {pragma}")
    else:
        conn = psycopg.connect(url.set(drivername="postgresql").render_as_string(False))
    try:
        yield conn
    finally:
        conn.close()


def time_raw(conn: Any, statement: str, parameters: Any, repeats: int) -> tuple[list[float], int]:
    timings, rows = [], 0
    for _ in range(repeats + 2):
        started = time.perf_counter()
        cursor = conn.cursor()
        cursor.execute(statement, parameters)
        rows = len(cursor.fetchall())
        cursor.close()
        conn.rollback()
        timings.append((time.perf_counter() - started) * 1000)
    return timings[2:], rows


def time_api(client: httpx.Client, params: dict[str, str], repeats: int) -> tuple[list[float], int]:
    timings, items = [], 0
    for _ in range(repeats + 2):
        started = time.perf_counter()
        response = client.get(WORKLOADS, params={**params, "limit": "500"})
        body = response.content
        timings.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
        items = body.count(b'"tenantId"')
    return timings[2:], items


def profile(database_url: str, params: dict[str, str], repeats: int) -> None:
    """Where the server-side work of one listing goes: SQL, row mapping, JSON (pyinstrument).

    The store and response calls a request makes are profiled in this thread (a profiler sees
    only its own thread, and the server runs routes in worker threads); what the API time adds
    beyond them is HTTP, routing and authentication.
    """
    from pyinstrument import Profiler

    from gpufleet.api.responses import json_response
    from gpufleet.query.listing import build_page, build_selection
    from gpufleet.store.engine import create_store_engine
    from gpufleet.store.workloads import list_workloads

    engine = create_store_engine(Settings(database_url=database_url))
    selection = build_selection(
        now=datetime.now(UTC), filter_by=[params["filterBy"]], search=None, deleted=None
    )
    page = build_page(
        selection,
        sort_by=params.get("sortBy"),
        sort_order=params.get("sortOrder"),
        offset=0,
        limit=500,
    )
    profiler = Profiler(interval=0.0005)
    with engine.connect() as conn:
        list_workloads(conn, page)
        with profiler:
            for _ in range(repeats):
                items, _next = list_workloads(conn, page)
                json_response({"workloads": items})
    engine.dispose()
    print(profiler.output_text(unicode=True, color=False, show_all=False))


def run(database_url: str, workloads: int, repeats: int, workdir: Path) -> int:
    seed(database_url, workloads)
    total = stored_workloads(database_url)
    rows = []
    with (
        ServerProcess(
            database_url, log_dir=workdir, extra_env={"GPUFLEET_LOG_LEVEL": "warning"}
        ) as server,
        httpx.Client(base_url=server.base_url, headers=server.auth_headers(), timeout=60) as client,
        raw_connection(database_url) as conn,
    ):
        for name, params in CASES:
            statement, parameters = listing_statement(database_url, {**params, "limit": "500"})
            api, items = time_api(client, params, repeats)
            raw, fetched = time_raw(conn, statement, parameters, repeats)
            rows.append((name, api, raw, items, fetched))
    dialect = sa.make_url(database_url).get_backend_name()
    print(f"\nlist limit=500 over {total:,} workloads on {dialect}, {repeats} requests each")
    print(
        "API: real `gpufleet serve` over HTTP; raw: the same SQL through the driver, rows fetched"
    )
    columns = ("API p50", "API p95", "raw p50", "raw p95")
    header = f"{'case':<36} {'rows':>5} " + " ".join(f"{c:>9}" for c in columns)
    header += f" {'p50 x':>6} {'p95 x':>6}"
    print(header)
    print("-" * len(header))
    worst = 0.0
    for name, api, raw, items, fetched in rows:
        api50, api95 = percentile(api, 0.5), percentile(api, 0.95)
        raw50, raw95 = percentile(raw, 0.5), percentile(raw, 0.95)
        worst = max(worst, api50 / raw50)
        times = " ".join(f"{t:>7.1f}ms" for t in (api50, api95, raw50, raw95))
        print(f"{name:<36} {items:>5} {times} {api50 / raw50:>5.2f}x {api95 / raw95:>5.2f}x")
        if fetched not in (items, items + 1):
            print(f"  note: the raw query fetched {fetched} rows, the API returned {items}")
    verdict = "meets" if worst <= GOAL_RATIO else "misses"
    print(
        f"\nworst p50 ratio {worst:.2f}x: {verdict} the goal of at most {GOAL_RATIO}x the raw query"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="store to use (default: a SQLite file in /tmp)")
    parser.add_argument("--postgresql", action="store_true", help="use a throwaway PostgreSQL")
    parser.add_argument("--workloads", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=50, help="timed requests per case")
    parser.add_argument(
        "--profile", type=int, metavar="CASE", help="profile case CASE (1, 2, 3) in-process"
    )
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="gpufleet-bench-"))
    if args.postgresql:
        from tests.support.postgres import start_postgres

        server = start_postgres()
        try:
            url = server.create_database("bench")
            return _run_or_profile(args, url, workdir)
        finally:
            server.destroy()
    url = (
        args.database_url
        or f"sqlite:///{Path(tempfile.gettempdir()) / f'gpufleet-bench-{args.workloads}.db'}"
    )
    return _run_or_profile(args, url, workdir)


def _run_or_profile(args: argparse.Namespace, url: str, workdir: Path) -> int:
    if args.profile:
        seed(url, args.workloads)
        profile(url, CASES[args.profile - 1][1], args.repeats)
        return 0
    return run(url, args.workloads, args.repeats, workdir)


if __name__ == "__main__":
    sys.exit(main())
