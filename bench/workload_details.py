"""History and events of a workload with 10,000 events, and the pods list over many pods.

Each case is timed through the app in process (routing, authentication, store, JSON; no
socket) beside its floor: the best statement written by hand for the same rows, run straight
through the driver with every row fetched. The query plans of both are printed.

    .venv/bin/python -m bench.workload_details                  # SQLite, 1,000,000 pods
    .venv/bin/python -m bench.workload_details --pods 200000    # a smaller pod table
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from tests.support.factories import insert, workload
from tests.support.prometheus_app import client_for
from tests.support.server import ADMIN_ID, ADMIN_SECRET

from gpufleet.api.app import create_app
from gpufleet.query.pods import build_pod_page, build_pod_selection
from gpufleet.settings import Settings
from gpufleet.store.engine import create_store_engine
from gpufleet.store.migrate import upgrade
from gpufleet.store.pods import page_ids_statement

EVENTS = 10_000
WORKLOADS = 1000
T0 = "2026-01-01 00:00:00.000000"


def seed(path: Path, pods: int) -> str:
    """Workloads, one of them with 10,000 events and 100 phase changes, and ``pods`` pods."""
    engine = create_store_engine(Settings(database_url=f"sqlite:///{path}"))
    upgrade(engine)
    items = insert(engine, [workload(projectId=str(i % 7)) for i in range(WORKLOADS)])
    engine.dispose()
    busy = items[0]["id"]
    with sqlite3.connect(path) as db:
        db.executemany(
            "INSERT INTO workload_phase_history (workload_id, phase, message, at) "
            "VALUES (?, ?, '', datetime(?, ? || ' minutes'))",
            [(busy, ("Pending", "Running")[n % 2], T0, str(n * 100)) for n in range(100)],
        )
        db.execute(
            """
            WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ? - 1)
            INSERT INTO workload_events SELECT
                printf('%08x-0000-4000-8000-%012x', i, i), ?, ?, datetime(?, i || ' seconds'),
                'Warning', 'BackOff', 'Back-off restarting failed container', 'kubelet', 1,
                'Pod', 'p-' || (i % 8), 'ns', printf('%08x-1111-4000-8000-%012x', i % 8, 0)
            FROM n
            """,
            (EVENTS, busy, items[0]["clusterId"], T0),
        )
        ids = [item["id"] for item in items]
        db.execute("CREATE TEMP TABLE owners (n INTEGER PRIMARY KEY, id TEXT)")
        db.executemany("INSERT INTO owners VALUES (?, ?)", list(enumerate(ids)))
        db.execute(
            """
            WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ? - 1)
            INSERT INTO workload_pods SELECT
                printf('%08x-2222-4000-8000-%012x', i, i), o.id, ?, 'pod-' || i,
                printf('node-%02d', i % 40), CASE i % 3 WHEN 0 THEN 'gpu' ELSE 'default' END,
                'Running', NULL, datetime(?, (i * 7 % 1000003) || ' seconds'), NULL,
                CASE WHEN i % 10 = 0 THEN datetime(?, '1 day') END, datetime(?, '2 days'),
                datetime(?, '2 days'), '{"priorityClassName": "train"}'
            FROM n JOIN owners AS o ON o.n = n.i % ?
            """,
            (pods, items[0]["clusterId"], T0, T0, T0, T0, WORKLOADS),
        )
        db.execute("ANALYZE")
    return busy


def p50(run: Callable[[], object], repeats: int) -> float:
    run()
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        timings.append(time.perf_counter() - started)
    return sorted(timings)[len(timings) // 2] * 1000


HISTORY_FLOOR = """
SELECT * FROM (
  SELECT at, 0 AS kind, CAST(id AS TEXT) AS key, phase, message,
         NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
  FROM (SELECT * FROM workload_phase_history WHERE workload_id = :w
        ORDER BY at DESC, id DESC LIMIT :window)
  UNION ALL
  SELECT created_at, 1, id, type, reason, message, source, cluster_id, object_kind,
         object_name, object_namespace, object_uid, NULL
  FROM (SELECT * FROM workload_events WHERE workload_id = :w
        ORDER BY created_at DESC, id DESC LIMIT :window)
) ORDER BY 1 DESC, 2 DESC, 3 DESC LIMIT :limit OFFSET :offset
"""
EVENTS_FLOOR = """
SELECT * FROM workload_events WHERE workload_id = :w
ORDER BY created_at DESC, id DESC LIMIT :limit OFFSET :offset
"""
PODS_FLOOR = """
SELECT p.*, w.tenant_id, w.project_id FROM workload_pods AS p
JOIN workloads AS w ON w.id = p.workload_id
WHERE p.deleted_at IS NULL AND p.nodepool = 'gpu'
ORDER BY p.created_at DESC, p.id DESC LIMIT 501
"""
PODS_COUNT_FLOOR = """
SELECT count(*) FROM workload_pods WHERE deleted_at IS NULL AND nodepool = 'gpu'
"""


def plan(db: sqlite3.Connection, sql: str, params: dict) -> str:
    rows = db.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()
    return "; ".join(row[-1] for row in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        run(Path(folder) / "details.db", args)


def run(path: Path, args: argparse.Namespace) -> None:
    """Seed the store at ``path``, then time every case and print the table and the plans."""
    started = time.perf_counter()
    busy = seed(path, args.pods)
    print(
        f"seeded {args.pods:,} pods and {EVENTS:,} events in {time.perf_counter() - started:.0f}s"
    )
    settings = Settings(
        database_url=f"sqlite:///{path}",
        admin_client_id=ADMIN_ID,
        admin_client_secret=ADMIN_SECRET,
    )
    app = create_app(settings)
    db = sqlite3.connect(path)
    with client_for(app) as client:
        base = f"/api/v1/workloads/{busy}"
        pods_params = {"filterBy": "currentNodepool==gpu", "sortBy": "createdAt",
                       "sortOrder": "desc", "limit": 500}  # fmt: skip
        cases = [
            ("history, first page", f"{base}/history", {"limit": 50}, HISTORY_FLOOR,
             {"w": busy, "window": 51, "limit": 51, "offset": 0}),
            ("history, offset 5000", f"{base}/history", {"limit": 50, "offset": 5000},
             HISTORY_FLOOR, {"w": busy, "window": 5051, "limit": 51, "offset": 5000}),
            ("events, first page", f"{base}/events", {"limit": 50}, EVENTS_FLOOR,
             {"w": busy, "limit": 51, "offset": 0}),
            ("events, offset 5000", f"{base}/events", {"limit": 50, "offset": 5000},
             EVENTS_FLOOR, {"w": busy, "limit": 51, "offset": 5000}),
            (f"pods of {args.pods:,}: pool filter, createdAt desc, 500", "/api/v1/workloads/pods",
             pods_params, PODS_FLOOR, {}),
            ("pods count, pool filter", "/api/v1/workloads/pods/count",
             {"filterBy": "currentNodepool==gpu"}, PODS_COUNT_FLOOR, {}),
        ]  # fmt: skip
        print("| case | API p50 ms | floor p50 ms | ratio |\n|---|---:|---:|---:|")
        for name, url, params, floor, floor_params in cases:
            response = client.get(url, params=params)
            assert response.status_code == 200, response.text
            api = p50(lambda u=url, q=params: client.get(u, params=q).content, args.repeats)
            raw = p50(lambda f=floor, q=floor_params: db.execute(f, q).fetchall(), args.repeats)
            print(f"| {name} | {api:.2f} | {raw:.2f} | {api / raw:.1f} |")
        print("\nplans")
        page = build_pod_page(
            build_pod_selection(filter_by=["currentNodepool==gpu"], search=None, deleted=None),
            sort_by="createdAt", sort_order="desc", offset=0, limit=500,
        )  # fmt: skip
        statement = page_ids_statement("sqlite", page)
        compiled = statement.compile(dialect=app.state.gpufleet.engine.dialect,
                                     compile_kwargs={"literal_binds": True})  # fmt: skip
        print("server pods page:", plan(db, str(compiled), {}))
        print("floor pods page: ", plan(db, PODS_FLOOR, {}))
        print("floor history:   ", plan(db, HISTORY_FLOOR, cases[0][4]))
        print("floor events:    ", plan(db, EVENTS_FLOOR, cases[2][4]))
    print(f"(generated at {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, run {uuid.uuid4().hex[:6]})")


if __name__ == "__main__":
    main()
