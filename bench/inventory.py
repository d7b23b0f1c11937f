"""Node list and node telemetry at 5,000 nodes beside 1,000,000 pods, against their floors.

Each case is timed through the app in process (routing, authentication, store, JSON; no
socket); the statement the server sent is captured and timed through the bare driver beside
the best hand-written statement for the same rows (the floor). Both plans are printed.

The store holds 5,000 nodes in 2 clusters and 10 pools, and the pods of 1,000,000 workloads
(one pod each; the pods' workloads are 1,000 stored workloads, since no node query reads a
workload row except IDLE_ALLOCATED_GPUS, which joins it by primary key): 400,000 pods bound
and holding GPUs, the others finished or deleted.

    .venv/bin/python -m bench.inventory                          # SQLite and PostgreSQL
    .venv/bin/python -m bench.inventory --databases postgresql   # one of them
    .venv/bin/python -m bench.inventory --pods 200000            # fewer pods

PostgreSQL is a throw-away server the benchmark starts itself (as the tests do); its floors
are the same statements without SQLite's index hints, which PostgreSQL's planner does not take.
"""

from __future__ import annotations

import argparse
import re
import sqlite3
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from bench.floors import Capture, explain, raw_connection
from bench.floors import execute as execute_raw
from tests.support.factories import insert, workload
from tests.support.postgres import start_postgres
from tests.support.prometheus_app import client_for
from tests.support.server import ADMIN_ID, ADMIN_SECRET

from gpufleet.api.app import create_app
from gpufleet.settings import Settings
from gpufleet.store.engine import create_store_engine
from gpufleet.store.migrate import upgrade

NODES = 5000
WORKLOADS = 1000
CLUSTERS = ("c0000000-0000-4000-8000-000000000001", "c0000000-0000-4000-8000-000000000002")
T0 = "2026-01-01 00:00:00.000000"


def _workloads(database_url: str) -> list[str]:
    """The stored workloads the pods belong to, through the store's own writes; their ids."""
    engine = create_store_engine(Settings(database_url=database_url))
    upgrade(engine)
    items = insert(engine, [workload(projectId=str(i % 7)) for i in range(WORKLOADS)])
    engine.dispose()
    return [item["id"] for item in items]


def seed(path: Path, pods: int) -> None:
    """Nodes, workloads and pods written by set-based inserts."""
    ids = _workloads(f"sqlite:///{path}")
    with sqlite3.connect(path) as db:
        db.execute(
            """
            WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ? - 1)
            INSERT INTO nodes (id, cluster_id, name, status, unschedulable, nodepool, gpu_type,
                gpu_count, allocatable_gpus, gpu_memory_bytes, cpu_cores, allocatable_cpu_cores,
                memory_bytes, allocatable_memory_bytes, created_at, updated_at, observed_at,
                document)
            SELECT printf('%08x-4444-4000-8000-%012x', i, i),
                CASE i % 2 WHEN 0 THEN ? ELSE ? END, printf('node-%05d', i),
                CASE WHEN i % 97 = 0 THEN 'NotReady' ELSE 'Ready' END, i % 101 = 0,
                'pool-' || (i % 10), 'NVIDIA-A100', 8, 8, 85899345920, 128, 126,
                1099511627776, 1073741824000, ?, ?, ?, '{"conditions": [], "taints": []}'
            FROM n
            """,
            (NODES, *CLUSTERS, T0, T0, T0),
        )
        db.execute("CREATE TEMP TABLE owners (n INTEGER PRIMARY KEY, id TEXT)")
        db.executemany("INSERT INTO owners VALUES (?, ?)", list(enumerate(ids)))
        # 40% of the pods hold 0.01 GPU on a node; the rest finished (30%) or were deleted.
        db.execute(
            """
            WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ? - 1)
            INSERT INTO workload_pods (id, workload_id, cluster_id, name, node_name, nodepool,
                k8s_phase, created_at, completed_at, deleted_at, updated_at,
                k8s_phase_updated_at, allocated_gpu, allocated_cpu_cores,
                allocated_memory_bytes, document)
            SELECT printf('%08x-2222-4000-8000-%012x', i, i), o.id,
                CASE (i % ?) % 2 WHEN 0 THEN ? ELSE ? END, 'pod-' || i,
                printf('node-%05d', i % ?), 'pool-' || ((i % ?) % 10),
                CASE WHEN i % 10 < 4 THEN 'Running' ELSE 'Succeeded' END, ?,
                CASE WHEN i % 10 >= 4 THEN ? END, CASE WHEN i % 10 >= 7 THEN ? END, ?, ?,
                CASE WHEN i % 10 < 4 THEN 0.01 ELSE 0 END,
                CASE WHEN i % 10 < 4 THEN 0.1 ELSE 0 END,
                CASE WHEN i % 10 < 4 THEN 1048576 ELSE 0 END, '{}'
            FROM n JOIN owners AS o ON o.n = n.i % ?
            """,
            (pods, NODES, *CLUSTERS, NODES, NODES, T0, T0, T0, T0, T0, WORKLOADS),
        )
        db.execute("ANALYZE")


