"""Ingest through the API beside the store's own work and two hand-written floors.

On both databases, for each batch size (``--batch-sizes``), batches of workloads are written
several ways, each to its own rows, taking turns batch by batch in a rotating order so load on
a shared machine falls on all alike (new workloads first, then the same ones observed again, a
third in another phase):

* the API: posted to a real ``gpufleet serve`` process as a cluster agent sends them;
* the store: ``ingest_workloads`` and its commit in this process, on the same database (the
  server's own statements; the body already parsed), with its statements' time summed apart;
* the same-result floor (``bench.ingest_floor``): what a database expert would write by hand to
  leave the database exactly as the API does, every table the API writes with the same
  ownership and order checks inside the statements, one statement per table per batch in the
  fastest form of the dialect, the rows converted to the driver's values beforehand. Before
  anything is timed, the same batches go through the server's ingest into one empty database
  and through this floor into another, and every table's rows are compared: the floor cannot
  silently do less;
* the workloads-only floor: the fastest hand-written batch upsert of the workloads table alone
  (rows built beforehand): through SQLAlchemy an executemany and a multi-row ``VALUES`` upsert;
  through the driver, values converted beforehand, a prepared executemany on SQLite, and on
  PostgreSQL one upsert over the columns as arrays (``unnest``), one over the rows as one JSON
  parameter (``json_to_recordset``) and ``COPY`` into a temporary table followed by one
  ``INSERT … SELECT … ON CONFLICT``. It writes less than the API does
  (no pods, phase history, node pools, usage ledger or ownership check) and is shown for scale.

    .venv/bin/python -m bench.ingest                          # SQLite and PostgreSQL
    .venv/bin/python -m bench.ingest --databases postgresql --batches 20 --batch-sizes 500
    .venv/bin/python -m bench.ingest --profile                # where the server's time goes
"""

from __future__ import annotations

import argparse
import os
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
import orjson
import sqlalchemy as sa
from bench.floors import median, percentile
from bench.ingest_floor import SameResultFloor, check_same_result
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
STORE_CLUSTER = "c4d9e2b7-5a1f-4c3e-8b6d-9f0a2e4c6b81"
SAME_CLUSTER = "58e0b6f1-3d2a-4c7e-9f15-a6c8d04b2e73"
SAME = "same-result floor"
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
    """Hand-written batch upserts of the workloads table, one transaction each; the fastest
    is the floor. Through SQLAlchemy: an executemany of ``INSERT … ON CONFLICT DO UPDATE`` and
    one multi-row ``VALUES`` upsert. Straight through the driver, the rows converted to the
    driver's values beforehand: on SQLite a prepared executemany; on PostgreSQL one statement
    over the columns as arrays (``unnest``), one over the rows as one JSON parameter
    (``json_to_recordset``), and ``COPY`` into a temporary table followed by one
    ``INSERT … SELECT … ON CONFLICT``."""
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

    candidates: dict[str, Callable[[list[dict]], None]] = {
        "executemany upsert": executemany,
        "multi-row upsert": multi_row,
    }
    if dialect == "sqlite":
        candidates["driver executemany upsert"] = _driver_executemany(engine)
    else:
        candidates["unnest upsert"] = _driver_unnest(engine)
        candidates["JSON rows upsert"] = _driver_json(engine)
        candidates["COPY + INSERT SELECT"] = _driver_copy(engine)
    return candidates


def _set_clause(columns: list[str]) -> str:
    return ", ".join(f"{c} = excluded.{c}" for c in columns if c != "id")


def _driver_values(engine: sa.Engine, rows: list[dict]) -> tuple[list[str], list[tuple]]:
    """The rows as the driver takes them (each column's bind conversion applied once)."""
    columns = list(rows[0])
    dialect = engine.dialect
    processors = [
        workloads.c[c].type.dialect_impl(dialect).bind_processor(dialect) for c in columns
    ]
    values = [
        tuple(p(row[c]) if p else row[c] for c, p in zip(columns, processors, strict=True))
        for row in rows
    ]
    return columns, values


class Prepared(list):
    """Rows of one batch, and the same as the driver takes them, built before the clock starts."""

    def __init__(self, engine: sa.Engine, items: list[dict]) -> None:
        super().__init__(_rows(items))
        self.driver = _driver_values(engine, self)


