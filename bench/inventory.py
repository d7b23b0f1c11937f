"""Node list and node telemetry at 5,000 nodes beside 1,000,000 pods, against their floors.

Each case is timed through the app in process (routing, authentication, store, JSON; no
socket); the statement the server sent is captured and timed through the bare driver beside
the best hand-written statement for the same rows (the floor). Both plans are printed.

The store holds 5,000 nodes in 2 clusters and 10 pools, and the pods of 1,000,000 workloads
(one pod each; the pods' workloads are 1,000 stored workloads, since no node query reads a
workload row except IDLE_ALLOCATED_GPUS, which joins it by primary key): 400,000 pods bound
and holding GPUs, the others finished or deleted.

    .venv/bin/python -m bench.inventory                 # SQLite
    .venv/bin/python -m bench.inventory --pods 200000   # fewer pods
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bench.floors import Capture, explain
from tests.support.factories import insert, workload
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


def seed(path: Path, pods: int) -> None:
    """Nodes, workloads and pods written by set-based inserts."""
    engine = create_store_engine(Settings(database_url=f"sqlite:///{path}"))
    upgrade(engine)
    items = insert(engine, [workload(projectId=str(i % 7)) for i in range(WORKLOADS)])
    engine.dispose()
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
        db.executemany("INSERT INTO owners VALUES (?, ?)", list(enumerate(i["id"] for i in items)))
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
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        run(Path(folder) / "inventory.db", args)


def run(path: Path, args: argparse.Namespace) -> None:
    """Seed the store at ``path``, then time every case and print the table and the plans."""
    started = time.perf_counter()
    seed(path, args.pods)
    print(f"seeded {NODES:,} nodes and {args.pods:,} pods in {time.perf_counter() - started:.0f}s")
    settings = Settings(
        database_url=f"sqlite:///{path}", admin_client_id=ADMIN_ID, admin_client_secret=ADMIN_SECRET
    )
    app = create_app(settings)
    db = sqlite3.connect(path)
    db.execute("PRAGMA case_sensitive_like=ON")
    plans = []
    with client_for(app) as client:
        capture = Capture(app.state.gpufleet.engine)
        print("| case | API p50 ms | server statement p50 ms | floor p50 ms | API / floor |")
        print("|---|---:|---:|---:|---:|")
        for name, url, params, floor, floor_params in CASES:
            capture.take()
            response = client.get(url, params=params)
            assert response.status_code == 200, response.text
            # The statement that reads the answer: the one over the nodes (the others check
            # the caller's token and rules).
            sent = capture.take()
            sql, parameters = [s for s in sent if "FROM nodes" in s[0]][-1]
            api = p50(lambda u=url, q=params: client.get(u, params=q).content, args.repeats)
            server = p50(lambda s=sql, q=parameters: db.execute(s, q).fetchall(), args.repeats)
            raw = p50(lambda f=floor, q=floor_params: db.execute(f, q).fetchall(), args.repeats)
            print(f"| {name} | {api:.2f} | {server:.2f} | {raw:.2f} | {api / raw:.1f} |")
            plans.append((name, sql, parameters, floor, floor_params))
    for name, sql, parameters, floor, floor_params in plans:
        print(f"\n## {name}\nserver statement:\n{sql}")
        print("server plan:\n  " + "\n  ".join(explain(db, sql, parameters)))
        print("floor plan:\n  " + "\n  ".join(explain(db, floor, floor_params)))
    print(f"\n(generated at {datetime.now(UTC):%Y-%m-%d %H:%M} UTC)")


if __name__ == "__main__":
    main()
