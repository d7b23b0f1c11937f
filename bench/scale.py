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
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import sqlalchemy as sa
from bench.floors import (
    LISTED_COLUMNS,
    Candidate,
    Capture,
    Comparison,
    compare,
    execute,
    is_sqlite,
    list_candidates,
    median,
    percentile,
    print_details,
    projection,
    raw_connection,
    stored_time,
    timed_candidates,
)
from fastapi.testclient import TestClient
from tests.support.agent_reports import report
from tests.support.ports import free_port
from tests.support.postgres import PostgresServer, start_postgres

from gpufleet.api.app import create_app
from gpufleet.auth.bootstrap import restore_admin
from gpufleet.core.times import format_rfc3339
from gpufleet.core.workload_fields import WORKLOAD_FIELDS_BY_NAME, WorkloadField
from gpufleet.demo.seed import seed_demo
from gpufleet.settings import Settings
from gpufleet.store.dialect import upsert
from gpufleet.store.engine import create_store_engine
from gpufleet.store.ingest import ingest_row
from gpufleet.store.migrate import upgrade
from gpufleet.store.tables import (
    anchor_index,
    before_index,
    metadata,
    sort_index,
    usage_hourly,
    usage_open,
    usage_states,
    workloads,
)

ADMIN_ID, ADMIN_SECRET = "bench-admin", "bench-admin-secret"
BENCH_CLUSTER = "3e1f4c2a-9b7d-4e6f-8a5c-0d2b4f6a8c1e"
INGEST_BATCH = 500
WORKLOADS = "/api/v1/workloads"
LIVE = "deleted_at IS NULL"
CREATED_AT_INDEX = sort_index("created_at")
NEXT_CURSOR = "Gpufleet-Next-Cursor"
# The in-process app only captures the statements of a request: its periodic tasks stay off
# (the served process runs its own), so they neither grow this process nor take locks.
QUIET = dict.fromkeys(
    (
        "usage_interval_seconds",
        "usage_utilisation_interval_seconds",
        "report_interval_seconds",
        "idle_gpu_interval_seconds",
        "metrics_interval_seconds",
        "metrics_retention_interval_seconds",
        "events_retention_interval_seconds",
    ),
    0,
)

# name, params, the condition and order an expert would write, and the indexes worth trying.
LIST_CASES: list[tuple[str, dict, str, str, tuple[str, ...]]] = [
    ("default sort", {}, LIVE, "created_at ASC, id_key ASC", (CREATED_AT_INDEX,)),
    (
        "createdAt desc",
        {"sortBy": "createdAt", "sortOrder": "desc"},
        LIVE,
        "created_at DESC, id_key DESC",
        (CREATED_AT_INDEX,),
    ),
    (
        "phase==Running by allocatedGPU",
        {"filterBy": "phase==Running", "sortBy": "allocatedGPU"},
        f"{LIVE} AND phase = 'Running'",
        "allocated_gpu ASC, id_key ASC",
        (sort_index("allocated_gpu"), sort_index("phase")),
    ),
    (
        "name contains, by name",
        {"filterBy": "name=@train", "sortBy": "name"},
        f"{LIVE} AND name LIKE '%train%'",
        "name ASC, id_key ASC",
        (sort_index("name"),),
    ),
]
ID_COLUMN = LISTED_COLUMNS.split(", ").index("id")


@dataclass
class Row:
    database: str
    size: int
    comparison: Comparison | None = None
    # Ingest: workloads per second through the API and by a raw batch upsert.
    rates: tuple[str, float, float] | None = None
    # CPU the server process spent per timed request (its periodic tasks included): on a
    # shared machine the wall-clock API time also counts waiting for a core.
    cpu_ms: float = float("nan")

    def line(self) -> str:
        if self.comparison is not None:
            c = self.comparison
            api50, server50, floor50 = median(c.api), median(c.server), median(c.floor)
            return (
                f"{self.database:<10} {self.size:>9,} {c.case:<56} "
                f"{api50:>8.2f} {percentile(c.api, 0.95):>8.2f} {self.cpu_ms:>8.2f} "
                f"{server50:>8.2f} {floor50:>8.2f} {percentile(c.floor, 0.95):>8.2f} "
                f"{api50 / floor50:>6.2f}x {server50 / floor50:>6.2f}x"
            )
        assert self.rates is not None
        case, api_rate, floor_rate = self.rates
        return (
            f"{self.database:<10} {self.size:>9,} {case:<56} "
            f"{api_rate:>8.0f} {'/s':>8} {'':>8} {'':>8} {floor_rate:>8.0f} {'/s':>8} "
            f"{api_rate / floor_rate:>6.2f}x"
        )


