"""The plans of sorted workload pages, from EXPLAIN (never timings), on both databases.

For every sort with an index of its own and each common filter (phase, project, department,
cluster, type, node pool, deleted, the caller's scope), the listing statement must walk the
sort's index and stop after the page, testing the filter row by row, instead of gathering
every match and sorting it. The store is seeded large enough, and analysed, for PostgreSQL's
planner to weigh the plans as it does at scale; SQLite's choice does not depend on size.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from gpufleet.core.workload_fields import QUERY_FIELDS, TIMED_FIELDS, WorkloadField
from gpufleet.query.cursors import Keyset
from gpufleet.query.listing import WorkloadPage, build_page, build_selection
from gpufleet.query.scope import WorkloadScope
from gpufleet.schemas.enums import Phase
from gpufleet.settings import Settings
from gpufleet.store.engine import create_store_engine
from gpufleet.store.tables import (
    anchor_index,
    before_index,
    sort_index,
    workload_nodepools,
    workloads,
)
from gpufleet.store.telemetry import (
    TelemetryGroupBy,
    TelemetryQuery,
    TelemetryType,
    telemetry_statement,
)
from gpufleet.store.workload_documents import SecondsBefore
from gpufleet.store.workloads import count_statement, insert_workloads, listing_statement
from tests.support.factories import BASE_TIME, workload

ORIGINALS = 400
# Copies of the originals (with new ids): 30,000 workloads in all, seeded in SQL within seconds.
COPIES = 74
PROJECTS = [f"project-{n}" for n in range(12)]
DEPARTMENTS = [f"department-{n}" for n in range(4)]
CLUSTERS = [f"00000000-0000-4000-8000-00000000000{n}" for n in range(3)]
TYPES = ["Training", "Workspace", "Inference", "Distributed"]
NODEPOOLS = ["default", "a100", "h100"]
FILTERS: dict[str, dict[str, Any]] = {
    "phase": {"filter_by": ["phase==Running"]},
    "project": {"filter_by": [f"projectName=={PROJECTS[3]}"]},
    "department": {"filter_by": [f"departmentName=={DEPARTMENTS[1]}"]},
    "cluster": {"filter_by": [f"clusterId=={CLUSTERS[2]}"]},
    "type": {"filter_by": ["type==Workspace"]},
    "nodepool": {"filter_by": ["nodepool==a100"]},
    "deleted": {"deleted": True},
    "scope": {
        "scope": WorkloadScope(
            cluster_ids=frozenset({CLUSTERS[0]}), project_ids=frozenset(PROJECTS[5:7])
        )
    },
}


def _original(rng: random.Random, n: int) -> dict[str, Any]:
    created = BASE_TIME + timedelta(minutes=rng.randrange(500_000))
    deleted = created + timedelta(hours=1) if rng.random() < 0.05 else None
    project = rng.randrange(len(PROJECTS))
    return workload(
        name=f"job-{rng.randrange(10**6):06d}-{n}",
        phase=rng.choice(list(Phase)).value,
        projectName=PROJECTS[project],
        projectId=str(project),
        departmentName=DEPARTMENTS[project % len(DEPARTMENTS)],
        departmentId=str(project % len(DEPARTMENTS)),
        clusterId=CLUSTERS[project % len(CLUSTERS)],
        type=rng.choice(TYPES),
        currentNodePools=[rng.choice(NODEPOOLS)],
        createdAt=created,
        phaseUpdatedAt=created + timedelta(minutes=rng.randrange(600)),
        updatedAt=created,
        deletedAt=deleted,
        gpus=float(rng.randrange(9)),
        priority=rng.choice([None, 50, 75, 100]),
        submittedBy=rng.choice([None, "alice", "bob", "carol"]),
        idleGpus=rng.randrange(3),
        idleAllocatedGpus=rng.random(),
        completedAt=created + timedelta(hours=2) if rng.random() < 0.5 else None,
    )


def _copy(conn: sa.Connection, originals: list[dict[str, Any]], copy: int) -> None:
    """Each original again under a new id (its first 30 characters and the copy's number)."""
    suffix = f"{copy:06d}"

    def renamed(workload_id: str) -> str:
        return workload_id[:30] + suffix

    conn.execute(
        workloads.insert(),
        [{**row, "id": renamed(row["id"]), "id_key": renamed(row["id"])} for row in originals],
    )
    pools = workload_nodepools.c
    conn.execute(
        workload_nodepools.insert().from_select(
            ["workload_id", "nodepool"],
            sa.select(sa.func.substr(pools.workload_id, 1, 30) + suffix, pools.nodepool).where(
                pools.workload_id.in_([row["id"] for row in originals])
            ),
        )
    )


@pytest.fixture(scope="module")
def store(module_database_url: str) -> Iterator[sa.Engine]:
    engine = create_store_engine(Settings(database_url=module_database_url))
    rng = random.Random(18)
    items = [_original(rng, n) for n in range(ORIGINALS)]
    # Time pending spread over a day and running under an hour before the current phase, so
    # both bounds of TOTAL_BOUNDS are selective on the stored part: a bound that most rows
    # meet is rightly read by a scan of the table (PostgreSQL's planner then takes one).
    before = {
        item["id"]: SecondsBefore(pending=rng.randrange(86_400), running=rng.randrange(3_600))
        for item in items
    }
    with engine.begin() as conn:
        insert_workloads(conn, items, before)
        stored = [c for c in workloads.c if c.computed is None]
        originals = [dict(row) for row in conn.execute(sa.select(*stored)).mappings()]
        for copy in range(COPIES):
            _copy(conn, originals, copy)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        # What PostgreSQL's autovacuum (and SQLite's optimize) would soon have done.
        vacuum = "VACUUM ANALYZE" if engine.dialect.name == "postgresql" else "ANALYZE"
        conn.exec_driver_sql(vacuum)
    yield engine
    engine.dispose()


def _page(
    sort: WorkloadField, descending: bool, now: datetime | None = None, **selection: Any
) -> WorkloadPage:
    built = build_selection(
        now=now or datetime.now(UTC),
        filter_by=selection.get("filter_by"),
        search=None,
        deleted=selection.get("deleted"),
        scope=selection.get("scope", WorkloadScope(everything=True)),
    )
    order = "desc" if descending else "asc"
    return build_page(built, sort_by=sort.name, sort_order=order, offset=0, limit=50)


def _plan(engine: sa.Engine, page: WorkloadPage) -> list[str]:
    """EXPLAIN of the statement the server runs for ``page``, one line per plan node."""
    return _statement_plan(engine, listing_statement(engine.dialect.name, page))


def _statement_plan(engine: sa.Engine, statement: sa.Select) -> list[str]:
    """EXPLAIN of ``statement`` as the driver receives it, one line per plan node."""
    explain = "EXPLAIN QUERY PLAN" if engine.dialect.name == "sqlite" else "EXPLAIN (COSTS OFF)"
    with engine.connect() as conn:
        captured: list[tuple[str, Any]] = []

        def capture(_conn, _cursor, sql, parameters, _context, _many) -> None:
            captured.append((sql, parameters))

        sa.event.listen(engine, "before_cursor_execute", capture)
        try:
            conn.execute(statement).all()
        finally:
            sa.event.remove(engine, "before_cursor_execute", capture)
        sql, parameters = captured[-1]
        rows = conn.exec_driver_sql(f"{explain} {sql}", parameters).all()
    return [row[-1] for row in rows]


def _walks(plan: list[str], dialect: str, field: WorkloadField) -> bool:
    index = f"ix_workloads_{field.column}_id"
    if dialect == "sqlite":
        walks = [
            line
            for line in plan
            # Rows joined back by their key are not a walk.
            if line.startswith(("SCAN workloads", "SEARCH workloads")) and "(rowid=?)" not in line
        ]
        # A field that may be missing merges two walks of its index (with a value, without):
        # the merge and the page's rows are sorted, nothing else.
        merged = any(line == "UNION ALL" for line in plan)
        sorts = sum("TEMP B-TREE" in line for line in plan)
        return bool(walks) and all(index in line for line in walks) and sorts == 2 * merged
    first = plan[0].strip()
    scans = [line for line in plan if "Index Scan" in line]
    return (
        first.startswith("Limit")
        and bool(scans)
        and index in scans[0]
        and not any("Sort" in line for line in plan)
    )


def _guarded_sorts() -> list[WorkloadField]:
    """Every sort with an index of its own."""
    return [f for f in QUERY_FIELDS if f.sort_indexed and f.name != "deletedAt"]


@pytest.mark.parametrize("filter_name", list(FILTERS))
def test_sorted_pages_walk_the_sorts_index_and_stop_after_the_page(store, filter_name):
    dialect = store.dialect.name
    failures = []
    for field in _guarded_sorts():
        if filter_name == "phase" and field.name == "phase":
            continue
        for descending in (False, True):
            plan = _plan(store, _page(field, descending, **FILTERS[filter_name]))
            if not _walks(plan, dialect, field):
                failures.append(f"{field.name} {'desc' if descending else 'asc'}: {plan}")
    assert failures == []


@pytest.mark.parametrize("sort_name", ["createdAt", "name", "allocatedGPU", "phaseUpdatedAt"])
@pytest.mark.parametrize("descending", [False, True])
def test_a_cursor_page_seeks_past_its_row_through_the_sorts_index(store, sort_name, descending):
    field = next(f for f in QUERY_FIELDS if f.name == sort_name)
    column = workloads.c[field.column]
    order = [column.desc(), workloads.c.id.desc()] if descending else [column, workloads.c.id]
    with store.connect() as conn:
        # The last row of a second page: what a client walking by cursor sends.
        value, row_id = conn.execute(
            sa.select(column, workloads.c.id).order_by(*order).offset(99).limit(1)
        ).one()
    page = _page(field, descending, **FILTERS["phase"])
    plan = _plan(store, replace(page, after=Keyset(value, row_id)))
    assert _walks(plan, store.dialect.name, field), plan
    if store.dialect.name == "sqlite":
        assert plan[0].startswith("SEARCH"), plan
    else:
        assert any("Index Cond" in line for line in plan), plan


def _timed_walks(plan: list[str], dialect: str, field: WorkloadField, filter_name: str) -> bool:
    """Whether a page sorted by a total merges the walks of its two partial indexes (and the
    few phases that began after now, found by their time), each stopping after the page."""
    anchor, before = anchor_index(field), before_index(field)
    if dialect == "sqlite":
        walks = [
            line.replace("COVERING INDEX", "INDEX")
            for line in plan
            if line.startswith(("SCAN workloads", "SEARCH workloads"))
        ]
        expected = [
            f"SCAN workloads USING INDEX {anchor}",
            f"SCAN workloads USING INDEX {before}",
            f"SEARCH workloads USING INDEX {sort_index('phase_updated_at')} (phase_updated_at>?)",
            "SEARCH workloads USING INTEGER PRIMARY KEY (rowid=?)",
        ]
        if filter_name == "phase":
            # phase==Running leaves out the walk of the other phases (or, for the pending
            # total, both walks of its own phase).
            keep = (
                (anchor, "phase_updated_at", "(rowid=?)")
                if "running" in anchor
                else (before, "(rowid=?)")
            )
            expected = [line for line in expected if any(k in line for k in keep)]
        # Sorted in temporary trees: the few late phases, the merge, the page's rows.
        sorts = sum("TEMP B-TREE" in line for line in plan)
        return walks == expected and sorts <= 3
    if any("Seq Scan" in line for line in plan):
        return False
    walked = re.search(f"Index (Only )?Scan (Backward )?using {before} ", "\n".join(plan))
    return bool(walked) or (filter_name == "phase" and "running" in anchor)


@pytest.mark.parametrize("filter_name", list(FILTERS))
def test_pages_sorted_by_a_total_merge_walks_of_the_totals_indexes(store, filter_name):
    dialect = store.dialect.name
    failures = []
    for field in TIMED_FIELDS:
        for descending in (False, True):
            plan = _plan(store, _page(field, descending, **FILTERS[filter_name]))
            if not _timed_walks(plan, dialect, field, filter_name):
                failures.append(f"{field.name} {'desc' if descending else 'asc'}: {plan}")
    assert failures == []


def _expected_totals(store: sa.Engine, field: WorkloadField, now: datetime) -> dict[str, int]:
    """Each live workload's total at ``now``, computed here from its stored columns."""
    columns = workloads.c
    with store.connect() as conn:
        rows = conn.execute(
            sa.select(
                columns.id, columns.phase, columns.phase_updated_at, columns[field.column]
            ).where(columns.deleted_at.is_(None))
        ).all()
    totals = {}
    for row_id, phase, began, before in rows:
        stretch = int(now.timestamp()) - int(began.timestamp())
        totals[row_id] = before + (stretch if phase == field.timed_phase and stretch > 0 else 0)
    return totals


@pytest.mark.parametrize("field", TIMED_FIELDS, ids=lambda f: f.name)
def test_merged_walks_page_exactly_as_sorting_every_total(store, field):
    # Half the phases began after this moment: those count nothing yet.
    now = BASE_TIME + timedelta(minutes=250_000, seconds=0.5)
    totals = _expected_totals(store, field, now)
    for descending in (False, True):
        ordered = sorted(totals, key=lambda i: (totals[i], i), reverse=descending)
        for offset in (0, 50, 3000):
            page = replace(_page(field, descending, now), offset=offset)
            with store.connect() as conn:
                listed = conn.execute(listing_statement(store.dialect.name, page)).mappings().all()
            assert [row["id"] for row in listed] == ordered[offset : offset + 51]
            total = "total_running" if field.timed_phase == "Running" else "total_pending"
            assert [row[total] for row in listed] == [
                totals[i] for i in ordered[offset : offset + 51]
            ]


@pytest.mark.parametrize("sort_name", ["createdAt", "name", "priority"])
def test_a_deep_offset_skips_along_the_sort_index_alone(store, sort_name):
    # The skipped rows are tested live or deleted on the index entry (deleted_at is its last
    # column), never looked up in the table: the walk reads index pages only.
    field = next(f for f in QUERY_FIELDS if f.name == sort_name)
    plan = _plan(store, replace(_page(field, True), offset=3000))
    assert _keys_from_the_index_alone(plan, store.dialect.name, field, backward=True), plan
    assert _rows_looked_up_by_key(plan, store.dialect.name), plan


def _keys_from_the_index_alone(
    plan: list[str], dialect: str, field: WorkloadField, *, backward: bool = False
) -> bool:
    """The page's keys are read from the sort's index alone (a covering, index-only scan)."""
    index = sort_index(field.column)
    if dialect == "sqlite":
        walks = [line for line in plan if index in line]
        return bool(walks) and all("COVERING INDEX" in line for line in walks)
    scan = "Index Only Scan Backward" if backward else "Index Only Scan"
    return f"{scan} using {index}" in "\n".join(plan)


@pytest.mark.parametrize("pattern", ["name=@-1", "name=^job-0", "name=$7", "name=@-"])
def test_a_pattern_on_the_sorts_column_is_tested_on_its_index_entries(store, pattern):
    # The page's keys are found along the sort's index, the pattern tested on the index entries
    # alone (a covering, index-only scan), and the page's rows read after.
    field = next(f for f in QUERY_FIELDS if f.name == "name")
    # A page of the largest size, as a script walking every match asks for.
    plan = _plan(store, replace(_page(field, False, filter_by=[pattern]), limit=500))
    assert _keys_from_the_index_alone(plan, store.dialect.name, field), plan
    # Nor is the table scanned whole (PostgreSQL's Seq Scan, SQLite's bare SCAN).
    assert not any("Seq Scan" in line or line.strip() == "SCAN workloads" for line in plan), plan
    assert _rows_looked_up_by_key(plan, store.dialect.name), plan


def _rows_looked_up_by_key(plan: list[str], dialect: str) -> bool:
    """A deferred page reads its rows one lookup per key (SQLite's rowid, PostgreSQL's id key
    index), whatever the table's size: never a hash of the whole table."""
    text = "\n".join(plan)
    if dialect == "sqlite":
        return "USING INTEGER PRIMARY KEY (rowid=?)" in text
    return "Hash" not in text and "ix_workloads_id_key" in text


TOTAL_BOUNDS = ("totalRunningTimeSeconds>=3600", "totalPendingTimeSeconds<=600")
BY_PHASE = (TelemetryGroupBy.PHASE,)


def _selection(filter_by: list[str], now: datetime | None = None):
    return build_selection(
        now=now or datetime.now(UTC),
        filter_by=filter_by,
        search=None,
        deleted=None,
        scope=WorkloadScope(everything=True),
    )


def _reads_each_part_through_its_index(plan: list[str], dialect: str, field: WorkloadField):
    """Whether the three ranges of a bound on ``field``'s total are read through their
    indexes: the anchor's, the stored seconds', the late phases' by the time they began."""
    indexes = (anchor_index(field), before_index(field), sort_index("phase_updated_at"))
    if dialect == "sqlite":
        reads = [line for line in plan if line.startswith(("SCAN workloads", "SEARCH workloads"))]
        searched = [line.split(" USING ")[-1] for line in reads]
        return (
            len(reads) >= 3
            and all(any(f"INDEX {index} (" in line for line in searched) for index in indexes)
            and not any(line.startswith("SCAN workloads") for line in reads)
        )
    text = "\n".join(plan)
    return "Seq Scan" not in text and all(
        f"using {index} " in text or f"Bitmap Index Scan on {index}" in text for index in indexes
    )


@pytest.mark.parametrize("bound", TOTAL_BOUNDS)
def test_counts_bounded_by_a_total_read_its_ranges_through_their_indexes(store, bound):
    field = next(f for f in TIMED_FIELDS if bound.startswith(f.name))
    plan = _statement_plan(store, count_statement(store.dialect.name, _selection([bound])))
    assert _reads_each_part_through_its_index(plan, store.dialect.name, field), "\n".join(plan)


@pytest.mark.parametrize("bound", TOTAL_BOUNDS)
def test_telemetry_bounded_by_a_total_reads_its_ranges_through_their_indexes(store, bound):
    field = next(f for f in TIMED_FIELDS if bound.startswith(f.name))
    query = TelemetryQuery(TelemetryType.WORKLOADS_COUNT, _selection([bound]), BY_PHASE)
    plan = _statement_plan(store, telemetry_statement(store.dialect.name, query))
    assert _reads_each_part_through_its_index(plan, store.dialect.name, field), "\n".join(plan)


@pytest.mark.parametrize("field", TIMED_FIELDS, ids=lambda f: f.name)
def test_counts_and_telemetry_bounded_by_a_total_match_every_total(store, field):
    # Half the phases began after this moment: those count only their stored seconds.
    now = BASE_TIME + timedelta(minutes=250_000, seconds=0.5)
    totals = _expected_totals(store, field, now)
    phases = _live_phases(store)
    values = sorted(set(totals.values()))
    for value in (values[len(values) // 3], values[len(values) // 2], 0):
        for operator, holds in (
            (">=", lambda t, v=value: t >= v),
            ("<=", lambda t, v=value: t <= v),
            ("==", lambda t, v=value: t == v),
        ):
            selection = _selection([f"{field.name}{operator}{value}"], now)
            matching = [i for i, total in totals.items() if holds(total)]
            query = TelemetryQuery(
                TelemetryType.WORKLOADS_COUNT, selection, (TelemetryGroupBy.PHASE,)
            )
            with store.connect() as conn:
                counted = conn.execute(count_statement(store.dialect.name, selection)).scalar()
                grouped = dict(conn.execute(telemetry_statement(store.dialect.name, query)).all())
            assert counted == len(matching), (operator, value)
            expected: dict[str, int] = {}
            for i in matching:
                expected[phases[i]] = expected.get(phases[i], 0) + 1
            assert grouped == expected, (operator, value)


def _live_phases(store: sa.Engine) -> dict[str, str]:
    with store.connect() as conn:
        rows = conn.execute(
            sa.select(workloads.c.id, workloads.c.phase).where(workloads.c.deleted_at.is_(None))
        ).all()
    return dict(rows)


def test_every_index_of_the_workloads_serves_a_plan(store):
    # An index no statement walks is bytes on disk and work on every write for nothing: each
    # secondary index of the workloads and their node pools must appear in some plan of the
    # listings (every sort, deleted ones, a deep page), counts with the common filters and
    # telemetry grouped by node pool.
    dialect = store.dialect.name
    created_at = next(f for f in QUERY_FIELDS if f.name == "createdAt")
    plans: list[str] = []
    for field in QUERY_FIELDS:
        for descending in (False, True):
            deleted = field.name == "deletedAt"
            plans += _plan(store, _page(field, descending, deleted=deleted))
    plans += _plan(store, replace(_page(created_at, True), offset=3000))
    for options in FILTERS.values():
        selection = _page(created_at, False, **options).selection
        plans += _statement_plan(store, count_statement(dialect, selection))
    by_pool = TelemetryQuery(
        TelemetryType.WORKLOADS_COUNT, _selection([]), (TelemetryGroupBy.CURRENT_NODEPOOLS,)
    )
    plans += _statement_plan(store, telemetry_statement(dialect, by_pool))
    used = set(re.findall(r"\bix_\w+", "\n".join(plans)))
    # The indexes the database has (PostgreSQL keeps one SQLite does not: the id's key).
    inspector = sa.inspect(store)
    indexes = {
        index["name"]
        for table in (workloads, workload_nodepools)
        for index in inspector.get_indexes(table.name)
    }
    assert indexes - used == set(), plans
