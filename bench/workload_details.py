"""History and events of a workload with 10,000 events, and the pods list over 1,000,000 pods.

The store holds 1,000 workloads; one has 100 phase changes and 10,000 events, the others share
90,000 events, and the pods (a third in node pool "gpu", a tenth deleted) belong to all of them.

Each request is timed through the app in process (routing, authentication, store, JSON; no
socket) beside the statements the server sends for it (captured from the app's engine) and the
floor: the fastest hand-written candidate for the same rows (``bench/floors.py``), each run
through the bare driver with every row fetched. Both are printed with their ``EXPLAIN`` plans.

    .venv/bin/python -m bench.workload_details                          # both databases
    .venv/bin/python -m bench.workload_details --databases sqlite --pods 200000

Seeded stores are kept under ``--cache`` (default ``/var/tmp/gpufleet-bench``, outside the
checkout): a SQLite file and a database of the kept PostgreSQL cluster per pod count, filled by
set-based INSERT ... SELECT in the database itself, so a million pods are seeded once.
"""

from __future__ import annotations

import argparse
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from bench.floors import Candidate, Capture, compare, is_sqlite, print_comparisons, raw_connection
from bench.scale import CachedPostgres, postgres_server
from tests.support.factories import insert, workload
from tests.support.prometheus_app import client_for
from tests.support.server import ADMIN_ID, ADMIN_SECRET

from gpufleet.api.app import create_app
from gpufleet.settings import Settings
from gpufleet.store.dialect import without_statement_timeout
from gpufleet.store.engine import create_store_engine
from gpufleet.store.migrate import upgrade

EVENTS = 10_000
# Events of the other workloads, so the planner sees a table of many workloads' events.
OTHER_EVENTS = 90_000
TRANSITIONS = 100
WORKLOADS = 1000
T0 = "2026-01-01 00:00:00"
_POD_COLUMNS = (
    "id, workload_id, cluster_id, name, node_name, nodepool, k8s_phase, created_at, "
    "completed_at, deleted_at, updated_at, k8s_phase_updated_at, document"
)
_EVENT_COLUMNS = (
    "id, workload_id, cluster_id, created_at, type, reason, message, source, count, "
    "object_kind, object_name, object_namespace, object_uid"
)

# Set-based seeding, per dialect: :n rows numbered i = 0 .. n-1 in the database itself.
SEED = {
    "sqlite": {
        "numbers": (
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < :n - 1)"
        ),
        "uuid": "printf('%08x-{tag}-4000-8000-%012x', {i}, {i})",
        "at": "datetime(:t0, ({seconds}) || ' seconds')",
        "pad": "printf('%02d', {value})",
        "json": "'{text}'",
    },
    "postgresql": {
        "numbers": "WITH n(i) AS (SELECT generate_series(0, :n - 1))",
        "uuid": "(lpad(to_hex({i}), 8, '0') || '-{tag}-4000-8000-' || lpad(to_hex({i}), 12, '0'))",
        "at": "(CAST(:t0 || '+00' AS timestamptz) + make_interval(secs => {seconds}))",
        "pad": "lpad(CAST({value} AS text), 2, '0')",
        "json": "CAST('{text}' AS jsonb)",
    },
}


