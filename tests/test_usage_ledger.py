"""The usage ledger against hand-computed figures: every scenario's GPU-, CPU-, memory- and
pending-seconds are worked out by hand and must equal the API's answer to the second."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from gpufleet.core.times import format_rfc3339
from gpufleet.metrics.usage_tasks import accrue_live_usage
from gpufleet.schemas.usage import FIGURE_FIELDS
from gpufleet.store.clusters import account_usage_from
from gpufleet.store.tables import usage_hourly, usage_open, usage_states
from gpufleet.store.usage_ledger import HeldState, Observation, compact_states, record_observations
from tests.support.access import key_with_role
from tests.support.agent_reports import CLUSTER_ID, T0, batch, ingest_path, report

HOUR = 3600
FIGURES = list(FIGURE_FIELDS)


@pytest.fixture
def settings(settings, request):
    """The test drives the worker itself: the app's own periodic run would race it. A test
    may change more settings by parametrizing this fixture."""
    update = {"usage_interval_seconds": 0, **getattr(request, "param", {})}
    return settings.model_copy(update=update)


def _post(client, *items, **kwargs) -> dict:
    response = client.post(ingest_path(), json=batch(*items, **kwargs))
    assert response.status_code == 200, response.text
    return response.json()


def _usage(client, start: float, end: float, group_by: str | None = None, **headers) -> list:
    params = {
        "start": format_rfc3339(T0 + timedelta(seconds=start)),
        "end": format_rfc3339(T0 + timedelta(seconds=end)),
    }
    if group_by:
        params["groupBy"] = group_by
    response = client.get("/api/v1/usage", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["values"]


def _seconds(value: dict, figure: str = "allocatedGpuHours") -> float:
    return value[figure] * HOUR


def _total(client, start: float, end: float, figure: str = "allocatedGpuHours") -> float:
    (value,) = _usage(client, start, end)
    assert value["groups"] == []
    return _seconds(value, figure)


def test_a_workload_cut_by_the_window_counts_only_its_part_inside(client):
    # Running with 2 GPUs from 08:30 to 10:15 (T0 is 08:00).
    workload_id = str(uuid.uuid4())
    running = {"allocatedResources": {"gpu": 2.0, "cpu": 4, "cpuMemory": "8Gi"}}
    _post(client, report(workload_id, observed=1800, phase="Running", **running))
    _post(client, report(workload_id, observed=8100, phase="Completed", **running))
    assert _total(client, 0, HOUR) == pytest.approx(2 * 1800, abs=1)
    assert _total(client, HOUR, 2 * HOUR) == pytest.approx(2 * 3600, abs=1)
    assert _total(client, 2 * HOUR, 3 * HOUR) == pytest.approx(2 * 900, abs=1)
    assert _total(client, 0, 3 * HOUR) == pytest.approx(2 * 6300, abs=1)
    assert _total(client, 0, 3 * HOUR, "cpuCoreHours") == pytest.approx(4 * 6300, abs=1)
    assert _total(client, 0, 3 * HOUR, "memoryGibHours") == pytest.approx(8 * 6300, abs=1)
    # A window that does not start on the hour covers the whole hours around it.
    assert _total(client, 1800 + 60, HOUR + 5) == pytest.approx(2 * 1800 + 2 * 3600, abs=1)


def test_an_allocation_change_in_the_middle_of_an_hour(client):
    workload_id = str(uuid.uuid4())
    _post(client, report(workload_id, observed=0, phase="Running"))
    three = {"allocatedResources": {"gpu": 3.0}}
    _post(client, report(workload_id, observed=1200, phase="Running", **three))
    _post(client, report(workload_id, observed=2400, phase="Running", **three))
    _post(client, report(workload_id, observed=HOUR, phase="Completed", **three))
    assert _total(client, 0, HOUR) == pytest.approx(1 * 1200 + 3 * 2400, abs=1)


def test_a_restart_counts_pending_time_and_no_allocation_while_pending(client):
    workload_id = str(uuid.uuid4())
    none = {"allocatedResources": {"gpu": 0}}
    steps = [(0, "Running", {}), (1800, "Pending", none), (2700, "Running", {})]
    for observed, phase, extra in [*steps, (HOUR, "Completed", {})]:
        _post(client, report(workload_id, observed=observed, phase=phase, **extra))
    assert _total(client, 0, HOUR) == pytest.approx(1800 + 900, abs=1)
    assert _total(client, 0, HOUR, "pendingWorkloadHours") == pytest.approx(900, abs=1)


def test_a_late_observation_takes_over_its_stretch(client):
    workload_id = str(uuid.uuid4())
    _post(client, report(workload_id, observed=0, phase="Running"))
    _post(client, report(workload_id, observed=2 * HOUR, phase="Completed"))
    assert _total(client, 0, 2 * HOUR) == pytest.approx(2 * HOUR, abs=1)
    # Arrives after the completion: from 00:30 to 01:30 it held 4 GPUs.
    four = {"allocatedResources": {"gpu": 4.0}}
    outcome = _post(client, report(workload_id, observed=1800, phase="Running", **four))
    assert outcome["stale"] == 1
    _post(client, report(workload_id, observed=5400, phase="Running"))
    assert _total(client, 0, HOUR) == pytest.approx(1800 + 4 * 1800, abs=1)
    assert _total(client, HOUR, 2 * HOUR) == pytest.approx(4 * 1800 + 1800, abs=1)
    # Replaying every observation changes nothing.
    _post(client, report(workload_id, observed=1800, phase="Running", **four))
    _post(client, report(workload_id, observed=0, phase="Running"))
    assert _total(client, 0, 2 * HOUR) == pytest.approx(1800 + 4 * 3600 + 1800, abs=1)


def test_a_first_report_counts_from_when_its_phase_began(client):
    workload_id = str(uuid.uuid4())
    since = format_rfc3339(T0 + timedelta(seconds=600))
    _post(client, report(workload_id, observed=HOUR, phase="Running", phaseUpdatedAt=since))
    _post(client, report(workload_id, observed=HOUR + 600, phase="Completed"))
    assert _total(client, 0, 2 * HOUR) == pytest.approx(HOUR, abs=1)


def test_a_cluster_accounted_from_a_moment_counts_nothing_of_its_own_before_it(client, engine):
    # Its usage before 09:00 was written into the rollups otherwise (the demo's history): a
    # workload pending from 08:00 and running with 2 GPUs from 08:30 counts from 09:00 only,
    # whether its past comes in order, late, or is brought up to now by the live part.
    earlier, late = str(uuid.uuid4()), str(uuid.uuid4())
    none = {"allocatedResources": {"gpu": 0}}
    _post(client, report(earlier, observed=0, phase="Pending", **none))
    with engine.begin() as conn:
        account_usage_from(conn, [CLUSTER_ID], T0 + timedelta(hours=1))
    two = {"allocatedResources": {"gpu": 2.0}}
    _post(client, report(earlier, observed=1800, phase="Running", **two))
    assert accrue_live_usage(engine, "replica-a", T0 + timedelta(seconds=5400), 60_000) == 1
    _post(client, report(earlier, observed=2 * HOUR, phase="Completed", **two))
    # First seen running since 08:15, then an observation of its pending past arriving late.
    since = format_rfc3339(T0 + timedelta(seconds=900))
    _post(client, report(late, observed=5400, phase="Running", phaseUpdatedAt=since))
    _post(client, report(late, observed=2 * HOUR, phase="Completed"))
    _post(client, report(late, observed=600, phase="Pending", **none))
    assert _total(client, 0, HOUR) == 0
    assert _total(client, 0, 2 * HOUR, "pendingWorkloadHours") == 0
    assert _total(client, HOUR, 2 * HOUR) == pytest.approx(2 * HOUR + HOUR, abs=1)


def test_a_stretch_ended_before_a_cut_off_inside_its_hour_takes_nothing_away(client, engine):
    # Accounted from 08:40: running with 2 GPUs from 08:10, with 4 from 08:20, completed at
    # 09:00. The stretch 08:10 to 08:20 lies wholly before the cut-off but in its hour; cut to
    # start at 08:40 it ran backwards and took 20 minutes of 2 GPUs off the hour.
    workload_id = str(uuid.uuid4())
    _post(client, report(phase="Pending", allocatedResources={"gpu": 0}))  # the cluster's row
    with engine.begin() as conn:
        account_usage_from(conn, [CLUSTER_ID], T0 + timedelta(minutes=40))
    two, four = {"allocatedResources": {"gpu": 2.0}}, {"allocatedResources": {"gpu": 4.0}}
    _post(client, report(workload_id, observed=600, phase="Running", **two))
    _post(client, report(workload_id, observed=1200, phase="Running", **four))
    _post(client, report(workload_id, observed=HOUR, phase="Completed", **four))
    assert _total(client, 0, HOUR) == pytest.approx(4 * 1200, abs=1)


def test_node_pools_share_the_allocation_and_group(client):
    workload_id = str(uuid.uuid4())
    pools = {"currentNodePools": ["a100", "h100"], "allocatedResources": {"gpu": 4.0}}
    _post(client, report(workload_id, observed=0, phase="Running", **pools))
    _post(client, report(workload_id, observed=HOUR, phase="Completed", **pools))
    values = _usage(client, 0, HOUR, "nodepool")
    by_pool = {v["groups"][0]["value"]: _seconds(v) for v in values}
    assert by_pool == {"a100": pytest.approx(2 * HOUR), "h100": pytest.approx(2 * HOUR)}
    (project,) = _usage(client, 0, HOUR, "project,submitter")
    assert [(g["key"], g["value"], g["name"]) for g in project["groups"]] == [
        ("project", "10", "vision"),
        ("submitter", "alice@example.com", "alice@example.com"),
    ]


def test_pending_time_waits_in_the_first_pool_asked_for(client):
    asks = str(uuid.uuid4())
    wants = {"requestedNodePools": ["h100", "a100"]}
    none = {"allocatedResources": {"gpu": 0}}
    _post(client, report(asks, observed=0, phase="Pending", currentNodePools=[], **wants, **none))
    _post(client, report(asks, observed=1800, phase="Running", currentNodePools=["a100"], **wants))
    _post(client, report(asks, observed=HOUR, phase="Completed", currentNodePools=["a100"]))
    # A workload asking for no pool waits in none.
    anywhere = str(uuid.uuid4())
    _post(client, report(anywhere, observed=0, phase="Pending", currentNodePools=[], **none))
    _post(client, report(anywhere, observed=900, phase="Failed", currentNodePools=[], **none))
    values = _usage(client, 0, HOUR, "nodepool")
    pending = {v["groups"][0]["value"]: _seconds(v, "pendingWorkloadHours") for v in values}
    assert pending == {
        "h100": pytest.approx(1800, abs=1),
        "a100": pytest.approx(0, abs=1),
        "": pytest.approx(900, abs=1),
    }


def test_the_live_part_is_brought_up_to_now_once(client, engine):
    workload_id = str(uuid.uuid4())
    _post(client, report(workload_id, observed=0, phase="Running"))
    now = T0 + timedelta(seconds=5400)
    assert accrue_live_usage(engine, "replica-a", now, 60_000) == 1
    # Another replica does not hold the lease; the holder has nothing left to do.
    assert accrue_live_usage(engine, "replica-b", now, 60_000) == 0
    assert accrue_live_usage(engine, "replica-a", now, 60_000) == 0
    assert _total(client, 0, 2 * HOUR) == pytest.approx(5400, abs=1)
    # The next observation continues from there; a completed workload leaves the live set.
    _post(client, report(workload_id, observed=6000, phase="Completed"))
    assert _total(client, 0, 2 * HOUR) == pytest.approx(6000, abs=1)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(usage_open)).scalar() == 0


def test_deleted_workloads_hold_nothing_from_their_deletion(client, engine):
    workload_id = str(uuid.uuid4())
    started = datetime.now(UTC) - timedelta(minutes=30)
    item = report(workload_id, observed=0, phase="Running")
    item["observedAt"] = format_rfc3339(started)
    _post(client, item)
    _post(client, deleted=[workload_id])
    with engine.connect() as conn:
        held = conn.execute(sa.select(sa.func.sum(usage_hourly.c.gpu_seconds))).scalar()
        latest = conn.execute(
            sa.select(usage_states.c.gpu).order_by(usage_states.c.at_ms.desc()).limit(1)
        ).scalar()
    assert 30 * 60 - 5 <= held <= 30 * 60 + 60
    assert latest == 0


def test_a_deletion_reported_late_accounts_until_it_was_seen(client, engine):
    # Running with 1 GPU from T0, deleted at T0 + 30 min, reported long after the live part
    # had already accrued two hours: the ledger takes the stretch after the deletion back.
    workload_id = str(uuid.uuid4())
    _post(client, report(workload_id, observed=0, phase="Running"))
    assert accrue_live_usage(engine, "replica-a", T0 + timedelta(hours=2), 60_000) == 1
    assert _total(client, 0, 3 * HOUR) == pytest.approx(2 * HOUR, abs=1)
    _post(client, deletions={workload_id: 1800})
    assert _total(client, 0, 3 * HOUR) == pytest.approx(1800, abs=1)
    assert accrue_live_usage(engine, "replica-a", datetime.now(UTC), 60_000) == 0
    assert _total(client, 0, 3 * HOUR) == pytest.approx(1800, abs=1)


def test_an_observation_arriving_after_its_deletion_is_still_accounted(client):
    # 2 GPUs from T0, 1 from T0 + 10 min (reported only after the deletion at T0 + 20 min).
    workload_id = str(uuid.uuid4())
    two, one = {"allocatedResources": {"gpu": 2.0}}, {"allocatedResources": {"gpu": 1.0}}
    _post(client, report(workload_id, observed=0, phase="Running", **two))
    _post(client, deletions={workload_id: 1200})
    assert _total(client, 0, HOUR) == pytest.approx(2 * 1200, abs=1)
    assert _post(client, report(workload_id, observed=600, phase="Running", **one))["stale"] == 1
    assert _total(client, 0, HOUR) == pytest.approx(2 * 600 + 600, abs=1)


def test_csv_has_the_same_figures(client):
    workload_id = str(uuid.uuid4())
    _post(client, report(workload_id, observed=0, phase="Running"))
    _post(client, report(workload_id, observed=HOUR, phase="Completed"))
    params = {"start": format_rfc3339(T0), "end": format_rfc3339(T0 + timedelta(hours=1))}
    response = client.get(
        "/api/v1/usage",
        params={**params, "groupBy": "cluster"},
        headers={"Accept": "text/csv"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    header, row = response.text.strip().splitlines()
    assert header.split(",") == ["cluster", "clusterName", *FIGURES]
    assert row.split(",")[:3] == [CLUSTER_ID, CLUSTER_ID, "1"]


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({}, "start"),
        ({"start": "yesterday"}, "start"),
        ({"start": "2025-03-01T10:00:00Z", "end": "2025-03-01T09:00:00Z"}, "end"),
        ({"start": "2025-03-01T10:00:00Z", "groupBy": "phase"}, "groupBy"),
        ({"start": "2025-03-01T10:00:00Z", "groupBy": "project,project"}, "groupBy"),
        ({"start": "2025-03-01T10:00:00Z", "groupBy": "project,type,cluster"}, "groupBy"),
    ],
)
def test_bad_parameters_are_400_naming_them(client, params, parameter):
    response = client.get("/api/v1/usage", params=params)
    assert response.status_code == 400
    assert parameter in response.json()["message"]


def _samples(workload_id: str, start: datetime, minutes: range, gpu: str, value: float):
    return [
        {
            "workloadId": workload_id,
            "type": "GPU_UTILIZATION",
            "timestamp": format_rfc3339(start + timedelta(minutes=m)),
            "value": value,
            "labels": {"gpu": gpu},
        }
        for m in minutes
    ]


def _push(client, samples: list) -> None:
    response = client.post("/api/v1/ingest/metrics", json={"samples": samples})
    assert response.status_code == 200, response.text


def test_used_and_idle_hours_follow_the_samples_even_when_they_come_late(client):
    # Two GPUs for one whole hour; GPU 0 busy at 80 %, GPU 1 at 0 % (idle once it has
    # reported for the whole 5-minute window: from its sixth sample on).
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    workload_id = str(uuid.uuid4())
    two = {"allocatedResources": {"gpu": 2.0}}
    start = report(workload_id, phase="Running", **two)
    start["observedAt"] = format_rfc3339(hour)
    _post(client, start)
    # Samples of the second half first, then the end of the workload, then the first half.
    _push(client, _samples(workload_id, hour, range(30, 60), "0", 80.0))
    _push(client, _samples(workload_id, hour, range(30, 60), "1", 0.0))
    end = report(workload_id, phase="Completed", **two)
    end["observedAt"] = format_rfc3339(hour + timedelta(hours=1))
    _post(client, end)
    window = {
        "start": format_rfc3339(hour),
        "end": format_rfc3339(hour + timedelta(hours=1)),
    }
    (value,) = client.get("/api/v1/usage", params=window).json()["values"]
    assert _seconds(value) == pytest.approx(7200, abs=1)
    assert _seconds(value, "usedGpuHours") == pytest.approx(7200 * 0.4, abs=1)
    # Without earlier samples GPU 1 reports from minute 30: idle from minute 35 on.
    assert _seconds(value, "idleGpuHours") == pytest.approx(7200 * 25 / 60, abs=1)
    _push(client, _samples(workload_id, hour, range(30), "1", 0.0))
    _push(client, _samples(workload_id, hour, range(30), "0", 80.0))
    (value,) = client.get("/api/v1/usage", params=window).json()["values"]
    assert _seconds(value, "usedGpuHours") == pytest.approx(7200 * 0.4, abs=1)
    assert _seconds(value, "idleGpuHours") == pytest.approx(7200 * 55 / 120, abs=1)


def test_a_project_viewer_sees_its_projects_figures_only(client):
    own, other = str(uuid.uuid4()), str(uuid.uuid4())
    elsewhere = {"projectId": "11", "projectName": "speech", "allocatedResources": {"gpu": 5.0}}
    for workload_id, extra in ((own, {}), (other, elsewhere)):
        _post(client, report(workload_id, observed=0, phase="Running", **extra))
        _post(client, report(workload_id, observed=HOUR, phase="Completed", **extra))
    viewer = key_with_role(client, "viewer", "project", "10")
    (mine,) = _usage(client, 0, HOUR, "project", **viewer)
    assert mine["groups"][0]["value"] == "10"
    assert _seconds(mine) == pytest.approx(HOUR, abs=1)
    (total,) = _usage(client, 0, HOUR, **viewer)
    assert _seconds(total) == pytest.approx(HOUR, abs=1)
    assert _total(client, 0, HOUR) == pytest.approx(6 * HOUR, abs=1)
    nobody = key_with_role(client, "cluster-agent", "cluster", CLUSTER_ID)
    refused = client.get("/api/v1/usage", params={"start": "2025-03-01T08:00:00Z"}, headers=nobody)
    assert refused.status_code == 403


def _held_hours(engine, workload_id: str) -> tuple[int, int]:
    hours = usage_hourly.c.hour_ms
    with engine.connect() as conn:
        return conn.execute(
            sa.select(sa.func.count(), sa.func.min(hours)).where(
                usage_hourly.c.workload_id == workload_id
            )
        ).one()


@pytest.mark.parametrize("settings", [{"usage_retention_days": 2}], indirect=True)
def test_ancient_times_from_an_agent_accrue_no_further_back_than_the_retention(
    client, engine, settings
):
    # A first report of a workload Running "since 1990": the server counts it only from the
    # retention's horizon, not 300,000 hours of rollup rows (memory and disk an agent could
    # otherwise make the server spend at will).
    workload_id = str(uuid.uuid4())
    now = datetime.now(UTC)
    item = report(workload_id, phase="Running", phaseUpdatedAt="1990-01-01T00:00:00Z")
    item["observedAt"] = format_rfc3339(now)
    _post(client, item)
    count, first_hour = _held_hours(engine, workload_id)
    horizon = now - timedelta(days=settings.usage_retention_days)
    assert first_hour // 1000 >= int(horizon.timestamp()) - HOUR
    assert count <= settings.usage_retention_days * 24 + 2


def test_the_live_part_accrues_no_further_back_than_the_retention(client, engine):
    # Last seen in 1990 (an agent's clock, or a replay): bringing it up to now starts at the
    # retention's horizon.
    workload_id = str(uuid.uuid4())
    item = report(workload_id, phase="Running", phaseUpdatedAt="1990-01-01T00:00:00Z")
    item["observedAt"] = "1990-01-01T00:00:00Z"
    _post(client, item)
    now = datetime.now(UTC)
    assert accrue_live_usage(engine, "replica-a", now, 60_000, retention_days=2) == 1
    count, first_hour = _held_hours(engine, workload_id)
    assert first_hour // 1000 >= int((now - timedelta(days=2)).timestamp()) - HOUR
    assert 48 <= count <= 49


def _timelines(conn) -> list[tuple]:
    return [
        tuple(row)
        for row in conn.execute(sa.select(usage_states).order_by(*usage_states.primary_key))
    ]


def test_merging_a_page_of_workloads_at_a_time_merges_what_one_pass_merges(engine):
    # Five workloads, each seen every ten minutes with a change on the hour: runs to merge.
    start = int(T0.timestamp()) * 1000
    held = [
        HeldState(CLUSTER_ID, "d", "p", "ann", "Training", "default", gpu=1.0 + step // 6)
        for step in range(18)
    ]
    observations = [
        Observation(workload_id, start + step * 600_000, state)
        for workload_id in (str(uuid.uuid4()) for _ in range(5))
        for step, state in enumerate(held)
    ]
    with engine.begin() as conn:
        record_observations(conn, observations)
    cutoff = start + 3 * HOUR * 1000
    with engine.connect() as conn:
        with conn.begin() as transaction:
            merged = compact_states(conn, cutoff)
            expected = _timelines(conn)
            transaction.rollback()
        with conn.begin():
            assert compact_states(conn, cutoff, page=2) == merged == 5 * 14
            assert _timelines(conn) == expected


def test_a_float_residue_below_zero_reads_as_zero_never_negative_zero(client, engine):
    # Rollups are sums of differences (a late observation takes back what an earlier one
    # added), so an hour whose pending time was all taken back can hold -5e-12 s rather than 0,
    # as the demo's do; rounded to six decimals that read -0.0.
    hour_ms = int(T0.timestamp()) * 1000
    residue = {
        "hour_ms": hour_ms, "workload_id": str(uuid.uuid4()), "nodepool": "default",
        "cluster_id": CLUSTER_ID, "department_id": "2", "project_id": "10",
        "submitter": "alice@example.com", "type": "Training", "gpu_seconds": 3600.0,
        "cpu_core_seconds": -1e-12, "memory_gib_seconds": 0.0,
        "pending_seconds": -5.1686233613483196e-12,
    }  # fmt: skip
    with engine.begin() as conn:
        conn.execute(usage_hourly.insert(), residue)
    window = {"start": format_rfc3339(T0), "end": format_rfc3339(T0 + timedelta(hours=1))}
    for params in ({}, {"bucket": "hour"}, {"bucket": "day"}, {"groupBy": "project"}):
        response = client.get("/api/v1/usage", params={**window, **params})
        assert response.status_code == 200, response.text
        assert "-0.0" not in response.text
        (value,) = response.json()["values"]
        assert value["allocatedGpuHours"] == 1.0
        for figure in ("pendingWorkloadHours", "cpuCoreHours"):
            assert math.copysign(1.0, value[figure]) == 1.0, (params, figure)