# The same rows as ``seed`` writes on SQLite, in PostgreSQL's spelling.
PG_NODES = """
INSERT INTO nodes (id, cluster_id, name, status, unschedulable, nodepool, gpu_type, gpu_count,
    allocatable_gpus, gpu_memory_bytes, cpu_cores, allocatable_cpu_cores, memory_bytes,
    allocatable_memory_bytes, created_at, updated_at, observed_at, document)
SELECT lpad(to_hex(i), 8, '0') || '-4444-4000-8000-' || lpad(to_hex(i), 12, '0'),
    CASE i %% 2 WHEN 0 THEN %(c0)s ELSE %(c1)s END, 'node-' || lpad(i::text, 5, '0'),
    CASE WHEN i %% 97 = 0 THEN 'NotReady' ELSE 'Ready' END, i %% 101 = 0, 'pool-' || (i %% 10),
    'NVIDIA-A100', 8, 8, 85899345920, 128, 126, 1099511627776, 1073741824000,
    %(t0)s, %(t0)s, %(t0)s, '{"conditions": [], "taints": []}'::jsonb
FROM generate_series(0, %(nodes)s - 1) AS i
"""
PG_PODS = """
INSERT INTO workload_pods (id, workload_id, cluster_id, name, node_name, nodepool, k8s_phase,
    created_at, completed_at, deleted_at, updated_at, k8s_phase_updated_at, allocated_gpu,
    allocated_cpu_cores, allocated_memory_bytes, document)
SELECT lpad(to_hex(i), 8, '0') || '-2222-4000-8000-' || lpad(to_hex(i), 12, '0'), o.id,
    CASE (i %% %(nodes)s) %% 2 WHEN 0 THEN %(c0)s ELSE %(c1)s END, 'pod-' || i,
    'node-' || lpad((i %% %(nodes)s)::text, 5, '0'), 'pool-' || ((i %% %(nodes)s) %% 10),
    CASE WHEN i %% 10 < 4 THEN 'Running' ELSE 'Succeeded' END, %(t0)s,
    CASE WHEN i %% 10 >= 4 THEN %(t0)s::timestamptz END,
    CASE WHEN i %% 10 >= 7 THEN %(t0)s::timestamptz END, %(t0)s, %(t0)s,
    CASE WHEN i %% 10 < 4 THEN 0.01 ELSE 0 END, CASE WHEN i %% 10 < 4 THEN 0.1 ELSE 0 END,
    CASE WHEN i %% 10 < 4 THEN 1048576 ELSE 0 END, '{}'::jsonb
FROM generate_series(0, %(pods)s - 1) AS i
JOIN owners AS o ON o.n = i %% %(workloads)s
"""