def _seed_sql(dialect: str) -> dict[str, str]:
    s = SEED[dialect]
    return {
        "transitions": f"""
            {s["numbers"]}
            INSERT INTO workload_phase_history (workload_id, phase, message, at)
            SELECT :w, CASE i % 2 WHEN 0 THEN 'Pending' ELSE 'Running' END, '',
                   {s["at"].format(seconds="i * 6000")}
            FROM n""",
        "events": f"""
            {s["numbers"]}
            INSERT INTO workload_events ({_EVENT_COLUMNS})
            SELECT {s["uuid"].format(tag="0000", i="i")}, :w, :cluster,
                   {s["at"].format(seconds="i")}, 'Warning', 'BackOff',
                   'Back-off restarting failed container', 'kubelet', 1, 'Pod',
                   'p-' || (i % 8), 'ns', {s["uuid"].format(tag="1111", i="i % 8")}
            FROM n""",
        "other events": f"""
            {s["numbers"]}
            INSERT INTO workload_events ({_EVENT_COLUMNS})
            SELECT {s["uuid"].format(tag="3333", i="i")}, o.id, :cluster,
                   {s["at"].format(seconds="i")}, 'Normal', 'Scheduled', 'Successfully assigned',
                   'default-scheduler', 1, 'Pod', 'p-' || i, 'ns',
                   {s["uuid"].format(tag="4444", i="i")}
            FROM n JOIN bench_owners AS o ON o.n = 1 + i % (:workloads - 1)""",
        "pods": f"""
            {s["numbers"]}
            INSERT INTO workload_pods ({_POD_COLUMNS})
            SELECT {s["uuid"].format(tag="2222", i="i")}, o.id, :cluster, 'pod-' || i,
                   'node-' || {s["pad"].format(value="i % 40")},
                   CASE i % 3 WHEN 0 THEN 'gpu' ELSE 'default' END, 'Running',
                   {s["at"].format(seconds="i * 7 % 1000003")}, NULL,
                   CASE WHEN i % 10 = 0 THEN {s["at"].format(seconds="86400")} END,
                   {s["at"].format(seconds="172800")}, {s["at"].format(seconds="172800")},
                   {s["json"].format(text='{"priorityClassName": "train"}')}
            FROM n JOIN bench_owners AS o ON o.n = i % :workloads""",
    }


def seed(database_url: str, pods: int) -> str:
    """The store at ``database_url`` with ``pods`` pods; returns the busy workload's id.

    Seeds only what is missing: an already seeded store is used as it is.
    """
    engine = create_store_engine(Settings(database_url=database_url))
    try:
        upgrade(engine)
        with engine.connect() as conn:
            busy = conn.execute(
                sa.text("SELECT workload_id FROM workload_events WHERE reason = 'BackOff' LIMIT 1")
            ).scalar()
            present = conn.execute(sa.text("SELECT count(*) FROM workload_pods")).scalar_one()
            events = conn.execute(sa.text("SELECT count(*) FROM workload_events")).scalar_one()
        if busy is not None and present == pods and events == EVENTS + OTHER_EVENTS:
            return busy
        started = time.perf_counter()
        with engine.begin() as conn:
            without_statement_timeout(conn)
            # A store seeded differently, or half seeded by an interrupted run, starts empty.
            for table in (*DETAIL_TABLES, "workloads"):
                conn.execute(sa.text(f"DELETE FROM {table}"))
        items = insert(engine, [workload(projectId=str(i % 7)) for i in range(WORKLOADS)])
        busy, cluster = items[0]["id"], items[0]["clusterId"]
        statements = _seed_sql(engine.dialect.name)
        with engine.begin() as conn:
            without_statement_timeout(conn)
            conn.execute(sa.text("CREATE TEMP TABLE bench_owners (n INTEGER PRIMARY KEY, id TEXT)"))
            conn.execute(
                sa.text("INSERT INTO bench_owners VALUES (:n, :id)"),
                [{"n": n, "id": item["id"]} for n, item in enumerate(items)],
            )
            common = {"w": busy, "cluster": cluster, "t0": T0, "workloads": WORKLOADS}
            for name, count in (
                ("transitions", TRANSITIONS),
                ("events", EVENTS),
                ("other events", OTHER_EVENTS),
                ("pods", pods),
            ):
                conn.execute(sa.text(statements[name]), {**common, "n": count})
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            # What autovacuum (PostgreSQL) or the server's optimize pragma (SQLite) would do.
            conn.exec_driver_sql(
                "VACUUM ANALYZE" if engine.dialect.name == "postgresql" else "ANALYZE"
            )
        seconds = time.perf_counter() - started
        print(f"# seeded {pods:,} pods and {EVENTS + OTHER_EVENTS:,} events in {seconds:.0f}s")
        return busy
    finally:
        engine.dispose()


