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

Prints the server's statement and every statement's plan.

    .venv/bin/python -m bench.usage_ledger
    .venv/bin/python -m bench.usage_ledger --database-url postgresql+psycopg://… --workloads 100000
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from fastapi.testclient import TestClient

from gpufleet.api.app import create_app
from gpufleet.core.times import format_rfc3339, to_ms
from gpufleet.demo.seed import seed_demo
from gpufleet.query.usage import UsageGroupBy, UsageQuery, UsageWindow
from gpufleet.settings import Settings
from gpufleet.store.dialect import bulk_append
from gpufleet.store.tables import usage_hourly, workloads
from gpufleet.store.usage import usage_statement

ADMIN_ID, ADMIN_SECRET = "bench-admin", "bench-admin-secret"
DAYS = 90
HOUR_MS = 3_600_000

FLOOR = """
SELECT project_id, sum(gpu_seconds) / 3600.0,
       sum(gpu_seconds * coalesce(gpu_utilisation, 0.0) / 100.0) / 3600.0,
       sum(gpu_seconds * coalesce(idle_share, 0.0)) / 3600.0,
       sum(cpu_core_seconds) / 3600.0, sum(memory_gib_seconds) / 3600.0,
       sum(pending_seconds) / 3600.0
FROM usage_hourly WHERE hour_ms >= {start} AND hour_ms < {end}
GROUP BY project_id
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
        return f"((julianday({column}) - 2440587.5) * 86400.0)"
    return f"extract(epoch from {column})"


def _raw_statement(dialect: str, start: datetime, end: datetime) -> str:
    least, greatest = ("min", "max") if dialect == "sqlite" else ("least", "greatest")
    quote = (
        (lambda t: f"'{t.strftime('%Y-%m-%d %H:%M:%S')}'")
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
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(prefix + sql).all()
    return "\n".join("    " + " ".join(str(c) for c in row) for row in rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url")
    parser.add_argument("--workloads", type=int, default=1_000_000)
    parser.add_argument("--rows-per-day", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    url = args.database_url or f"sqlite:///{Path(tempfile.mkdtemp()) / 'usage-bench.db'}"
    settings = Settings(
        database_url=url,
        admin_client_id=ADMIN_ID,
        admin_client_secret=ADMIN_SECRET,
        db_statement_timeout_seconds=0,
        usage_interval_seconds=0,
        report_interval_seconds=0,
        idle_gpu_interval_seconds=0,
    )
    app = create_app(settings)
    engine = app.state.gpufleet.engine
    end_hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    with engine.connect() as conn:
        seeded = conn.execute(sa.select(sa.func.count()).select_from(workloads)).scalar_one()
        rolled = conn.execute(sa.select(sa.func.count()).select_from(usage_hourly)).scalar_one()
    started = time.perf_counter()
    if seeded < args.workloads:
        seed_demo(
            engine,
            workloads=args.workloads - seeded,
            seed=11,
            metrics_history=False,
            details=False,
            usage_history=False,
        )
        print(
            f"seeded {args.workloads - seeded:,} workloads in {time.perf_counter() - started:.0f}s"
        )
    if rolled < args.rows_per_day * DAYS // 2:
        _seed_rollups(engine, end_hour, args.rows_per_day)
    with engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")

    start = end_hour - timedelta(days=DAYS)
    window = UsageWindow(to_ms(start), to_ms(end_hour))
    statement = usage_statement(UsageQuery(window, (UsageGroupBy.PROJECT,)))
    server_sql = str(
        statement.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True})
    )
    floor_sql = FLOOR.format(start=window.start_ms, end=window.end_ms)
    raw_sql = _raw_statement(engine.dialect.name, start, end_hour)

    with TestClient(app) as client:
        token = client.post(
            "/api/v1/token",
            json={
                "grantType": "client_credentials",
                "clientID": ADMIN_ID,
                "clientSecret": ADMIN_SECRET,
            },
        ).json()["accessToken"]
        params = {
            "start": format_rfc3339(start),
            "end": format_rfc3339(end_hour),
            "groupBy": "project",
        }
        headers = {"Authorization": f"Bearer {token}"}

        def api():
            response = client.get("/api/v1/usage", params=params, headers=headers)
            assert response.status_code == 200, response.text
            return response.json()

        groups = len(api()["values"])
        api_ms = _median_ms(api, args.repeats)
    server_ms = _median_ms(_driver(engine, server_sql), args.repeats)
    floor_ms = _median_ms(_driver(engine, floor_sql), args.repeats)
    raw_ms = _median_ms(_driver(engine, raw_sql), max(1, args.repeats // 2))

    scale = f"{args.rows_per_day:,} rollup rows a day x {DAYS} days, {groups} projects"
    print(f"\n{engine.dialect.name}: {args.workloads:,} workloads, {scale}\n")
    print("| what | p50 ms | / floor |")
    print("|---|---|---|")
    for name, value in (
        ("API GET /api/v1/usage?groupBy=project", api_ms),
        ("server statement (driver)", server_ms),
        ("floor: hand-written SQL over the rollups", floor_ms),
        ("from raw workloads (allocated only)", raw_ms),
    ):
        print(f"| {name} | {value:.1f} | {value / floor_ms:.2f} |")
    for title, sql in (("server", server_sql), ("floor", floor_sql), ("raw", raw_sql)):
        print(f"\n-- {title} statement\n{sql.strip()}\n-- plan\n{_plan(engine, sql)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