def seed_postgresql(database_url: str, dsn: str, pods: int) -> None:
    """The rows of ``seed`` on PostgreSQL, analysed."""
    ids = _workloads(database_url)
    values = {"c0": CLUSTERS[0], "c1": CLUSTERS[1], "t0": T0 + "+00", "nodes": NODES,
              "pods": pods, "workloads": WORKLOADS}  # fmt: skip
    with psycopg.connect(dsn, autocommit=True) as db:
        db.execute("CREATE TEMP TABLE owners (n integer PRIMARY KEY, id text)")
        with db.cursor() as cursor:
            cursor.executemany("INSERT INTO owners VALUES (%s, %s)", list(enumerate(ids)))
        db.execute(PG_NODES, values)
        db.execute(PG_PODS, values)
        db.execute("VACUUM ANALYZE")


NODE_COLUMNS = "*"
LIST_FLOOR = """
SELECT * FROM nodes INDEXED BY ix_nodes_name_id WHERE deleted_at IS NULL
ORDER BY name, id LIMIT 50 OFFSET :offset
"""
POOL_LIST_FLOOR = """
SELECT * FROM nodes INDEXED BY ix_nodes_nodepool_id
WHERE deleted_at IS NULL AND nodepool = 'pool-3' ORDER BY name, id LIMIT 50
"""
COUNT_FLOOR = "SELECT count(*) FROM nodes WHERE deleted_at IS NULL"
# One pass over the holding pods' covering index, summed per node, then per pool.
ALLOCATED_FLOOR = """
SELECT n.cluster_id, n.nodepool, coalesce(sum(a.gpu), 0)
FROM nodes AS n LEFT JOIN (
  SELECT cluster_id, node_name, sum(allocated_gpu) AS gpu
  FROM workload_pods INDEXED BY ix_workload_pods_holding
  WHERE deleted_at IS NULL
    AND (allocated_gpu > 0 OR allocated_cpu_cores > 0 OR allocated_memory_bytes > 0)
  GROUP BY cluster_id, node_name
) AS a ON a.cluster_id = n.cluster_id AND a.node_name = n.name
WHERE n.deleted_at IS NULL
GROUP BY n.cluster_id, n.nodepool ORDER BY n.cluster_id, n.nodepool
"""
FREE_PER_NODE_FLOOR = """
SELECT n.name, n.gpu_count - coalesce(a.gpu, 0)
FROM nodes AS n LEFT JOIN (
  SELECT cluster_id, node_name, sum(allocated_gpu) AS gpu
  FROM workload_pods INDEXED BY ix_workload_pods_holding
  WHERE deleted_at IS NULL
    AND (allocated_gpu > 0 OR allocated_cpu_cores > 0 OR allocated_memory_bytes > 0)
  GROUP BY cluster_id, node_name
) AS a ON a.cluster_id = n.cluster_id AND a.node_name = n.name
WHERE n.deleted_at IS NULL ORDER BY n.name
"""
TOTAL_FLOOR = """
SELECT cluster_id, nodepool, sum(gpu_count) FROM nodes INDEXED BY ix_nodes_cluster_id_nodepool
WHERE deleted_at IS NULL GROUP BY cluster_id, nodepool
"""