@contextmanager
def stores(kind: str, cache: Path) -> Iterator[Callable[[int], str]]:
    """The database URL of the kept store for a pod count."""
    if kind == "sqlite":
        cache.mkdir(parents=True, exist_ok=True)
        yield lambda pods: f"sqlite:///{cache / f'details-{pods}.db'}"
        return
    with postgres_server(cache) as server:
        assert isinstance(server, CachedPostgres)
        yield lambda pods: server.ensure_database(f"details_{pods}")


# The floors: what an expert writes for the same rows, per plan worth trying.
# The history page with every row's fields in one statement: each side's newest rows by its
# index, merged.
HISTORY = """
SELECT at, kind, key, phase, message, type, reason, source, count, object_kind, object_name,
       object_namespace, object_uid FROM (
  SELECT h.at AS at, 0 AS kind, CAST(h.id AS TEXT) AS key, h.phase, h.message, NULL AS type,
         NULL AS reason, NULL AS source, NULL AS count, NULL AS object_kind,
         NULL AS object_name, NULL AS object_namespace, NULL AS object_uid FROM (
    SELECT * FROM workload_phase_history {hint_history} WHERE workload_id = :w
    ORDER BY at DESC, id DESC LIMIT :window) AS h
  UNION ALL
  SELECT e.created_at, 1, e.id, NULL, e.message, e.type, e.reason, e.source, e.count,
         e.object_kind, e.object_name, e.object_namespace, e.object_uid FROM (
    SELECT * FROM workload_events {hint_events} WHERE workload_id = :w
    ORDER BY created_at DESC, id DESC LIMIT :window) AS e
) AS both_sides ORDER BY at DESC, kind DESC, key DESC LIMIT :limit OFFSET :offset
"""
EVENTS_PAGE = """
SELECT {events} FROM workload_events {hint} WHERE workload_id = :w
ORDER BY created_at DESC, id DESC LIMIT :limit OFFSET :offset
"""
# The page's pods with their workloads' fields, in one statement.
PODS_PAGE = """
SELECT p.id, p.workload_id, p.cluster_id, p.name, p.node_name, p.nodepool, p.k8s_phase,
       p.revision_id, p.created_at, p.completed_at, p.deleted_at, p.updated_at,
       p.k8s_phase_updated_at, p.document, w.tenant_id, w.project_id, w.project_name, w.name
FROM workload_pods AS p {hint} JOIN workloads AS w ON w.id = p.workload_id
WHERE p.deleted_at IS NULL AND p.nodepool = 'gpu'
ORDER BY p.created_at DESC, p.id DESC LIMIT 501
"""
PODS_COUNT = (
    "SELECT count(*) FROM workload_pods {hint} WHERE deleted_at IS NULL AND nodepool = 'gpu'"
)


def _candidates(conn: Any, template: str, hints: dict[str, tuple[str, ...]]) -> list[Candidate]:
    """On SQLite, each index of ``hints`` forced by ``INDEXED BY``; on PostgreSQL, the plain
    statement as the planner takes it, without sorts, and without index scans."""
    plain = template.format(**dict.fromkeys(hints, ""), events=_EVENT_COLUMNS)
    if not is_sqlite(conn):
        return [
            Candidate("as the planner takes it", plain),
            Candidate("enable_sort=off", plain, "SET LOCAL enable_sort = off"),
            Candidate("enable_indexscan=off", plain, "SET LOCAL enable_indexscan = off"),
        ]
    found = [Candidate("as the planner takes it", plain)]
    for slot, indexes in hints.items():
        for index in indexes:
            forced = {s: (f"INDEXED BY {index}" if s == slot else "") for s in hints}
            sql = template.format(**forced, events=_EVENT_COLUMNS)
            found.append(Candidate(f"INDEXED BY {index}", sql))
    return found


