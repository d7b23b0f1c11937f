"""Idle GPUs derived from utilisation samples, and retention of old samples."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from gpufleet.core.times import to_ms
from gpufleet.metrics.backend import IdleRule
from gpufleet.metrics.embedded import EmbeddedMetricsBackend
from gpufleet.metrics.tasks import enforce_retention, refresh_idle_gpus
from gpufleet.store.metric_samples import count_samples, write_samples
from gpufleet.store.metric_targets import running_gpu_targets
from tests.support.factories import insert, workload

NOW = datetime.now(UTC).replace(microsecond=0)
RULE = IdleRule(threshold_percent=1.0, window_seconds=300)


def _utilisation(workload_id: str, series: str, values_by_minutes_ago: dict[int, float]):
    return [
        {
            "workload_id": workload_id,
            "metric_type": "GPU_UTILIZATION",
            "series": series,
            "ts_ms": to_ms(NOW - timedelta(minutes=ago)),
            "value": value,
        }
        for ago, value in values_by_minutes_ago.items()
    ]


def _steady(value: float, minutes: int = 10) -> dict[int, float]:
    return dict.fromkeys(range(minutes + 1), value)


@pytest.fixture
def fleet(engine) -> dict[str, str]:
    """Workloads in every situation the rule distinguishes, with their utilisation."""
    names = {
        "half_idle": workload(gpus=2.0),
        "fraction": workload(gpus=0.5),
        "busy": workload(gpus=1.0, idleGpus=4, idleAllocatedGpus=4.0),
        "just_started": workload(gpus=1.0),
        "recently_busy": workload(gpus=1.0),
        "silent": workload(gpus=1.0, idleGpus=3, idleAllocatedGpus=3.0),
        "total_only": workload(gpus=2.0),
        "at_threshold": workload(gpus=1.0),
        "pending": workload(gpus=1.0, phase="Pending", allocatedResources={"gpu": 0.0}),
        "stale": workload(gpus=1.0),
    }
    insert(engine, names.values())
    ids = {name: item["id"] for name, item in names.items()}
    rows = [
        *_utilisation(ids["half_idle"], "gpu=0", _steady(0.0)),
        *_utilisation(ids["half_idle"], "gpu=1", _steady(75.0)),
        *_utilisation(ids["fraction"], "gpu=0", _steady(0.5)),
        *_utilisation(ids["busy"], "gpu=0", _steady(40.0)),
        *_utilisation(ids["just_started"], "gpu=0", _steady(0.0, minutes=2)),
        *_utilisation(ids["recently_busy"], "gpu=0", {**_steady(0.0), 3: 55.0}),
        *_utilisation(ids["total_only"], "", _steady(0.0)),
        *_utilisation(ids["at_threshold"], "gpu=0", _steady(1.0)),
        *_utilisation(ids["pending"], "gpu=0", _steady(0.0)),
        *_utilisation(ids["stale"], "gpu=0", dict.fromkeys(range(6, 12), 0.0)),
    ]
    with engine.begin() as conn:
        write_samples(conn, rows)
    return ids


def _idle(client, workload_id: str) -> tuple[int | None, float | None]:
    body = client.get(f"/api/v1/workloads/{workload_id}").json()
    return body.get("idleGpus"), body.get("idleAllocatedGpus")


def test_idle_gpus_follow_the_rule(client, engine, fleet):
    changed = refresh_idle_gpus(engine, EmbeddedMetricsBackend(engine), RULE, NOW)
    assert changed >= 4
    expected = {
        "half_idle": (1, 1.0),
        "fraction": (1, 0.5),
        "busy": (0, 0.0),
        "just_started": (0, 0.0),  # has not been reporting for the whole window yet
        "recently_busy": (0, 0.0),
        "silent": (3, 3.0),  # no samples: keeps what its producer reported
        "total_only": (2, 2.0),
        "at_threshold": (1, 1.0),
        "pending": (0, 0.0),  # not Running: left alone (the factory's 0)
        "stale": (0, 0.0),  # nothing within the window
    }
    assert {name: _idle(client, wid) for name, wid in fleet.items()} == expected


def test_a_second_run_changes_nothing(engine, fleet):
    backend = EmbeddedMetricsBackend(engine)
    refresh_idle_gpus(engine, backend, RULE, NOW)
    assert refresh_idle_gpus(engine, backend, RULE, NOW) == 0


def test_threshold_and_window_are_settings(client, engine, fleet):
    backend = EmbeddedMetricsBackend(engine)
    refresh_idle_gpus(engine, backend, IdleRule(threshold_percent=0.0, window_seconds=60), NOW)
    assert _idle(client, fleet["fraction"]) == (0, 0.0)  # 0.5% is above a 0% threshold
    assert _idle(client, fleet["just_started"]) == (1, 1.0)  # two minutes cover one
    assert _idle(client, fleet["recently_busy"]) == (1, 1.0)  # busy 3 minutes ago


def test_filter_and_sort_on_idle_gpus(client, engine, fleet):
    refresh_idle_gpus(engine, EmbeddedMetricsBackend(engine), RULE, NOW)
    listed = client.get(
        "/api/v1/workloads",
        params={
            "filterBy": "idleAllocatedGpus>=1",
            "sortBy": "idleAllocatedGpus",
            "sortOrder": "desc",
        },
    ).json()["workloads"]
    by_id = {wid: name for name, wid in fleet.items()}
    assert [by_id[w["id"]] for w in listed][:2] == ["silent", "total_only"]
    assert {by_id[w["id"]] for w in listed} == {"silent", "total_only", "half_idle", "at_threshold"}
    count = client.get("/api/v1/workloads/count", params={"filterBy": "idleGpus>=1"}).json()
    assert count["count"] == 5


def test_retention_deletes_only_old_samples(engine, fleet):
    old = [
        {
            "workload_id": fleet["busy"],
            "metric_type": "POD_COUNT",
            "series": "",
            "ts_ms": to_ms(NOW - timedelta(days=d)),
            "value": 1.0,
        }
        for d in (15, 20, 30)
    ]
    with engine.begin() as conn:
        write_samples(conn, old)
        before = count_samples(conn)
    assert enforce_retention(engine, 14, NOW) == 3
    with engine.connect() as conn:
        assert count_samples(conn) == before - 3
    assert enforce_retention(engine, 14, NOW) == 0
    assert enforce_retention(engine, 1, NOW + timedelta(days=2)) == before - 3


def test_running_targets_are_read_a_page_at_a_time(engine, fleet):
    # The idle-GPU task holds one page of targets at a time, however many workloads run.
    with engine.connect() as conn:
        everything = running_gpu_targets(conn, limit=100)
        pages, after = [], ""
        while page := running_gpu_targets(conn, after, limit=4):
            pages.append(page)
            after = page[-1].id
    assert [len(page) for page in pages] == [4, 4, 1]
    assert [target for page in pages for target in page] == everything
    assert {target.id for target in everything} == set(fleet.values()) - {fleet["pending"]}


def test_each_page_of_targets_continues_the_phase_index_walk(engine, fleet):
    # A page sorted anew would sort every running workload once per page (at a million
    # workloads the task took minutes); the phase index already holds them in id order.
    statements = []

    def capture(_conn, _cursor, statement, parameters, _context, _many):
        if statement.lstrip().startswith("SELECT") and "FROM workloads" in statement:
            statements.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", capture)
    try:
        with engine.connect() as conn:
            first = running_gpu_targets(conn, limit=2)
            running_gpu_targets(conn, first[-1].id, limit=2)
    finally:
        sa.event.remove(engine, "before_cursor_execute", capture)
    statement, parameters = statements[-1]
    explain = "EXPLAIN QUERY PLAN" if engine.dialect.name == "sqlite" else "EXPLAIN (COSTS OFF)"
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql("SET enable_seqscan = off")
        plan = "\n".join(
            str(row[-1]) for row in conn.exec_driver_sql(f"{explain} {statement}", parameters)
        )
    assert "TEMP B-TREE" not in plan and "Sort" not in plan, plan
