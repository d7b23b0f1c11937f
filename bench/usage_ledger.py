"""90 days of usage grouped by project: the API beside the SQL floor over the rollups, and
beside computing the same from the raw workloads.

The store holds ``--workloads`` demo workloads (1,000,000) and ``--rows-per-day`` hourly rollup
rows a day (50,000) for 90 days, the rollups spread over the seeded workloads (their projects,
departments and clusters). Three timings, medians of ``--repeats``:

* **API**: ``GET /api/v1/usage?groupBy=project`` over the 90 days, through the in-process app
  (authentication, scope, statement, JSON);
* **floor**: the hand-written ``SELECT project_id, sum(...) ... GROUP BY project_id`` over the
  window's rollups, straight through the driver;
* **raw**: allocated GPU-hours per project computed from the workloads table alone (each
  workload's current allocation times its running time inside the window) — what an answer
  without the ledger costs, and it cannot even see allocation changes, idle or used hours.

Two more cases: the dashboard's chart, the tenant's 90 days per UTC day (``bucket=day``),
beside its floor; and 7 days grouped by project, where the rollups read only the window's
hours while the raw answer still reads every workload. Prints the server's statements and
every statement's plan.

    .venv/bin/python -m bench.usage_ledger --cache /var/tmp/gpufleet-bench      # both databases
    .venv/bin/python -m bench.usage_ledger --database-url postgresql+psycopg://… --workloads 100000

``--cache`` shares the stores of ``bench.scale`` (``scale-1000000.db`` and the kept PostgreSQL
cluster's ``scale_1000000``): the million workloads are seeded once, the rollups added once.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from bench.scale import databases
from fastapi.testclient import TestClient

from gpufleet.api.app import create_app
from gpufleet.auth.secrets import hash_secret
from gpufleet.core.roles import Role, ScopeType, SubjectType
from gpufleet.core.times import format_rfc3339, from_ms, to_ms
from gpufleet.demo.seed import seed_demo
from gpufleet.query.usage import HOUR_MS, UsageBucket, UsageGroupBy, UsageQuery, UsageWindow
from gpufleet.settings import Settings
from gpufleet.store import access_rules, credentials
from gpufleet.store.dialect import bulk_append
from gpufleet.store.tables import usage_hourly, workloads
from gpufleet.store.types import sqlite_time
from gpufleet.store.usage import usage_statement

ADMIN_ID, ADMIN_SECRET = "bench-admin", "bench-admin-secret"
DAYS = 90

FLOOR = """
SELECT project_id, sum(gpu_seconds) / 3600.0,
       sum(gpu_seconds * coalesce(gpu_utilisation, 0.0) / 100.0) / 3600.0,
       sum(gpu_seconds * coalesce(idle_share, 0.0)) / 3600.0,
       sum(cpu_core_seconds) / 3600.0, sum(memory_gib_seconds) / 3600.0,
       sum(pending_seconds) / 3600.0
FROM usage_hourly WHERE hour_ms >= {start} AND hour_ms < {end}
GROUP BY project_id
"""

DAILY_FLOOR = """
SELECT hour_ms - hour_ms % 86400000, sum(gpu_seconds) / 3600.0,
       sum(gpu_seconds * coalesce(gpu_utilisation, 0.0) / 100.0) / 3600.0,
       sum(gpu_seconds * coalesce(idle_share, 0.0)) / 3600.0,
       sum(cpu_core_seconds) / 3600.0, sum(memory_gib_seconds) / 3600.0,
       sum(pending_seconds) / 3600.0
FROM usage_hourly WHERE hour_ms >= {start} AND hour_ms < {end}
GROUP BY hour_ms - hour_ms % 86400000 ORDER BY 1
"""

RAW = """
SELECT project_id, sum(allocated_gpu * (
         min(coalesce({completed}, {end_s}), {end_s}) - max({created}, {start_s}))) / 3600.0