def p50(run: Callable[[], object], repeats: int) -> float:
    run()
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        timings.append(time.perf_counter() - started)
    return sorted(timings)[len(timings) // 2] * 1000


def _telemetry(kind: str, group_by: str) -> dict:
    return {"telemetryType": kind, "groupBy": group_by}


CASES = [
    ("nodes, first page", "/api/v1/nodes", {"limit": 50}, LIST_FLOOR, {"offset": 0}),
    ("nodes, offset 4000", "/api/v1/nodes", {"limit": 50, "offset": 4000}, LIST_FLOOR,
     {"offset": 4000}),
    ("nodes, pool filter", "/api/v1/nodes", {"filterBy": "nodePool==pool-3", "limit": 50},
     POOL_LIST_FLOOR, {}),
    ("nodes count", "/api/v1/nodes/count", {}, COUNT_FLOOR, {}),
    ("telemetry TOTAL_GPUS by cluster, pool", "/api/v1/nodes/telemetry",
     _telemetry("TOTAL_GPUS", "ClusterId,Nodepool"), TOTAL_FLOOR, {}),
    ("telemetry ALLOCATED_GPUS by cluster, pool", "/api/v1/nodes/telemetry",
     _telemetry("ALLOCATED_GPUS", "ClusterId,Nodepool"), ALLOCATED_FLOOR, {}),
    ("telemetry FREE_GPUS by node (5,000 groups)", "/api/v1/nodes/telemetry",
     _telemetry("FREE_GPUS", "Node"), FREE_PER_NODE_FLOOR, {}),
]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--databases", default="sqlite,postgresql")
    args = parser.parse_args()
    for database in args.databases.split(","):
        print(f"\n# {database}")
        if database == "sqlite":
            with tempfile.TemporaryDirectory() as folder:
                path = Path(folder) / "inventory.db"
                started = time.perf_counter()
                seed(path, args.pods)
                seeded(started, args.pods)
                run(f"sqlite:///{path}", args)
        else:
            server = start_postgres()
            try:
                url = server.create_database("inventory")
                started = time.perf_counter()
                seed_postgresql(url, server.dsn("inventory"), args.pods)
                seeded(started, args.pods)
                run(url, args)
            finally:
                server.destroy()


def seeded(started: float, pods: int) -> None:
    print(f"seeded {NODES:,} nodes and {pods:,} pods in {time.perf_counter() - started:.0f}s")


def floor_for(db, sql: str) -> str:
    """A floor as the database takes it: PostgreSQL has no index hints."""
    if isinstance(db, sqlite3.Connection):
        return sql
    return re.sub(r"INDEXED BY \w+", "", sql).replace(":offset", "%(offset)s")


def run(database_url: str, args: argparse.Namespace) -> None:
    """Time every case on the seeded store and print the table and the plans."""
    settings = Settings(
        database_url=database_url, admin_client_id=ADMIN_ID, admin_client_secret=ADMIN_SECRET
    )
    app = create_app(settings)
    plans = []
    with client_for(app) as client, raw_connection(database_url) as db:
        capture = Capture(app.state.gpufleet.engine)
        print("| case | API p50 ms | server statement p50 ms | floor p50 ms | API / floor |")
        print("|---|---:|---:|---:|---:|")
        for name, url, params, floor, floor_params in CASES:
            floor = floor_for(db, floor)
            capture.take()
            response = client.get(url, params=params)
            assert response.status_code == 200, response.text
            # The statement that reads the answer: the one over the nodes (the others check
            # the caller's token and rules).
            sent = capture.take()
            sql, parameters = [s for s in sent if "FROM nodes" in s[0]][-1]
            api = p50(lambda u=url, q=params: client.get(u, params=q).content, args.repeats)
            server = p50(lambda s=sql, q=parameters: execute_raw(db, s, q), args.repeats)
            raw = p50(lambda f=floor, q=floor_params: execute_raw(db, f, q), args.repeats)
            print(f"| {name} | {api:.2f} | {server:.2f} | {raw:.2f} | {api / raw:.1f} |")
            plans.append((name, sql, parameters, floor, floor_params))
        for name, sql, parameters, floor, floor_params in plans:
            print(f"\n## {name}\nserver statement:\n{sql}")
            print("server plan:\n  " + "\n  ".join(explain(db, sql, parameters)))
            print("floor plan:\n  " + "\n  ".join(explain(db, floor, floor_params)))
    print(f"\n(generated at {datetime.now(UTC):%Y-%m-%d %H:%M} UTC)")


if __name__ == "__main__":
    main()