HEADER = (
    f"{'database':<10} {'workloads':>9} {'case':<56} "
    f"{'api p50':>8} {'api p95':>8} {'api cpu':>8} {'server':>8} {'floor50':>8} {'floor95':>8} "
    f"{'api/fl':>7} {'srv/fl':>7}"
)


@contextmanager
def server_process(
    database_url: str, log_path: Path, args: Sequence[str] = (), extra_env: dict | None = None
) -> Iterator[tuple[str, int]]:
    """A real ``gpufleet serve`` (with ``args``); yields its base URL and process id."""
    port = free_port()
    executable = Path(sys.executable).with_name("gpufleet")
    command = [str(executable), "serve", "--database-url", database_url, "--port", str(port)]
    command += list(args)
    env = {
        **os.environ,
        "GPUFLEET_ADMIN_CLIENT_ID": ADMIN_ID,
        "GPUFLEET_ADMIN_CLIENT_SECRET": ADMIN_SECRET,
        "GPUFLEET_LOG_LEVEL": "warning",
        "GPUFLEET_DB_POOL_SIZE": "10",
        **(extra_env or {}),
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
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            # A periodic task in the middle of a long write does not stop at once.
            process.kill()
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


def cpu_ms(pid: int) -> float:
    """CPU time (user and system) a process has used so far, in milliseconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def _time_api(client: httpx.Client, path: str, params: dict, repeats: int) -> list[float]:
    timings = []
    for _ in range(repeats + 1):
        started = time.perf_counter()
        response = client.get(path, params=params)
        timings.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    return timings[1:]


def _request_cases(conn: Any, sample_id: str, size: int, resumed: DeepPage) -> list[Request]:
    """Each request with the hand-written candidates for its floor."""
    requests = []
    for name, params, where, order, walks in LIST_CASES:
        for limit in (50, 500):
            requests.append(
                Request(
                    f"list {name} (limit {limit})",
                    WORKLOADS,
                    {**params, "limit": limit},
                    list_candidates(conn, where, order, walks),
                    {"limit": limit + 1, "offset": 0},
                    ID_COLUMN,
                )
            )
    for limit in (50, 500):
        requests.append(
            Request(
                f"list by totalRunningTimeSeconds desc (limit {limit})",
                WORKLOADS,
                {"sortBy": "totalRunningTimeSeconds", "sortOrder": "desc", "limit": limit},
                timed_candidates(conn, "Running", "running_seconds_before", descending=True),
                {"limit": limit + 1, "offset": 0, "depth": limit + 1},
                ID_COLUMN,
            )
        )
    deep = size // 2
    requests.append(
        Request(
            f"list createdAt desc, offset {deep:,} (limit 50)",
            WORKLOADS,
            {"sortBy": "createdAt", "sortOrder": "desc", "limit": 50, "offset": deep},
            list_candidates(conn, LIVE, "created_at DESC, id_key DESC", (CREATED_AT_INDEX,)),
            {"limit": 51, "offset": deep},
            ID_COLUMN,
        )
    )
    requests.append(
        Request(
            f"list createdAt desc, cursor at {resumed.position:,} (limit 50)",
            WORKLOADS,
            {"sortBy": "createdAt", "sortOrder": "desc", "limit": 50, "cursor": resumed.cursor},
            list_candidates(
                conn,
                f"{LIVE} AND (created_at, id_key) < (:v, :k)",
                "created_at DESC, id_key DESC",
                (),
            ),
            {"limit": 51, "offset": 0, "v": resumed.value(conn), "k": resumed.key(conn)},
            ID_COLUMN,
        )
    )
    running = f"{LIVE} AND phase = 'Running'"
    requests += [
        Request("count", f"{WORKLOADS}/count", {}, _counts(conn, LIVE, (CREATED_AT_INDEX,))),
        Request(
            "count phase==Running",
            f"{WORKLOADS}/count",
            {"filterBy": "phase==Running"},
            _counts(conn, running, (sort_index("phase"),)),
        ),
        Request(
            "count name contains",
            f"{WORKLOADS}/count",
            {"filterBy": "name=@train"},
            _counts(conn, f"{LIVE} AND name LIKE '%train%'", ()),
        ),
        Request(
            "count totalRunningTimeSeconds>=3600",
            f"{WORKLOADS}/count",
            {"filterBy": "totalRunningTimeSeconds>=3600"},
            _total_counts(conn, WORKLOAD_FIELDS_BY_NAME["totalRunningTimeSeconds"], 3600),
        ),
        Request(
            "get",
            f"{WORKLOADS}/{sample_id}",
            {},
            [
                Candidate(
                    "by primary key",
                    f"SELECT {projection(conn)} FROM workloads WHERE id = :id",
                )
            ],
            {"id": sample_id},
            ID_COLUMN,
        ),
        Request(
            "telemetry WORKLOADS_COUNT by Phase",
            f"{WORKLOADS}/telemetry",
            {"telemetryType": "WORKLOADS_COUNT", "groupBy": "Phase"},
            _counts(conn, LIVE, (sort_index("phase"),), group="phase"),
        ),
    ]
    return requests


def _counts(
    conn: Any, where: str, walks: tuple[str, ...], group: str | None = None
) -> list[Candidate]:
    """A count (or a count per ``group``) written by hand, plain and through each index."""
    columns = "count(*)" if group is None else f"{group}, count(*)"
    tail = "" if group is None else f" GROUP BY {group} ORDER BY {group}"
    sources = [("as the planner takes it", "workloads")]
    if is_sqlite(conn):
        sources += [(f"INDEXED BY {i}", f"workloads INDEXED BY {i}") for i in walks]
    return [
        Candidate(label, f"SELECT {columns} FROM {source} WHERE {where}{tail}")
        for label, source in sources
    ]


def _total_counts(conn: Any, field: WorkloadField, bound: int) -> list[Candidate]:
    """Live workloads whose total of time in ``phase`` is at least ``bound``, counted by hand:
    computed for every row, and as the sum of three index ranges (those in the phase by
    their anchor, the others by their stored seconds, the few whose phase began after now's
    second by that time). ``:began`` is the first moment after now's second."""
    phase, before = field.timed_phase, field.column
    total = f"CASE WHEN phase = '{phase}' AND phase_updated_at < :began THEN seconds_anchor + "
    total += f":now_ms / 1000 ELSE {before} END"
    hint = (lambda index: f" INDEXED BY {index}") if is_sqlite(conn) else (lambda _index: "")
    plus = "+" if is_sqlite(conn) else ""
    ranges = [
        (
            anchor_index(field),
            f"phase = '{phase}' AND {plus}phase_updated_at < :began "
            f"AND seconds_anchor >= {bound} - :now_ms / 1000",
        ),
        (before_index(field), f"phase != '{phase}' AND {before} >= {bound}"),
        (
            sort_index("phase_updated_at"),
            f"{plus}phase = '{phase}' AND phase_updated_at >= :began AND {plus}{before} >= {bound}",
        ),
    ]
    summed = " + ".join(
        f"(SELECT count(*) FROM workloads{hint(index)} WHERE {LIVE} AND {where})"
        for index, where in ranges
    )
    return [
        Candidate(
            "every total computed",
            f"SELECT count(*) FROM workloads WHERE {LIVE} AND {total} >= {bound}",
        ),
        Candidate("sum of three index ranges", f"SELECT {summed}"),
    ]


@dataclass
class DeepPage:
    """Where a cursor deep in the createdAt desc order points: the last row of the page before."""

    position: int
    cursor: str
    created_at: datetime
    last_id: str

    def key(self, conn: Any) -> Any:
        """The last row's ``id_key`` as the driver holds it (16 bytes, or a uuid)."""
        sql = (
            "SELECT id_key FROM workloads WHERE id = ?"
            if is_sqlite(conn)
            else ("SELECT id_key FROM workloads WHERE id = %s")
        )
        return execute(conn, sql, (self.last_id,))[0][0]

    def value(self, conn: Any) -> Any:
        return stored_time(conn, self.created_at)


def _deep_page(client: httpx.Client, size: int) -> DeepPage:
    position = size // 2
    params = {"sortBy": "createdAt", "sortOrder": "desc", "limit": 50, "offset": position - 50}
    response = client.get(WORKLOADS, params=params)
    response.raise_for_status()
    last = response.json()["workloads"][-1]
    created_at = datetime.fromisoformat(last["createdAt"].replace("Z", "+00:00"))
    return DeepPage(position, response.headers[NEXT_CURSOR], created_at, last["id"])


@dataclass
class Request:
    case: str
    path: str
    params: dict
    candidates: list[Candidate]
    parameters: dict = field(default_factory=dict)
    id_position: int | None = None


def _ingest_batches(count: int) -> list[list[dict]]:
    """New workloads as a live agent reports them: created three hours ago, seen in the last
    hour. (Times of long ago would make the server's usage ledger accrue every live one up to
    now, hour by hour, and that task, not ingest, would be what is measured.)"""
    rng = random.Random(count)
    now = datetime.now(UTC)
    return [
        [
            report(
                str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                phase=rng.choice(["Pending", "Running", "Completed"]),
                cluster_id=BENCH_CLUSTER,
                createdAt=format_rfc3339(now - timedelta(hours=3)),
                observedAt=format_rfc3339(now - timedelta(seconds=rng.randrange(3600))),
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


def _restore_bench_admin(engine: sa.Engine) -> None:
    """The benchmark's administrator with its secret, in a cached store another tool (or an
    earlier secret) left with a different one."""
    bench = Settings(
        database_url=str(engine.url), admin_client_id=ADMIN_ID, admin_client_secret=ADMIN_SECRET
    )
    with engine.begin() as conn:
        restore_admin(conn, bench)


def _patient(engine: sa.Engine) -> sa.Engine:
    """An engine that waits for SQLite's write lock as long as it takes: the served process's
    usage ledger holds it for a while at a time, and a raw upsert refused meanwhile would end
    the run."""
    if engine.dialect.name != "sqlite":
        return engine
    return sa.create_engine(engine.url, connect_args={"timeout": 600})


def _remove_bench_cluster(engine: sa.Engine) -> None:
    """Remove the workloads ingest added, with everything kept per workload (their usage
    ledger above all: left behind, a cached store's live set would keep growing)."""
    ours = sa.select(workloads.c.id).where(workloads.c.cluster_id == BENCH_CLUSTER)
    with engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            if "workload_id" in table.c:
                conn.execute(table.delete().where(table.c.workload_id.in_(ours)))
        conn.execute(workloads.delete().where(workloads.c.cluster_id == BENCH_CLUSTER))


def _remove_orphaned_ledgers(engine: sa.Engine) -> None:
    """Ledger rows of workloads no longer stored (left by an earlier run that was stopped
    before it removed its ingest): the live-usage task would accrue them forever."""
    with engine.begin() as conn:
        for table in (usage_open, usage_states, usage_hourly):
            # NOT EXISTS, an anti-join: PostgreSQL runs NOT IN over a million ids that do not
            # fit in work_mem as a scan of the list for every row (hours at a million).
            known = sa.exists().where(workloads.c.id == table.c.workload_id)
            conn.execute(table.delete().where(~known))


def bench_size(
    database: str, database_url: str, size: int, repeats: int, ingest_batches: int, workdir: Path
) -> tuple[list[Row], float]:
    settings = Settings(
        database_url=database_url,
        admin_client_id=ADMIN_ID,
        admin_client_secret=ADMIN_SECRET,
        **QUIET,
    )
    engine = create_store_engine(settings)
    capture = Capture(engine)
    app = create_app(settings, engine=engine)
    with engine.connect() as conn:
        sample_id = conn.execute(
            sa.select(workloads.c.id).order_by(workloads.c.id).offset(size // 2).limit(1)
        ).scalar_one()
    rows: list[Row] = []
    with (
        TestClient(app) as local,
        server_process(database_url, workdir / f"server-{database}-{size}.log") as (base, pid),
        httpx.Client(base_url=base, timeout=300) as remote,
        raw_connection(database_url) as raw,
    ):
        local.headers["Authorization"] = f"Bearer {_token(local)}"
        remote.headers["Authorization"] = f"Bearer {_token(remote)}"
        deep = _deep_page(remote, size)
        for request in _request_cases(raw, sample_id, size, deep):
            capture.take()
            now_ms = int(time.time() * 1000)
            began = datetime.fromtimestamp(now_ms // 1000 + 1, UTC)
            local.get(request.path, params=request.params).raise_for_status()
            # The request's own queries; token checks and access rules are API overhead.
            statements = [(s, p) for s, p in capture.take() if "workloads" in s]
            spent = cpu_ms(pid)
            api = _time_api(remote, request.path, request.params, repeats)
            spent = (cpu_ms(pid) - spent) / (repeats + 1)
            comparison = compare(
                raw,
                request.case,
                api,
                statements,
                request.candidates,
                {"now_ms": now_ms, "began": stored_time(raw, began), **request.parameters},
                repeats,
                request.id_position,
            )
            rows.append(Row(database, size, comparison=comparison, cpu_ms=spent))
            print(rows[-1].line(), flush=True)
        batches = _ingest_batches(ingest_batches * 2)
        case = f"ingest (batches of {INGEST_BATCH})"
        try:
            api_rate = _ingest_api(remote, batches[:ingest_batches])
        except httpx.HTTPStatusError as error:
            # A batch over the statement timeout is a result too; the rest of the run stands.
            print(f"{database:<10} {size:>9,} {case}: the API answered {error}", flush=True)
        else:
            floor_rate = _ingest_floor(_patient(engine), batches[ingest_batches:])
            rows.append(Row(database, size, rates=(case, api_rate, floor_rate)))
            print(rows[-1].line(), flush=True)
        memory = peak_rss_mib(pid)
    _remove_bench_cluster(engine)
    engine.dispose()
    return rows, memory


def footprint(database_url: str, size: int) -> tuple[float, float, float]:
    """Bytes per workload: the whole store, the workloads table, and its indexes."""
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
                store = Path(sa.make_url(database_url).database).stat().st_size
                sizes = dict(
                    conn.exec_driver_sql(
                        "SELECT m.name = 'workloads', sum(d.pgsize) FROM dbstat d "
                        "JOIN sqlite_master m ON m.name = d.name "
                        "WHERE m.tbl_name = 'workloads' GROUP BY 1"
                    ).all()
                )
                table, indexes = sizes.get(1, 0), sizes.get(0, 0)
            else:
                store, table, indexes = conn.exec_driver_sql(
                    "SELECT pg_database_size(current_database()), "
                    "pg_table_size('workloads'), pg_indexes_size('workloads')"
                ).one()
    finally:
        engine.dispose()
    return store / size, table / size, indexes / size


def _seed_to(engine: sa.Engine, size: int) -> None:
    with engine.connect() as conn:
        present = conn.execute(sa.select(sa.func.count()).select_from(workloads)).scalar_one()
    if present < size:
        started = time.perf_counter()
        # Workloads alone: pods, events and metric history belong to other benchmarks, and
        # leaving them out makes a million workloads quick enough to seed.
        seed_demo(engine, workloads=size - present, seed=11, details=False, metrics_history=False)
        print(f"# seeded {size - present:,} workloads in {time.perf_counter() - started:.0f}s")
    # What autovacuum would soon do on PostgreSQL (also after a migration added columns or
    # indexes); SQLite is left as the server leaves it.
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE" if present < size else "ANALYZE")


class CachedPostgres(PostgresServer):
    """A PostgreSQL cluster kept in ``directory`` across runs (initdb only the first time)."""

    def __init__(self, directory: Path) -> None:
        super().__init__()
        shutil.rmtree(self.directory, ignore_errors=True)
        self.directory = directory
        self.data = directory / "data"
        directory.mkdir(parents=True, exist_ok=True)
        if self._user:
            os.chown(directory, self._user["user"], self._user["group"])

    def destroy(self) -> None:
        self.stop(fast=True)

    def ensure_database(self, name: str) -> str:
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            known = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        return self.url(name) if known else self.create_database(name)


@contextmanager
def postgres_server(cache: Path | None) -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL, or the one kept under ``cache`` (seeded stores survive runs)."""
    if cache is None:
        server = start_postgres()
    else:
        server = CachedPostgres(cache / "postgresql")
        if not (server.data / "PG_VERSION").exists():
            server.initdb()
        server.start()
    try:
        yield server
    finally:
        server.destroy()


@contextmanager
def databases(kind: str, workdir: Path, cache: Path | None) -> Iterator[Callable[[int], str]]:
    """A store per size: ``cache`` keeps seeded stores for later runs, else they are temporary."""
    root = cache or workdir
    if kind == "sqlite":
        root.mkdir(parents=True, exist_ok=True)
        yield lambda size: f"sqlite:///{root / f'scale-{size}.db'}"
        return
    with postgres_server(cache) as server:
        yield (
            lambda size: (
                server.ensure_database(f"scale_{size}")
                if isinstance(server, CachedPostgres)
                else server.create_database(f"scale_{size}")
            )
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--repeats", type=int, default=15, help="timed requests per case")
    parser.add_argument("--ingest-batches", type=int, default=10)
    parser.add_argument(
        "--cache",
        type=Path,
        help="keep seeded stores here (a SQLite file per size, one PostgreSQL cluster)",
    )
    parser.add_argument("--seed-only", action="store_true", help="seed the stores, time nothing")
    args = parser.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    workdir = Path(tempfile.mkdtemp(prefix="gpufleet-scale-"))
    print(HEADER)
    memory: list[tuple[str, int, float]] = []
    all_rows: list[Row] = []
    try:
        for kind in args.databases.split(","):
            with databases(kind, workdir, args.cache) as store_for:
                for size in sizes:
                    url = store_for(size)
                    # Migrating and seeding a million workloads outlast any request's timeout.
                    unbounded = Settings(database_url=url, db_statement_timeout_seconds=0)
                    engine = create_store_engine(unbounded)
                    upgrade(engine)
                    _restore_bench_admin(engine)
                    _remove_bench_cluster(engine)
                    _remove_orphaned_ledgers(engine)
                    _seed_to(engine, size)
                    engine.dispose()
                    if args.seed_only:
                        continue
                    repeats = max(5, args.repeats // max(1, size // 100_000))
                    # Shared cores stretch every wall-clock time: the load says how much.
                    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
                    print(f"# {kind} {size:,}: load average {load}", flush=True)
                    rows, peak = bench_size(kind, url, size, repeats, args.ingest_batches, workdir)
                    all_rows += rows
                    memory.append((kind, size, peak, footprint(url, size)))
        print("\nserver peak memory (VmHWM) and bytes on disk per workload:")
        for kind, size, peak, (store, table, indexes) in memory:
            print(
                f"  {kind:<10} {size:>9,} workloads: {peak:7.1f} MiB; whole store {store:,.0f} B, "
                f"workloads table {table:,.0f} B + its indexes {indexes:,.0f} B"
            )
        _print_scaling(all_rows)
        print("\nstatements and plans:")
        for row in all_rows:
            if row.comparison is not None:
                print(f"\n[{row.database} {row.size:,}]", end="")
                print_details([row.comparison])
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def _print_scaling(rows: list[Row]) -> None:
    """List p50 at the largest size over p50 at the smallest, per database and case."""
    by_key: dict[tuple[str, str], dict[int, float]] = {}
    for row in rows:
        if row.comparison is not None and row.comparison.case.startswith("list"):
            key = (row.database, row.comparison.case)
            by_key.setdefault(key, {})[row.size] = median(row.comparison.api)
    print("\nlist p50, largest size / smallest size:")
    for (kind, case), timings in by_key.items():
        if len(timings) > 1:
            low, high = min(timings), max(timings)
            print(f"  {kind:<10} {case:<52} {timings[high] / timings[low]:6.2f}x")


if __name__ == "__main__":
    sys.exit(main())