FROM workloads
WHERE created_at < {end_ts} AND (completed_at IS NULL OR completed_at >= {start_ts})
GROUP BY project_id
"""


def _epoch(dialect: str, column: str) -> str:
    if dialect == "sqlite":
        return f"({column} / 1000000.0)"
    return f"extract(epoch from {column})"


def _raw_statement(dialect: str, start: datetime, end: datetime) -> str:
    least, greatest = ("min", "max") if dialect == "sqlite" else ("least", "greatest")
    quote = (
        (lambda t: str(sqlite_time(t)))
        if dialect == "sqlite"
        else (lambda t: f"'{t.isoformat()}'::timestamptz")
    )
    return (
        RAW.replace("min(", f"{least}(").replace("max(", f"{greatest}(")
        .format(
            completed=_epoch(dialect, "completed_at"),
            created=_epoch(dialect, "created_at"),
            start_s=start.timestamp(),
            end_s=end.timestamp(),
            start_ts=quote(start),
            end_ts=quote(end),
        )
    )  # fmt: skip


def _seed_rollups(engine: sa.Engine, end_hour: datetime, rows_per_day: int) -> None:
    with engine.connect() as conn:
        owners = conn.execute(
            sa.select(
                workloads.c.id,
                workloads.c.cluster_id,
                workloads.c.department_id,
                workloads.c.project_id,
                workloads.c.submitted_by,
                workloads.c.type,
            ).limit(200_000)
        ).all()
    rng = random.Random(7)
    per_hour = rows_per_day // 24
    start_ms = to_ms(end_hour - timedelta(days=DAYS))

    def rows():
        for hour in range(DAYS * 24):
            hour_ms = start_ms + hour * HOUR_MS
            for owner in rng.sample(owners, per_hour):
                gpu_s = rng.choice((0.5, 1, 2, 4, 8)) * 3600
                yield (
                    owner.id, hour_ms, rng.choice(("default", "a100", "h100")),
                    owner.cluster_id, owner.department_id, owner.project_id,
                    owner.submitted_by or "", owner.type, gpu_s, gpu_s * 8, gpu_s * 64, 0.0,
                    rng.uniform(0, 100), rng.uniform(0, 0.5),
                )  # fmt: skip

    columns = [
        "workload_id", "hour_ms", "nodepool", "cluster_id", "department_id", "project_id",
        "submitter", "type", "gpu_seconds", "cpu_core_seconds", "memory_gib_seconds",
        "pending_seconds", "gpu_utilisation", "idle_share",
    ]  # fmt: skip
    with engine.begin() as conn:
        written = bulk_append(conn, usage_hourly, columns, rows())
    print(f"seeded {written:,} rollup rows")


def _median_ms(action: Callable[[], object], repeats: int) -> float:
    action()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def _driver(engine: sa.Engine, sql: str) -> Callable[[], object]:
    def run():
        with engine.connect() as conn:
            cursor = conn.connection.driver_connection.cursor()
            cursor.execute(sql)
            rows = cursor.fetchall()
            cursor.close()
            return rows

    return run


def _plan(engine: sa.Engine, sql: str) -> str:
    prefix = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN ANALYZE "
    rows = _driver(engine, prefix + sql)()
    return "\n".join("    " + " ".join(str(c) for c in row) for row in rows)


@dataclass(frozen=True)
class Case:
    name: str
    params: dict[str, str]
    query: UsageQuery
    floor_sql: str
    # Allocated GPU-hours per project from the workloads table alone, where comparable.
    raw_sql: str | None


def _case(name: str, dialect: str, end: datetime, days: int, **params: str) -> Case:
    start = end - timedelta(days=days)
    window = UsageWindow(to_ms(start), to_ms(end))
    bounds = {"start": window.start_ms, "end": window.end_ms}
    wire = {"start": format_rfc3339(start), "end": format_rfc3339(end), **params}
    if "bucket" in params:
        query = UsageQuery(window, bucket=UsageBucket(params["bucket"]))
        return Case(name, wire, query, DAILY_FLOOR.format(**bounds), None)
    query = UsageQuery(window, (UsageGroupBy.PROJECT,))
    return Case(name, wire, query, FLOOR.format(**bounds), _raw_statement(dialect, start, end))


def _cases(dialect: str, end: datetime) -> list[Case]:
    return [
        _case(f"{DAYS} days, groupBy=project", dialect, end, DAYS, groupBy="project"),
        _case(f"{DAYS} days, bucket=day (the chart)", dialect, end, DAYS, bucket="day"),
        _case("7 days, groupBy=project", dialect, end, 7, groupBy="project"),
    ]


def _seed(engine: sa.Engine, workloads_wanted: int, rows_per_day: int, end_hour: datetime) -> None:
    with engine.connect() as conn:
        seeded = conn.execute(sa.select(sa.func.count()).select_from(workloads)).scalar_one()
        rolled = conn.execute(sa.select(sa.func.count()).select_from(usage_hourly)).scalar_one()
    started = time.perf_counter()
    if seeded < workloads_wanted:
        seed_demo(
            engine,
            workloads=workloads_wanted - seeded,
            seed=11,
            metrics_history=False,
            details=False,
            usage_history=False,
        )
        took = time.perf_counter() - started
        print(f"seeded {workloads_wanted - seeded:,} workloads in {took:.0f}s")
    if rolled < rows_per_day * DAYS // 2:
        _seed_rollups(engine, end_hour, rows_per_day)
    # Fresh statistics, as autovacuum would soon have them (VACUUM outside a transaction).
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE" if engine.dialect.name == "postgresql" else "ANALYZE")


def _ensure_admin(engine: sa.Engine) -> None:
    """The benchmark's administrator key: a store shared with other benchmarks may already
    have an administrator of its own, so the server's bootstrap would not create this one."""
    with engine.begin() as conn:
        if credentials.get_access_key(conn, ADMIN_ID) is not None:
            return
        credentials.put_access_key(
            conn, client_id=ADMIN_ID, name=ADMIN_ID, secret_hash=hash_secret(ADMIN_SECRET)
        )
        access_rules.create_rule(
            conn,
            subject_type=SubjectType.SERVICE_ACCOUNT.value,
            subject_id=ADMIN_ID,
            role=Role.SYSTEM_ADMINISTRATOR.value,
            scope_type=ScopeType.TENANT.value,
            scope_id="",
            created_by="bench",
        )