def _cases(
    busy: str, pods: int
) -> list[tuple[str, str, dict, str, dict[str, tuple], dict, int | None, str]]:
    """(name, path, query, floor template, index hints, floor parameters, id column, the
    table the server's deciding statement reads)."""
    base = f"/api/v1/workloads/{busy}"
    history_hints = {
        "hint_history": ("ix_workload_phase_history_workload_id_at_phase",),
        "hint_events": ("ix_workload_events_workload_id_created_at_id",),
    }
    event_hints = {"hint": ("ix_workload_events_workload_id_created_at_id",)}
    pod_hints = {"hint": ("ix_workload_pods_created_at_id", "ix_workload_pods_nodepool_id")}
    pods_query = {
        "filterBy": "currentNodepool==gpu",
        "sortBy": "createdAt",
        "sortOrder": "desc",
        "limit": 500,
    }
    cases = []
    for offset in (0, 5000):
        window = offset + 51
        cases.append(
            (
                f"history, offset {offset}",
                f"{base}/history",
                {"limit": 50, "offset": offset},
                HISTORY,
                history_hints,
                {"w": busy, "window": window, "limit": 51, "offset": offset},
                2,
                "UNION ALL",
            )
        )
        cases.append(
            (
                f"events, offset {offset}",
                f"{base}/events",
                {"limit": 50, "offset": offset},
                EVENTS_PAGE,
                event_hints,
                {"w": busy, "limit": 51, "offset": offset},
                0,
                "FROM workload_events",
            )
        )
    cases.append(
        (
            f"pods of {pods:,}: nodepool==gpu, createdAt desc, 500",
            "/api/v1/workloads/pods",
            pods_query,
            PODS_PAGE,
            pod_hints,
            {},
            0,
            "LIMIT",
        )
    )
    cases.append(
        (
            "pods count, nodepool==gpu",
            "/api/v1/workloads/pods/count",
            {"filterBy": "currentNodepool==gpu"},
            PODS_COUNT,
            {"hint": ("ix_workload_pods_nodepool_id", "ix_workload_pods_deleted_at_id")},
            {},
            None,
            "count(",
        )
    )
    return cases  # fmt: skip


def bench_store(database_url: str, pods: int, repeats: int, label: str) -> None:
    busy = seed(database_url, pods)
    settings = Settings(
        database_url=database_url,
        admin_client_id=ADMIN_ID,
        admin_client_secret=ADMIN_SECRET,
        db_statement_timeout_seconds=600,
    )
    app = create_app(settings)
    comparisons = []
    with client_for(app) as client, raw_connection(database_url) as conn:
        capture = Capture(app.state.gpufleet.engine)
        for name, path, query, template, hints, parameters, id_column, marker in _cases(busy, pods):
            capture.take()
            response = client.get(path, params=query)
            assert response.status_code == 200, response.text
            server = [(s, p) for s, p in capture.take() if _reads_details(s)]
            # The statement that decides the answer goes last: the floor must answer the same.
            deciding = [(s, p) for s, p in server if marker in s][-1:]
            server = [item for item in server if item not in deciding] + deciding
            api = _time_api(client, path, query, repeats)
            comparisons.append(
                compare(
                    conn, name, api, server, _candidates(conn, template, hints), parameters,
                    repeats, id_column,
                )
            )  # fmt: skip
    print_comparisons(f"{label}: {pods:,} pods, {EVENTS:,} events of one workload", comparisons)


DETAIL_TABLES = ("workload_pods", "workload_events", "workload_phase_history")


def _reads_details(statement: str) -> bool:
    return any(table in statement for table in DETAIL_TABLES)


def _time_api(client, path: str, query: dict, repeats: int) -> list[float]:
    timings = []
    for _ in range(repeats + 1):
        started = time.perf_counter()
        client.get(path, params=query).content  # noqa: B018 - the whole body is read
        timings.append((time.perf_counter() - started) * 1000)
    return timings[1:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--pods", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--cache", type=Path, default=Path("/var/tmp/gpufleet-bench"))
    args = parser.parse_args(argv)
    for kind in args.databases.split(","):
        with stores(kind, args.cache) as store_for:
            bench_store(store_for(args.pods), args.pods, args.repeats, kind)
    print(f"(generated at {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, run {uuid.uuid4().hex[:6]})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