def _driver_executemany(engine: sa.Engine) -> Callable[[list[dict]], None]:
    def write(rows: Prepared) -> None:
        columns, values = rows.driver
        marks = ", ".join("?" * len(columns))
        sql = (
            f"INSERT INTO workloads ({', '.join(columns)}) VALUES ({marks}) "
            f"ON CONFLICT (id) DO UPDATE SET {_set_clause(columns)}"
        )
        with engine.begin() as conn:
            cursor = conn.connection.driver_connection.cursor()
            cursor.executemany(sql, values)
            cursor.close()

    return write


def _pg_types(columns: list[str], engine: sa.Engine) -> list[str]:
    return [workloads.c[c].type.compile(dialect=engine.dialect) for c in columns]


def _driver_unnest(engine: sa.Engine) -> Callable[[list[dict]], None]:
    def write(rows: Prepared) -> None:
        columns, values = rows.driver
        arrays = [list(column) for column in zip(*values, strict=True)]
        casts = ", ".join(f"%s::{t}[]" for t in _pg_types(columns, engine))
        sql = (
            f"INSERT INTO workloads ({', '.join(columns)}) SELECT * FROM unnest({casts}) "
            f"ON CONFLICT (id) DO UPDATE SET {_set_clause(columns)}"
        )
        with engine.begin() as conn:
            conn.connection.driver_connection.execute(sql, arrays)

    return write


def _json_ready(value: Any) -> Any:
    """A driver value as JSON takes it: bytes (wrapped by psycopg's Binary) as bytea's hex."""
    raw = getattr(value, "obj", value)
    if isinstance(raw, bytes | bytearray | memoryview):
        return "\\x" + bytes(raw).hex()
    return value


def _driver_json(engine: sa.Engine) -> Callable[[list[dict]], None]:
    def write(rows: Prepared) -> None:
        columns, values = rows.driver
        definitions = ", ".join(
            f"{c} {t}" for c, t in zip(columns, _pg_types(columns, engine), strict=True)
        )
        text = orjson.dumps(
            [dict(zip(columns, map(_json_ready, row), strict=True)) for row in values]
        )
        sql = (
            f"INSERT INTO workloads ({', '.join(columns)}) SELECT * FROM "
            f"json_to_recordset(%s::json) AS b({definitions}) "
            f"ON CONFLICT (id) DO UPDATE SET {_set_clause(columns)}"
        )
        with engine.begin() as conn:
            conn.connection.driver_connection.execute(sql, [text.decode()])

    return write


def _driver_copy(engine: sa.Engine) -> Callable[[list[dict]], None]:
    def write(rows: Prepared) -> None:
        columns, values = rows.driver
        names = ", ".join(columns)
        with engine.begin() as conn:
            driver = conn.connection.driver_connection
            driver.execute(
                f"CREATE TEMPORARY TABLE floor_batch ON COMMIT DROP AS "
                f"SELECT {names} FROM workloads WITH NO DATA"
            )
            with driver.cursor().copy(f"COPY floor_batch ({names}) FROM STDIN") as copy:
                for row in values:
                    copy.write_row(row)
            driver.execute(
                f"INSERT INTO workloads ({names}) SELECT {names} FROM floor_batch "
                f"ON CONFLICT (id) DO UPDATE SET {_set_clause(columns)}"
            )

    return write


def _token(client: httpx.Client) -> str:
    body = {"grantType": "client_credentials", "clientID": ADMIN_ID, "clientSecret": ADMIN_SECRET}
    response = client.post("/api/v1/token", json=body)
    response.raise_for_status()
    return response.json()["accessToken"]


def _timed(action: Callable[..., Any], *args: Any) -> float:
    started = time.perf_counter()
    action(*args)
    return (time.perf_counter() - started) * 1000


class StoreWriter:
    """The server's own work for a batch, in this process: ``ingest_workloads`` and its commit
    on the benchmark's engine (as a request runs it, the body already parsed), with the time its
    statements spent in the database summed apart."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.statements_ms = 0.0
        self._listening = False
        sa.event.listen(engine, "before_cursor_execute", self._start)
        sa.event.listen(engine, "after_cursor_execute", self._end)

    def _start(self, conn, _cursor, _statement, _parameters, _context, _many) -> None:
        conn.info["bench.started"] = time.perf_counter()

    def _end(self, conn, _cursor, _statement, _parameters, _context, _many) -> None:
        if self._listening:
            self.statements_ms += (time.perf_counter() - conn.info["bench.started"]) * 1000

    def write(self, dumped: list[dict]) -> float:
        """Milliseconds of the whole transaction; ``statements_ms`` holds its statements'."""
        self.statements_ms, self._listening = 0.0, True
        try:
            started = time.perf_counter()
            with self.engine.begin() as conn:
                now = max(item["observedAt"] for item in dumped)
                ingest_workloads(conn, STORE_CLUSTER, dumped, now=now)
            return (time.perf_counter() - started) * 1000
        finally:
            self._listening = False


