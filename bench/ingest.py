"""Ingest through the API beside a raw batch upsert of the same workloads, on both databases.

A real ``gpufleet serve`` process takes batches of ``--batch-size`` workloads as a cluster agent
sends them (new workloads first, then the same ones observed again with some phases changed);
between every two API batches the floor writes a batch of the same shape straight into the
workloads table, so both see the same load on a shared machine. The floor is the faster of two
hand-written upserts (the rows built beforehand): an executemany of ``INSERT … ON CONFLICT DO
UPDATE``, and one multi-row ``INSERT … VALUES (…), (…) ON CONFLICT DO UPDATE``. It writes
the workloads alone; the API also writes pods, phase history, node pools and the usage ledger.

    .venv/bin/python -m bench.ingest                          # SQLite and PostgreSQL
    .venv/bin/python -m bench.ingest --databases postgresql --batches 20
    .venv/bin/python -m bench.ingest --profile                # where the server's time goes
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from bench.floors import median, percentile
from bench.scale import ADMIN_ID, ADMIN_SECRET, postgres_server, server_process
from tests.support.agent_reports import report

from gpufleet.core.times import format_rfc3339
from gpufleet.schemas.ingest import IngestWorkload
from gpufleet.settings import Settings
from gpufleet.store.dialect import upsert
from gpufleet.store.engine import create_store_engine
from gpufleet.store.ingest import ingest_row, ingest_workloads
from gpufleet.store.migrate import upgrade
from gpufleet.store.tables import workloads

API_CLUSTER = "3e1f4c2a-9b7d-4e6f-8a5c-0d2b4f6a8c1e"
FLOOR_CLUSTER = "7a52c1d4-0e8b-4f3a-9c6d-2b1e0f4a7c93"
PHASES = ("Pending", "Running", "Completed")


def _reported(workload_id: str, seconds_ago: int, phase: str, cluster_id: str) -> dict:
    """A workload as an agent reports it, created three hours ago and observed since.

    Recent times, as a live agent sends: the usage ledger accrues live workloads up to now,
    and workloads seen only long ago would make that task, not ingest, the cost measured.
    """
    now = datetime.now(UTC)
    return report(
        workload_id,
        phase=phase,
        cluster_id=cluster_id,
        createdAt=format_rfc3339(now - timedelta(hours=3)),
        observedAt=format_rfc3339(now - timedelta(seconds=seconds_ago)),
    )


def workload_batches(cluster_id: str, count: int, size: int, seed: int) -> list[list[dict]]:
    """``count`` batches of new workloads, as an agent reports them."""
    rng = random.Random(seed)
    return [
        [
            _reported(
                str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                7200 + rng.randrange(3600),
                rng.choice(PHASES),
                cluster_id,
            )
            for _ in range(size)
        ]
        for _ in range(count)
    ]


def observed_again(batches: list[list[dict]], seed: int) -> list[list[dict]]:
    """The same workloads up to two hours later, a third of them in another phase."""
    rng = random.Random(seed)
    later = []
    for items in batches:
        moved = []
        for item in items:
            phase = rng.choice(PHASES) if rng.random() < 1 / 3 else item["phase"]
            moved.append(_reported(item["id"], rng.randrange(3600), phase, item["clusterId"]))
        later.append(moved)
    return later


def _rows(items: list[dict]) -> list[dict[str, Any]]:
    return [ingest_row(IngestWorkload.model_validate(item).model_dump()) for item in items]


def floor_candidates(engine: sa.Engine) -> dict[str, Callable[[list[dict]], None]]:
    """Hand-written batch upserts of the workloads table, one transaction each."""
    dialect = engine.dialect.name

    def statement(columns: list[str]) -> sa.Insert:
        return upsert(dialect, workloads, ["id"], [c for c in columns if c != "id"])

    def executemany(rows: list[dict]) -> None:
        with engine.begin() as conn:
            conn.execute(statement(list(rows[0])), rows)

    def multi_row(rows: list[dict]) -> None:
        columns = list(rows[0])
        # Within the driver's parameter limit per statement (SQLite 32,766; psycopg 65,535).
        step = max(1, 30_000 // len(columns))
        with engine.begin() as conn:
            for start in range(0, len(rows), step):
                conn.execute(statement(columns).values(rows[start : start + step]))

    return {"executemany upsert": executemany, "multi-row upsert": multi_row}


def _token(client: httpx.Client) -> str:
    body = {"grantType": "client_credentials", "clientID": ADMIN_ID, "clientSecret": ADMIN_SECRET}
    response = client.post("/api/v1/token", json=body)
    response.raise_for_status()
    return response.json()["accessToken"]


def _timed(action: Callable[..., Any], *args: Any) -> float:
    started = time.perf_counter()
    action(*args)
    return (time.perf_counter() - started) * 1000


def compare_phase(
    client: httpx.Client,
    floors: dict[str, Callable[[list[dict]], None]],
    api_batches: list[list[dict]],
    floor_batches: dict[str, list[list[dict]]],
) -> tuple[list[float], dict[str, list[float]]]:
    """Milliseconds per batch through the API and per floor candidate, interleaved; each
    candidate writes batches of its own (new rows are inserted, not found)."""
    path = f"/api/v1/ingest/clusters/{API_CLUSTER}/workloads"
    api: list[float] = []
    floor: dict[str, list[float]] = defaultdict(list)
    prepared = {name: [_rows(items) for items in floor_batches[name]] for name in floors}

    def post(items: list[dict]) -> None:
        client.post(path, json={"workloads": items}).raise_for_status()

    for index, items in enumerate(api_batches):
        api.append(_timed(post, items))
        for name, write in floors.items():
            floor[name].append(_timed(write, prepared[name][index]))
    return api, floor


@contextmanager
def store(kind: str, workdir: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{workdir / 'ingest.db'}"
        return
    with postgres_server(None) as server:
        yield server.create_database("ingest")


def bench_database(kind: str, batches: int, size: int, workdir: Path) -> list[tuple]:
    lines = []
    with store(kind, workdir) as url:
        engine = create_store_engine(Settings(database_url=url))
        upgrade(engine)
        floors = floor_candidates(engine)
        first = workload_batches(API_CLUSTER, batches + 1, size, seed=1)
        floor_first = {
            name: workload_batches(FLOOR_CLUSTER, batches + 1, size, seed=2 + n)
            for n, name in enumerate(floors)
        }
        with (
            server_process(url, workdir / f"server-{kind}.log") as (base, _pid),
            httpx.Client(base_url=base, timeout=300) as client,
        ):
            client.headers["Authorization"] = f"Bearer {_token(client)}"
            # One batch of each warms connections, caches and the cluster's organisation.
            compare_phase(client, floors, first[:1], {n: b[:1] for n, b in floor_first.items()})
            floor_new = {name: b[1:] for name, b in floor_first.items()}
            phases = [
                ("new workloads", first[1:], floor_new),
                (
                    "observed again",
                    observed_again(first[1:], seed=3),
                    {name: observed_again(b, seed=4) for name, b in floor_new.items()},
                ),
            ]
            for name, api_batches, floor_batches in phases:
                api, floor = compare_phase(client, floors, api_batches, floor_batches)
                best = min(floor, key=lambda label: median(floor[label]))
                lines.append((kind, name, api, floor[best], best))
                print(_line(size, *lines[-1]), flush=True)
        engine.dispose()
    return lines


def _line(size: int, kind: str, case: str, api: list[float], floor: list[float], label: str) -> str:
    api50, floor50 = median(api), median(floor)
    return (
        f"{kind:<10} {case:<16} {api50:>8.1f} {percentile(api, 0.95):>8.1f} "
        f"{floor50:>8.1f} {size * 1000 / api50:>9,.0f} {size * 1000 / floor50:>9,.0f} "
        f"{floor50 / api50:>8.2f}x  {label}"
    )


HEADER = (
    f"{'database':<10} {'case':<16} {'API p50':>8} {'API p95':>8} {'floor':>8} "
    f"{'API wl/s':>9} {'floor/s':>9} {'API/floor':>9}  floor statement"
)


def profile(kind: str, size: int, workdir: Path) -> None:
    """The store's work for one batch in-process: statements by time, then the call tree."""
    import pyinstrument

    with store(kind, workdir) as url:
        engine = create_store_engine(Settings(database_url=url))
        upgrade(engine)
        spent: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])

        @sa.event.listens_for(engine, "before_cursor_execute")
        def _start(conn, _cursor, _statement, _parameters, _context, _many) -> None:
            conn.info["bench.started"] = time.perf_counter()

        @sa.event.listens_for(engine, "after_cursor_execute")
        def _end(conn, _cursor, statement, _parameters, _context, _many) -> None:
            entry = spent[" ".join(statement.split())[:110]]
            entry[0] += 1
            entry[1] += time.perf_counter() - conn.info["bench.started"]

        batches = workload_batches(API_CLUSTER, 2, size, seed=1)
        batches += observed_again(batches, seed=3)
        profiler = pyinstrument.Profiler()
        for index, items in enumerate(batches):
            dumped = [IngestWorkload.model_validate(i).model_dump() for i in items]
            if index in (1, 3):
                spent.clear()
                profiler.start()
            with engine.begin() as conn:
                now = max(i["observedAt"] for i in dumped)
                ingest_workloads(conn, API_CLUSTER, dumped, now=now)
            if index in (1, 3):
                profiler.stop()
                title = "new workloads" if index == 1 else "observed again"
                print(f"\n{kind}, {title}: statements by time (count, seconds)")
                for text, (count, seconds) in sorted(spent.items(), key=lambda e: -e[1][1])[:12]:
                    print(f"  {count:>5} {seconds:7.3f}s  {text}")
        print(profiler.output_text(unicode=True, color=False))
        engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--batches", type=int, default=10, help="timed batches per case")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--profile", action="store_true", help="profile the store in-process")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="gpufleet-ingest-") as directory:
        workdir = Path(directory)
        if args.profile:
            for kind in args.databases.split(","):
                profile(kind, args.batch_size, workdir)
            return 0
        print(f"batches of {args.batch_size} workloads; milliseconds per batch")
        print(HEADER)
        for kind in args.databases.split(","):
            bench_database(kind, args.batches, args.batch_size, workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
