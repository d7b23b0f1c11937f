"""The plans of usage questions, from EXPLAIN (never timings), on both databases.

Every filter a usage question may carry (cluster, node pool, project, department, by id or by
name, and the caller's scope) is a test of the rows of the window, never a second access path:
the statement reads the window's hours as one range of the rollups' primary key (hour first),
whatever else it groups or filters by. The ledger is seeded with 60 days of hours and
analysed, for PostgreSQL's planner to weigh a day's window as it does at scale.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from gpufleet.query.scope import WorkloadScope
from gpufleet.query.usage import (
    HOUR_MS,
    UsageBucket,
    UsageFilterField,
    UsageGroupBy,
    UsageQuery,
    UsageWindow,
)
from gpufleet.settings import Settings
from gpufleet.store.dialect import bulk_append
from gpufleet.store.engine import create_store_engine
from gpufleet.store.tables import clusters, departments, projects, usage_hourly
from gpufleet.store.usage import usage, usage_statement

DAYS = 60
ROWS_PER_HOUR = 40
START_MS = 1_760_000_000_000 - 1_760_000_000_000 % (24 * HOUR_MS)
CLUSTERS = {
    "3f1c2a6e-0d8b-4c1e-9a57-6b2f4e8d1c01": "east",
    "3f1c2a6e-0d8b-4c1e-9a57-6b2f4e8d1c02": "west",
}
NODEPOOLS = ["default", "a100", "h100"]
PROJECTS = [f"{n}" for n in range(12)]
FILTERS: dict[str, tuple[tuple[UsageFilterField, str], ...]] = {
    "none": (),
    "cluster": ((UsageFilterField.CLUSTER_ID, next(iter(CLUSTERS))),),
    "cluster name": ((UsageFilterField.CLUSTER_NAME, "west"),),
    "node pool": ((UsageFilterField.NODEPOOL, "a100"),),
    "pool of a cluster": (
        (UsageFilterField.CLUSTER_ID, next(iter(CLUSTERS))),
        (UsageFilterField.NODEPOOL, "h100"),
    ),
    "project": ((UsageFilterField.PROJECT_ID, "3"),),
    "project name": ((UsageFilterField.PROJECT_NAME, "project-3"),),
    "department name": ((UsageFilterField.DEPARTMENT_NAME, "department-1"),),
}
SHAPES: dict[str, dict[str, Any]] = {
    "total": {},
    "by project": {"group_by": (UsageGroupBy.PROJECT,)},
    "by cluster and pool": {"group_by": (UsageGroupBy.CLUSTER, UsageGroupBy.NODEPOOL)},
    "by hour": {"bucket": UsageBucket.HOUR},
}
COLUMNS = (
    "hour_ms", "workload_id", "nodepool", "cluster_id", "department_id", "project_id",
    "submitter", "type", "gpu_seconds", "cpu_core_seconds", "memory_gib_seconds",
    "pending_seconds", "gpu_utilisation", "idle_share",
)  # fmt: skip


def _rows(rng: random.Random) -> Iterator[tuple]:
    cluster_ids = list(CLUSTERS)
    for hour in range(DAYS * 24):
        for n in range(ROWS_PER_HOUR):
            project = rng.randrange(len(PROJECTS))
            yield (
                START_MS + hour * HOUR_MS, f"00000000-0000-4000-8000-{n:012d}",
                rng.choice(NODEPOOLS), cluster_ids[project % 2], str(project % 4), str(project),
                f"user-{rng.randrange(20)}", "Training", rng.uniform(0, 3600 * 8), 3600.0,
                3600.0, 0.0, rng.uniform(0, 100), rng.random(),
            )  # fmt: skip


@pytest.fixture(scope="module")
def ledger(module_database_url: str) -> Iterator[sa.Engine]:
    engine = create_store_engine(Settings(database_url=module_database_url))
    now = datetime.now(UTC)
    stamps = {"created_at": now, "updated_at": now}
    with engine.begin() as conn:
        conn.execute(
            clusters.insert(),
            [{"id": i, "name": name, "tenant_id": 1, **stamps} for i, name in CLUSTERS.items()],
        )
        cluster_ids = list(CLUSTERS)
        conn.execute(
            departments.insert(),
            [
                {
                    "id": str(n),
                    "name": f"department-{n}",
                    "cluster_id": cluster_ids[n % 2],
                    **stamps,
                }
                for n in range(4)
            ],
        )
        conn.execute(
            projects.insert(),
            [
                {
                    "id": p, "name": f"project-{p}", "cluster_id": cluster_ids[int(p) % 2],
                    "department_id": str(int(p) % 4), "namespace": f"runai-project-{p}", **stamps,
                }
                for p in PROJECTS
            ],
        )  # fmt: skip
        bulk_append(conn, usage_hourly, COLUMNS, _rows(random.Random(7)))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        # What PostgreSQL's autovacuum (and SQLite's optimize) would soon have done.
        conn.exec_driver_sql("VACUUM ANALYZE" if engine.dialect.name == "postgresql" else "ANALYZE")
    yield engine
    engine.dispose()


def _query(filters, scope: WorkloadScope | None = None, **shape: Any) -> UsageQuery:
    # A day in the middle of the history.
    start = START_MS + 30 * 24 * HOUR_MS
    return UsageQuery(
        window=UsageWindow(start, start + 24 * HOUR_MS),
        filters=filters,
        scope=scope or WorkloadScope(everything=True),
        **shape,
    )


def _plan(engine: sa.Engine, query: UsageQuery) -> list[str]:
    """EXPLAIN of the statement the server runs for ``query``, one line per plan node."""
    explain = "EXPLAIN QUERY PLAN" if engine.dialect.name == "sqlite" else "EXPLAIN (COSTS OFF)"
    with engine.connect() as conn:
        compiled = usage_statement(query).compile(
            dialect=engine.dialect, compile_kwargs={"literal_binds": True}
        )
        rows = conn.exec_driver_sql(f"{explain} {compiled}").all()
    return [str(row[-1]) for row in rows]


def _reads_the_window_by_its_range(plan: list[str], dialect: str) -> bool:
    if dialect == "sqlite":
        reads = [line for line in plan if "usage_hourly" in line]
        return bool(reads) and all(
            line.startswith("SEARCH usage_hourly USING PRIMARY KEY (hour_ms>? AND hour_ms<?)")
            for line in reads
        )
    # An index scan of the key, or a bitmap of it: either reads the window's range alone.
    scans = [line for line in plan if re.search(r"Scan .*on (pk_)?usage_hourly\b", line)]
    conditions = [line for line in plan if "Index Cond" in line]
    return (
        any("pk_usage_hourly" in line for line in scans)
        and not any("Seq Scan" in line for line in scans)
        and any("hour_ms >=" in line and "hour_ms <" in line for line in conditions)
    )


@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("filter_name", list(FILTERS))
def test_every_filter_reads_the_window_as_one_range_of_the_primary_key(ledger, filter_name, shape):
    plan = _plan(ledger, _query(FILTERS[filter_name], **SHAPES[shape]))
    assert _reads_the_window_by_its_range(plan, ledger.dialect.name), "\n".join(plan)


def test_a_callers_scope_keeps_the_range_too(ledger):
    scope = WorkloadScope(cluster_ids=frozenset({next(iter(CLUSTERS))}), project_ids=frozenset("3"))
    for filters in FILTERS.values():
        plan = _plan(ledger, _query(filters, scope, group_by=(UsageGroupBy.NODEPOOL,)))
        assert _reads_the_window_by_its_range(plan, ledger.dialect.name), "\n".join(plan)


def test_a_pool_filter_answers_that_pools_group(ledger):
    with ledger.connect() as conn:
        grouped = usage(conn, _query((), group_by=(UsageGroupBy.CLUSTER, UsageGroupBy.NODEPOOL)))
        for row in grouped:
            cluster, pool = (g.value for g in row.groups)
            filters = ((UsageFilterField.CLUSTER_ID, cluster), (UsageFilterField.NODEPOOL, pool))
            (alone,) = usage(conn, _query(filters))
            assert alone.figures.allocated_gpu_hours == pytest.approx(
                row.figures.allocated_gpu_hours
            )