def _dumped(items: list[dict]) -> list[dict]:
    return [IngestWorkload.model_validate(item).model_dump() for item in items]


def _since() -> datetime:
    """The usage retention's horizon as the server computes it for a request."""
    return datetime.now(UTC) - timedelta(days=Settings().usage_retention_days)


def compare_phase(
    client: httpx.Client,
    engine: sa.Engine,
    writer: StoreWriter,
    same: SameResultFloor,
    floors: dict[str, Callable[[Prepared], None]],
    batches: dict[str, list[list[dict]]],
) -> dict[str, list[float]]:
    """Milliseconds per batch of the API, the store (and its statements), the same-result floor
    and each workloads-only floor candidate, each writing batches of its own (new rows are
    inserted, not found). The contenders take turns batch by batch, in an order that rotates,
    so load on a shared machine falls on all of them alike."""
    path = f"/api/v1/ingest/clusters/{API_CLUSTER}/workloads"
    times: dict[str, list[float]] = defaultdict(list)
    prepared = {name: [Prepared(engine, items) for items in batches[name]] for name in floors}
    dumped = [_dumped(items) for items in batches["store"]]
    since = _since()
    converted = [
        same.prepare(items, max(i["observedAt"] for i in items), since)
        for items in map(_dumped, batches[SAME])
    ]

    # Bodies encoded beforehand, as the floors' rows are: encoding is the agent's work.
    bodies = [orjson.dumps({"workloads": items}) for items in batches["API"]]
    headers = {"Content-Type": "application/json"}

    def post(body: bytes) -> None:
        client.post(path, content=body, headers=headers).raise_for_status()

    def store(index: int) -> None:
        times["store"].append(writer.write(dumped[index]))
        times["statements"].append(writer.statements_ms)

    contenders: list[tuple[str, Callable[[int], None]]] = [
        ("API", lambda i: times["API"].append(_timed(post, bodies[i]))),
        ("store", store),
        (SAME, lambda i: times[SAME].append(_timed(same.write, converted[i]))),
        *(
            (name, lambda i, n=name, w=write: times[n].append(_timed(w, prepared[n][i])))
            for name, write in floors.items()
        ),
    ]
    for index in range(len(batches["API"])):
        shift = index % len(contenders)
        for _name, run in contenders[shift:] + contenders[:shift]:
            run(index)
    return times


@contextmanager
def store(kind: str, workdir: Path) -> Iterator[tuple[str, Any]]:
    """The benchmark's database, and the PostgreSQL server it is on (None for SQLite)."""
    if kind == "sqlite":
        yield f"sqlite:///{workdir / 'ingest.db'}", None
        return
    with postgres_server(None) as server:
        yield server.create_database("ingest"), server


def _streams(floors: dict, count: int, size: int, seed: int) -> dict[str, list[list[dict]]]:
    """New workloads for each contender: the API's, the store's, the same-result floor's, one
    set per workloads-only floor candidate."""
    clusters = {"API": API_CLUSTER, "store": STORE_CLUSTER, SAME: SAME_CLUSTER}
    clusters |= dict.fromkeys(floors, FLOOR_CLUSTER)
    return {
        name: workload_batches(cluster, count, size, seed=seed * 100 + n)
        for n, (name, cluster) in enumerate(clusters.items())
    }


@contextmanager
def _pair(kind: str, workdir: Path, size: int, server: Any) -> Iterator[tuple[sa.Engine, ...]]:
    """Two empty databases of ``kind`` beside the benchmark's: the server's ingest writes one,
    the same-result floor the other."""
    if kind == "sqlite":
        urls = [f"sqlite:///{workdir / f'same-{size}-{side}.db'}" for side in ("api", "floor")]
    else:
        urls = [server.create_database(f"same_{size}_{side}") for side in ("api", "floor")]
    engines = tuple(create_store_engine(Settings(database_url=url)) for url in urls)
    try:
        for engine in engines:
            upgrade(engine)
        yield engines
    finally:
        for engine in engines:
            engine.dispose()


def check_floor(kind: str, workdir: Path, size: int, server: Any) -> None:
    """The same-result floor leaves every table as the server's ingest does, for two batches
    of new workloads and the same ones observed again (raises otherwise)."""
    new = workload_batches(SAME_CLUSTER, 2, size, seed=size + 3)
    batches = [_dumped(items) for items in [*new, *observed_again(new, seed=size + 5)]]
    with _pair(kind, workdir, size, server) as (api, floor):
        check_same_result(api, floor, SAME_CLUSTER, batches, _since())


