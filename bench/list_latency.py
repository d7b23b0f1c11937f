"""List latency: ``limit=500`` with a filter and a sort over 100,000 demo workloads.

The API is a real ``gpufleet serve`` process timed over HTTP (keep-alive, full body read).
Beside it: the server's own statement (captured from an in-process app with the same
parameters) and the floor, the fastest hand-written plan for the same rows (see
``bench.floors``), both executed straight through the driver with every row fetched. Prints the
three p50/p95, the ratios, and each statement with its ``EXPLAIN`` plan.

    .venv/bin/python -m bench.list_latency                       # SQLite, 100,000 workloads
    .venv/bin/python -m bench.list_latency --postgresql          # a throwaway PostgreSQL
    .venv/bin/python -m bench.list_latency --profile 3           # where case 3's time goes
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from bench.floors import (
    LISTED_COLUMNS,
    Capture,
    compare,
    list_candidates,
    median,
    print_comparisons,
    raw_connection,
)
from fastapi.testclient import TestClient
from tests.support.server import ADMIN_ID, ADMIN_SECRET, ServerProcess

from gpufleet.api.app import create_app
from gpufleet.settings import Settings

# Where the id sits in a listing's row: answers are compared by their ids in order.
ID_COLUMN = LISTED_COLUMNS.split(", ").index("id")

WORKLOADS = "/api/v1/workloads"
GOAL_RATIO = 1.3
LIMIT = 500


@dataclass(frozen=True)
class Case:
    """A request, and how an expert would write its SQL: the condition, the order, the indexes
    worth trying."""

    name: str
    params: dict[str, str]
    where: str
    order: str
    walks: tuple[str, ...]
    offset: int = 0


CASES: list[Case] = [
    Case(
        "phase==Running, createdAt desc",
        {"filterBy": "phase==Running", "sortBy": "createdAt", "sortOrder": "desc"},
        "deleted_at IS NULL AND phase = 'Running'",
        "created_at DESC, id_key DESC",
        ("ix_workloads_created_at_id_key_deleted_at", "ix_workloads_phase_id_key_deleted_at"),
    ),
    Case(
        "project + GPUs, allocatedGPU desc",
        {
            "filterBy": "projectName==llm-pretrain,allocatedGPU>=1",
            "sortBy": "allocatedGPU",
            "sortOrder": "desc",
        },
        "deleted_at IS NULL AND project_name = 'llm-pretrain' AND allocated_gpu >= 1",
        "allocated_gpu DESC, id_key DESC",
        (
            "ix_workloads_allocated_gpu_id_key_deleted_at",
            "ix_workloads_project_name_id_key_deleted_at",
        ),
    ),
    Case(
        "name=@train, by name",
        {"filterBy": "name=@train", "sortBy": "name"},
        "deleted_at IS NULL AND name LIKE '%train%'",
        "name ASC, id_key ASC",
        ("ix_workloads_name_id_key_deleted_at",),
    ),
    Case(
        "createdAt desc, offset 20,000",
        {"sortBy": "createdAt", "sortOrder": "desc", "offset": "20000"},
        "deleted_at IS NULL",
        "created_at DESC, id_key DESC",
        ("ix_workloads_created_at_id_key_deleted_at",),
        offset=20_000,
    ),
]


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


def time_api(client: httpx.Client, params: dict[str, str], repeats: int) -> tuple[list[float], int]:
    timings, items = [], 0
    for _ in range(repeats + 2):
        started = time.perf_counter()
        response = client.get(WORKLOADS, params={**params, "limit": str(LIMIT)})
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
                json_response({"workloads": list_workloads(conn, page).items})
    engine.dispose()
    print(profiler.output_text(unicode=True, color=False, show_all=False))


def run(database_url: str, workloads: int, repeats: int, workdir: Path, verbose: bool) -> int:
    seed(database_url, workloads)
    total = stored_workloads(database_url)
    comparisons = []
    with (
        ServerProcess(
            database_url, log_dir=workdir, extra_env={"GPUFLEET_LOG_LEVEL": "warning"}
        ) as server,
        httpx.Client(base_url=server.base_url, headers=server.auth_headers(), timeout=60) as client,
        raw_connection(database_url) as conn,
    ):
        for case in CASES:
            now_ms = int(time.time() * 1000)
            statement = listing_statement(database_url, {**case.params, "limit": str(LIMIT)})
            api, _items = time_api(client, case.params, repeats)
            parameters = {"now_ms": now_ms, "limit": LIMIT + 1, "offset": case.offset}
            candidates = list_candidates(conn, case.where, case.order, case.walks)
            comparisons.append(
                compare(
                    conn, case.name, api, [statement], candidates, parameters, repeats, ID_COLUMN
                )
            )
    dialect = sa.make_url(database_url).get_backend_name()
    print_comparisons(
        f"list limit={LIMIT} over {total:,} workloads on {dialect}, {repeats} requests each "
        "(ms; API over HTTP, server = its statement through the driver, floor = best by hand)",
        comparisons,
        verbose,
    )
    worst = max(median(c.api) / median(c.floor) for c in comparisons)
    verdict = "meets" if worst <= GOAL_RATIO else "misses"
    print(f"\nworst API/floor p50 {worst:.2f}x: {verdict} the goal of at most {GOAL_RATIO}x")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="store to use (default: a SQLite file in /tmp)")
    parser.add_argument("--postgresql", action="store_true", help="use a throwaway PostgreSQL")
    parser.add_argument("--workloads", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=50, help="timed requests per case")
    parser.add_argument(
        "--profile", type=int, metavar="CASE", help="profile case CASE (1 to 4) in-process"
    )
    parser.add_argument("--brief", action="store_true", help="timings only, no statements")
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
        profile(url, CASES[args.profile - 1].params, args.repeats)
        return 0
    return run(url, args.workloads, args.repeats, workdir, not args.brief)


if __name__ == "__main__":
    sys.exit(main())