def bench_store(url: str, args: argparse.Namespace) -> None:
    """Seed ``url`` as far as needed, then time every case on it and print the table."""
    settings = Settings(
        database_url=url,
        admin_client_id=ADMIN_ID,
        admin_client_secret=ADMIN_SECRET,
        db_statement_timeout_seconds=0,
        # No periodic task may scan the million workloads while the requests are timed.
        usage_interval_seconds=0,
        report_interval_seconds=0,
        idle_gpu_interval_seconds=0,
        metrics_interval_seconds=0,
        metrics_retention_interval_seconds=0,
        events_retention_interval_seconds=0,
    )
    app = create_app(settings)
    engine = app.state.gpufleet.engine
    # The rollups were seeded for the 90 days before their newest hour: time that window.
    with engine.connect() as conn:
        newest = conn.execute(sa.select(sa.func.max(usage_hourly.c.hour_ms))).scalar()
    now_hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    end_hour = now_hour if newest is None else from_ms(newest + HOUR_MS)
    _seed(engine, args.workloads, args.rows_per_day, end_hour)
    _ensure_admin(engine)
    results = []
    with TestClient(app) as client:
        answer = client.post(
            "/api/v1/token",
            json={
                "grantType": "client_credentials",
                "clientID": ADMIN_ID,
                "clientSecret": ADMIN_SECRET,
            },
        )
        assert answer.status_code == 200, answer.text
        headers = {"Authorization": f"Bearer {answer.json()['accessToken']}"}
        for case in _cases(engine.dialect.name, end_hour):

            def api(case: Case = case):
                response = client.get("/api/v1/usage", params=case.params, headers=headers)
                assert response.status_code == 200, response.text
                return response.json()

            values = len(api()["values"])
            server_sql = str(
                usage_statement(case.query).compile(
                    dialect=engine.dialect, compile_kwargs={"literal_binds": True}
                )
            )
            if engine.dialect.name == "postgresql":
                # psycopg's dialect escapes % for its placeholders; the statement runs bare.
                server_sql = server_sql.replace("%%", "%")
            timings = (
                _median_ms(api, args.repeats),
                _median_ms(_driver(engine, server_sql), args.repeats),
                _median_ms(_driver(engine, case.floor_sql), args.repeats),
            )
            results.append((case, values, server_sql, timings))
    raws = {
        case.name: _median_ms(_driver(engine, case.raw_sql), max(1, args.repeats // 2))
        for case, *_rest in results
        if case.raw_sql
    }

    with engine.connect() as conn:
        rolled = conn.execute(sa.select(sa.func.count()).select_from(usage_hourly)).scalar_one()
    print(
        f"\n{engine.dialect.name}: {args.workloads:,} workloads, {rolled:,} rollup rows "
        f"({args.rows_per_day:,} a day over {DAYS} days), median of {args.repeats}\n"
    )
    print("| case | values | API p50 ms | server statement ms | floor ms | API / floor | raw ms |")
    print("|---|---|---|---|---|---|---|")
    for case, values, _sql, (api_ms, server_ms, floor_ms) in results:
        raw = f"{raws[case.name]:.1f}" if case.name in raws else ""
        print(
            f"| {case.name} | {values} | {api_ms:.1f} | {server_ms:.1f} | {floor_ms:.1f} | "
            f"{api_ms / floor_ms:.2f} | {raw} |"
        )
    for case, _values, server_sql, _timings in results:
        for title, sql in (
            ("server", server_sql),
            ("floor", case.floor_sql),
            ("raw", case.raw_sql),
        ):
            if sql:
                print(f"\n-- {case.name}: {title}\n{sql.strip()}\n-- plan\n{_plan(engine, sql)}")
    engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="one store to use (else --databases)")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument(
        "--cache", type=Path, help="keep the stores here, shared with bench.scale (see above)"
    )
    parser.add_argument("--workloads", type=int, default=1_000_000)
    parser.add_argument("--rows-per-day", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if args.database_url:
        bench_store(args.database_url, args)
        return 0
    workdir = Path(tempfile.mkdtemp(prefix="gpufleet-usage-"))
    try:
        for kind in args.databases.split(","):
            with databases(kind, workdir, args.cache) as store_for:
                bench_store(store_for(args.workloads), args)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