def _analyze(engine: sa.Engine) -> None:
    """PostgreSQL: fresh statistics before each timed case, as autovacuum keeps them on a store
    that is written to. The tables grow from nothing during the run, and plans chosen (and
    cached by prepared statements) while they were small made whichever contender's
    connections cached them several times slower, at random."""
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")


def bench_database(kind: str, batches: int, sizes: list[int], workdir: Path) -> list[tuple]:
    lines = []
    with store(kind, workdir) as (url, server):
        engine = create_store_engine(Settings(database_url=url))
        upgrade(engine)
        floors = floor_candidates(engine)
        writer = StoreWriter(engine)
        same = SameResultFloor(engine, SAME_CLUSTER)
        with (
            server_process(url, workdir / f"server-{kind}.log") as (base, _pid),
            httpx.Client(base_url=base, timeout=300) as client,
        ):
            client.headers["Authorization"] = f"Bearer {_token(client)}"
            for size in sizes:
                check_floor(kind, workdir, size, server)
                print(f"# {kind} {size}: the same-result floor leaves every table as the API")
                new = _streams(floors, batches + 1, size, seed=size)
                # One batch of each warms connections, caches and the clusters' organisation.
                warm = {n: b[:1] for n, b in new.items()}
                compare_phase(client, engine, writer, same, floors, warm)
                new = {name: b[1:] for name, b in new.items()}
                again = {n: observed_again(b, seed=size + 7) for n, b in new.items()}
                for case, streams in (("new workloads", new), ("observed again", again)):
                    _analyze(engine)
                    times = compare_phase(client, engine, writer, same, floors, streams)
                    best = min(floors, key=lambda label: median(times[label]))
                    lines.append((kind, size, case, times, best))
                    print(_line(*lines[-1]), flush=True)
                    print(_candidates(times, floors), flush=True)
        engine.dispose()
    return lines


def _line(kind: str, size: int, case: str, times: dict[str, list[float]], label: str) -> str:
    api, floor = median(times["API"]), median(times[label])
    same, store = median(times[SAME]), median(times["store"])
    return (
        f"{kind:<10} {size:>5} {case:<15} {api:>8.1f} {percentile(times['API'], 0.95):>8.1f} "
        f"{store:>8.1f} {median(times['statements']):>8.1f} {same:>8.1f} {floor:>8.1f} "
        f"{size * 1000 / api:>9,.0f} {same / api:>8.2f}x {floor / api:>8.2f}x "
        f"{same / store:>8.2f}x  {label}"
    )


def _candidates(times: dict[str, list[float]], floors: dict) -> str:
    """Every workloads-only floor candidate's p50 and the API's ratio to it."""
    api = median(times["API"])
    return "    " + "; ".join(
        f"{name} {median(times[name]):.1f} ms (API {median(times[name]) / api:.2f}x)"
        for name in floors
    )


HEADER = (
    f"{'database':<10} {'batch':>5} {'case':<15} {'API p50':>8} {'API p95':>8} {'store':>8} "
    f"{'its SQL':>8} {'same fl':>8} {'wl floor':>8} {'API wl/s':>9} {'API/same':>9} "
    f"{'API/wl':>9} {'store/sm':>9}  workloads-only floor statement"
)


def _load() -> str:
    return "load average " + " ".join(f"{value:.2f}" for value in os.getloadavg())


def profile(kind: str, size: int, workdir: Path) -> None:
    """The store's work for one batch in-process: statements by time, then the call tree."""
    import pyinstrument

    with store(kind, workdir) as (url, _server):
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
    parser.add_argument("--batch-sizes", default="100,500", help="workloads per batch")
    parser.add_argument("--profile", action="store_true", help="profile the store in-process")
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.batch_sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="gpufleet-ingest-") as directory:
        workdir = Path(directory)
        if args.profile:
            for kind in args.databases.split(","):
                profile(kind, sizes[-1], workdir)
            return 0
        print(
            "milliseconds per batch; same fl: the same-result floor, wl floor: the "
            "workloads-only floor; ratios are the floor's time over the API's (the store's)"
        )
        print(HEADER)
        for kind in args.databases.split(","):
            print(f"# {kind}: {_load()}", flush=True)
            bench_database(kind, args.batches, sizes, workdir)
            print(f"# {kind} done: {_load()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
