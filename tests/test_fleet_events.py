"""The plans of the fleet's event pages, from EXPLAIN (never timings), on both databases.

Whatever the filters and the caller's scope, a page of events newest first must walk an index
that yields that order (the events' time and id, or a named workload's own) and stop after the
page, testing the rest row by row, instead of gathering every match and sorting it. The store
is seeded large enough, and analysed, for PostgreSQL's planner to weigh the plans as it does at
scale; SQLite's choice does not depend on size. Where filters together leave a small share of
the events (a reason of a type of one project of one cluster), PostgreSQL rightly finds those
and sorts them; each filter alone, the dashboard's pairs and the scopes are guarded here.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from gpufleet.query.events import EventPage, build_event_page, build_event_selection
from gpufleet.query.scope import WorkloadScope
from gpufleet.settings import Settings
from gpufleet.store.engine import create_store_engine
from gpufleet.store.fleet_events import listing_statement
from gpufleet.store.tables import workload_events
from gpufleet.store.workloads import insert_workloads
from tests.support.factories import BASE_TIME, workload
from tests.test_workload_plans import _statement_plan

WORKLOADS = 600
EVENTS_PER_WORKLOAD = 10
# Copies of the events (with new ids): 126,000 events in all, seeded in SQL within seconds.
COPIES = 20
PROJECTS = [str(n) for n in range(12)]
CLUSTERS = [f"00000000-0000-4000-8000-00000000000{n}" for n in range(3)]
REASONS = ["Scheduled", "Pulled", "Started", "BackOff", "FailedScheduling", "Preempted"]
TIME_INDEX = "ix_workload_events_created_at_id"
WORKLOAD_INDEX = "ix_workload_events_workload_id_created_at_id"


def _workloads(rng: random.Random) -> list[dict[str, Any]]:
    items = []
    for n in range(WORKLOADS):
        project = rng.randrange(len(PROJECTS))
        items.append(
            workload(
                name=f"job-{n}",
                projectId=PROJECTS[project],
                projectName=f"project-{project}",
                departmentId=str(project % 4),
                clusterId=CLUSTERS[project % len(CLUSTERS)],
            )
        )
    return items


def _events(rng: random.Random, item: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for _ in range(EVENTS_PER_WORKLOAD):
        reason = rng.choice(REASONS)
        rows.append(
            {
                "id": str(uuid.UUID(int=rng.getrandbits(128))),
                "workload_id": item["id"],
                "cluster_id": item["clusterId"],
                "created_at": BASE_TIME + timedelta(seconds=rng.randrange(14 * 86_400)),
                "type": "Warning" if reason in ("BackOff", "FailedScheduling") else "Normal",
                "reason": reason,
                "message": f"{reason} of {item['name']}",
                "source": "kubelet",
                "count": 1,
                "object_kind": "Pod",
                "object_name": f"{item['name']}-0",
                "object_namespace": "runai-test",
                "object_uid": str(uuid.uuid4()),
            }
        )
    return rows


def _copy_events(conn: sa.Connection, copy: int) -> None:
    """Every original event again under a new id (its first 30 characters and the copy's
    number), in a namespace of the copies."""
    events = workload_events.c
    columns = [c.name for c in workload_events.c]
    changed = {
        "id": sa.func.substr(events.id, 1, 30) + f"{copy:06d}",
        "object_namespace": sa.literal("runai-copy"),
    }
    originals = sa.select(*(changed.get(name, events[name]) for name in columns)).where(
        events.object_namespace == "runai-test"
    )
    conn.execute(workload_events.insert().from_select(columns, originals))


@pytest.fixture(scope="module")
def store(module_database_url: str) -> Iterator[sa.Engine]:
    engine = create_store_engine(Settings(database_url=module_database_url))
    rng = random.Random(11)
    items = _workloads(rng)
    with engine.begin() as conn:
        insert_workloads(conn, items)
        conn.execute(workload_events.insert(), [e for i in items for e in _events(rng, i)])
        for copy in range(COPIES):
            _copy_events(conn, copy)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        # What PostgreSQL's autovacuum (and SQLite's optimize) would soon have done.
        vacuum = "VACUUM ANALYZE" if engine.dialect.name == "postgresql" else "ANALYZE"
        conn.exec_driver_sql(vacuum)
    yield engine
    engine.dispose()


SELECTIONS: dict[str, dict[str, Any]] = {
    "everything": {},
    "warnings": {"types": ["Warning"]},
    "cluster": {"cluster_id": CLUSTERS[1]},
    "project": {"project_id": PROJECTS[4]},
    "reason": {"reason": "BackOff"},
    "window": {
        "since": (BASE_TIME + timedelta(days=2)).isoformat(),
        "until": (BASE_TIME + timedelta(days=9)).isoformat(),
    },
    "since": {"since": (BASE_TIME + timedelta(days=1)).isoformat()},
    # What the dashboard's filters combine: a type with a cluster or a project.
    "warnings of a cluster": {"types": ["Warning"], "cluster_id": CLUSTERS[2]},
    "warnings of a project": {"types": ["Warning"], "project_id": PROJECTS[5]},
    "project scope": {"scope": WorkloadScope(project_ids=frozenset(PROJECTS[3:5]))},
    "mixed scope": {
        "scope": WorkloadScope(
            cluster_ids=frozenset({CLUSTERS[0]}),
            department_ids=frozenset({"1"}),
            project_ids=frozenset(PROJECTS[7:9]),
        )
    },
}


def _page(offset: int = 0, **selection: Any) -> EventPage:
    return build_event_page(build_event_selection(**selection), offset=offset, limit=50)


def _plan(engine: sa.Engine, page: EventPage) -> list[str]:
    return _statement_plan(engine, listing_statement(engine.dialect.name, page))


def _walks(plan: list[str], dialect: str, index: str) -> bool:
    """Whether the plan reads the events along ``index`` and sorts nothing."""
    if dialect == "sqlite":
        walks = [line for line in plan if " workload_events " in f"{line} "]
        return (
            len(walks) == 1
            and walks[0].startswith(("SCAN workload_events", "SEARCH workload_events"))
            and index in walks[0]
            and not any("TEMP B-TREE" in line for line in plan)
        )
    scans = [line for line in plan if "workload_events" in line and "Scan" in line]
    return (
        plan[0].strip().startswith("Limit")
        and len(scans) == 1
        and "Index" in scans[0]
        and index in scans[0]
        and not any("Sort" in line for line in plan)
    )


@pytest.mark.parametrize("name", list(SELECTIONS))
def test_a_page_walks_the_time_index_and_stops_after_it(store, name):
    for offset in (0, 500):
        plan = _plan(store, _page(offset, **SELECTIONS[name]))
        assert _walks(plan, store.dialect.name, TIME_INDEX), (name, offset, plan)


def test_a_workloads_page_walks_its_own_events(store):
    with store.connect() as conn:
        workload_id = conn.execute(sa.select(workload_events.c.workload_id).limit(1)).scalar_one()
    for selection in ({}, {"scope": SELECTIONS["project scope"]["scope"], "types": ["Normal"]}):
        plan = _plan(store, _page(workload_id=workload_id, **selection))
        assert _walks(plan, store.dialect.name, WORKLOAD_INDEX), plan


def test_the_page_is_the_newest_events_of_the_selection(store):
    """What the plans compute: the selection's newest events, the id breaking ties."""
    from gpufleet.store.fleet_events import count_fleet_events, list_fleet_events

    selection = build_event_selection(project_id=PROJECTS[4], types=["Warning"])
    page = build_event_page(selection, offset=0, limit=50)
    with store.connect() as conn:
        listed, next_offset = list_fleet_events(conn, page)
        total = count_fleet_events(conn, selection)
    assert next_offset == 50 and len(listed) == 50 and total > 50
    assert {(e["projectId"], e["type"]) for e in listed} == {(PROJECTS[4], "Warning")}
    keys = [(e["createdAt"], e["id"]) for e in listed]
    assert keys == sorted(keys, reverse=True)
