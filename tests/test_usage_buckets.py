"""``GET /api/v1/usage`` over time and for one unit: ``bucket=hour|day`` splits the window into
hours or UTC days, ``filterBy`` narrows it to a project, department, cluster or node pool; the
buckets of a window add up to its whole, and a filtered answer equals that group of a grouped
one."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpufleet.core.times import format_rfc3339
from gpufleet.core.workload_fields import NODEPOOL_NAME_MAX
from gpufleet.query.usage import UsageFilterField
from gpufleet.schemas.usage import FIGURE_FIELDS
from gpufleet.store.clusters import create_cluster
from tests.support.agent_reports import CLUSTER_ID, T0, batch, ingest_path, report

HOUR = 3600
DAY = 24 * HOUR
# Project "11" (department "3") beside the default project "10" (department "2").
SPEECH = {"projectId": "11", "projectName": "speech", "departmentId": "3"}
OTHER_CLUSTER = "0b6d3c52-2a51-4f0e-9d2b-7c1e5a9f8e21"


@pytest.fixture(name="settings")
def ledger_settings(settings):
    """The test drives the ledger itself: the app's own periodic run would race it."""
    return settings.model_copy(update={"usage_interval_seconds": 0})


def _run(
    client, start: float, end: float, gpus: float = 1.0, cluster_id: str = CLUSTER_ID, **extra
) -> None:
    """One workload running with ``gpus`` from ``start`` to ``end`` seconds after T0."""
    workload_id = str(uuid.uuid4())
    held = {"allocatedResources": {"gpu": gpus}, **extra}
    for observed, phase in ((start, "Running"), (end, "Completed")):
        item = report(workload_id, observed=observed, phase=phase, cluster_id=cluster_id, **held)
        response = client.post(ingest_path(cluster_id), json=batch(item))
        assert response.status_code == 200, response.text


def _usage(client, start: float, end: float, **params) -> list[dict]:
    window = {
        "start": format_rfc3339(T0 + timedelta(seconds=start)),
        "end": format_rfc3339(T0 + timedelta(seconds=end)),
    }
    response = client.get("/api/v1/usage", params={**window, **params})
    assert response.status_code == 200, response.text
    return response.json()["values"]


def _hour(seconds: float) -> str:
    return format_rfc3339(T0 + timedelta(seconds=seconds), timespec="seconds")


def test_hourly_buckets_hold_each_hours_part(client):
    # 2 GPUs from 08:30 to 10:15 (T0 is 08:00); nothing in the hour from 11:00.
    _run(client, 1800, 2 * HOUR + 900, gpus=2.0)
    values = _usage(client, 0, 4 * HOUR, bucket="hour")
    assert [(v["start"], v["groups"]) for v in values] == [
        (_hour(0), []),
        (_hour(HOUR), []),
        (_hour(2 * HOUR), []),
    ]
    hours = [v["allocatedGpuHours"] for v in values]
    assert hours == pytest.approx([1.0, 2.0, 0.5], abs=1e-3)
    (whole,) = _usage(client, 0, 4 * HOUR)
    assert "start" not in whole
    for figure in FIGURE_FIELDS:
        assert sum(v[figure] for v in values) == pytest.approx(whole[figure], abs=1e-5)


def test_daily_buckets_are_utc_days_and_grouped_values_follow_them(client):
    # T0 is 08:00 UTC: the first workload runs into the next day, the second is on it.
    _run(client, 15 * HOUR, 18 * HOUR)
    _run(client, DAY, DAY + 2 * HOUR, gpus=3.0, **SPEECH)
    midnight = -8 * HOUR
    vals = _usage(client, midnight, midnight + 2 * DAY, bucket="day", groupBy="project")
    found = [(v["start"], v["groups"][0]["value"], round(v["allocatedGpuHours"], 3)) for v in vals]
    assert found == [
        (_hour(midnight), "10", 1.0),
        (_hour(midnight + DAY), "10", 2.0),
        (_hour(midnight + DAY), "11", 6.0),
    ]
    days = _usage(client, midnight, midnight + 2 * DAY, bucket="day")
    assert [round(v["allocatedGpuHours"], 3) for v in days] == [1.0, 8.0]


def test_a_filtered_answer_equals_that_group_of_the_grouped_one(client):
    _run(client, 0, HOUR)
    _run(client, 0, 2 * HOUR, gpus=4.0, **SPEECH)
    grouped = {v["groups"][0]["value"]: v for v in _usage(client, 0, 2 * HOUR, groupBy="project")}
    for term, project in (("projectId==11", "11"), ("departmentId==2", "10")):
        (value,) = _usage(client, 0, 2 * HOUR, filterBy=term)
        assert value["allocatedGpuHours"] == pytest.approx(grouped[project]["allocatedGpuHours"])
        assert value["groups"] == []
    (named,) = _usage(client, 0, 2 * HOUR, filterBy="projectName==speech", groupBy="submitter")
    assert named["allocatedGpuHours"] == pytest.approx(8.0, abs=1e-3)
    series = _usage(client, 0, 2 * HOUR, filterBy="projectId==11,departmentId==3", bucket="hour")
    assert [round(v["allocatedGpuHours"], 3) for v in series] == [4.0, 4.0]
    (nothing,) = _usage(client, 0, 2 * HOUR, filterBy="projectId==11,departmentId==2")
    assert nothing["allocatedGpuHours"] == 0


def _by_groups(values: list[dict]) -> dict[tuple[str, ...], float]:
    return {tuple(g["value"] for g in v["groups"]): v["allocatedGpuHours"] for v in values}


def test_a_node_pool_or_a_cluster_by_name_is_that_group_of_the_grouped_answer(client, engine):
    with engine.begin() as conn:
        create_cluster(conn, cluster_id=CLUSTER_ID, name="east", tenant_id=1, now=datetime.now(UTC))
    _run(client, 0, HOUR, currentNodePools=["a100"])
    # Four GPUs over two pools: two GPUs' hours in each.
    _run(client, 0, 2 * HOUR, gpus=4.0, currentNodePools=["a100", "h100"], **SPEECH)
    # A pool of the same name in another cluster is another pool.
    _run(client, 0, HOUR, gpus=2.0, cluster_id=OTHER_CLUSTER, currentNodePools=["a100"])
    pools = _by_groups(_usage(client, 0, 2 * HOUR, groupBy="nodepool"))
    assert pools == pytest.approx({("a100",): 7.0, ("h100",): 4.0}, abs=1e-3)
    for pool, hours in pools.items():
        (value,) = _usage(client, 0, 2 * HOUR, filterBy=f"nodepool=={pool[0]}")
        assert value["allocatedGpuHours"] == pytest.approx(hours)
    per_cluster = _by_groups(_usage(client, 0, 2 * HOUR, groupBy="cluster,nodepool"))
    assert per_cluster[(CLUSTER_ID, "a100")] == pytest.approx(5.0, abs=1e-3)
    for (cluster, pool), hours in per_cluster.items():
        (value,) = _usage(client, 0, 2 * HOUR, filterBy=f"clusterId=={cluster},nodepool=={pool}")
        assert value["allocatedGpuHours"] == pytest.approx(hours)
    # A pool's consumers: its share of each project, by the hour.
    by_project = _usage(
        client, 0, 2 * HOUR, filterBy=f"nodepool==h100,clusterId=={CLUSTER_ID}", groupBy="project"
    )
    assert _by_groups(by_project) == pytest.approx({("11",): 4.0}, abs=1e-3)
    series = _usage(client, 0, 2 * HOUR, filterBy="nodepool==a100", bucket="hour")
    assert [round(v["allocatedGpuHours"], 3) for v in series] == [5.0, 2.0]
    clusters = _by_groups(_usage(client, 0, 2 * HOUR, groupBy="cluster"))
    (named,) = _usage(client, 0, 2 * HOUR, filterBy="clusterName==east")
    assert named["allocatedGpuHours"] == pytest.approx(clusters[(CLUSTER_ID,)])
    for term in ("nodepool==a10", "nodepool==h100,clusterId==" + OTHER_CLUSTER, "clusterName==x"):
        (nothing,) = _usage(client, 0, 2 * HOUR, filterBy=term)
        assert nothing["allocatedGpuHours"] == 0, term


def test_csv_buckets_start_each_row(client):
    _run(client, 0, 2 * HOUR)
    params = {
        "start": format_rfc3339(T0),
        "end": format_rfc3339(T0 + timedelta(hours=2)),
        "bucket": "hour",
        "groupBy": "project",
    }
    response = client.get("/api/v1/usage", params=params, headers={"Accept": "text/csv"})
    assert response.status_code == 200
    header, *rows = response.text.strip().splitlines()
    assert header.split(",") == ["start", "project", "projectName", *FIGURE_FIELDS]
    assert [row.split(",")[:4] for row in rows] == [
        [_hour(0), "10", "vision", "1"],
        [_hour(HOUR), "10", "vision", "1"],
    ]


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"bucket": "week"}, "bucket"),
        ({"bucket": "hour", "end": "2025-04-15T00:00:00Z"}, "bucket"),
        ({"filterBy": "phase==Running"}, "filterBy"),
        ({"filterBy": "projectId>=10"}, "filterBy"),
        ({"filterBy": "projectId=="}, "filterBy"),
        ({"filterBy": "nodepool== "}, "filterBy"),
        ({"filterBy": "nodepool=~a100"}, "filterBy"),
        ({"filterBy": f"nodepool=={'a' * (NODEPOOL_NAME_MAX + 1)}"}, "filterBy"),
        ({"filterBy": "nodePool==a100"}, "filterBy"),
    ],
)
def test_bad_buckets_and_filters_are_400_naming_them(client, params, parameter):
    response = client.get("/api/v1/usage", params={"start": "2025-03-01T00:00:00Z", **params})
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == 400
    assert parameter in body["message"]


# Any text a query string can carry, but a comma (which starts the next term); pool names
# around the longest ingest takes.
filter_values = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters=",\x00")),
    st.integers(NODEPOOL_NAME_MAX - 2, NODEPOOL_NAME_MAX + 2).map(lambda n: "p" * n),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(field=st.sampled_from([f.value for f in UsageFilterField]), value=filter_values)
def test_any_filter_value_is_an_answer_or_a_400_naming_filterby(client, field, value):
    params = {"start": "2025-03-01T00:00:00Z", "filterBy": f"{field}=={value}"}
    response = client.get("/api/v1/usage", params=params)
    named = value.strip()
    takes = bool(named) and (field != "nodepool" or len(named) <= NODEPOOL_NAME_MAX)
    if takes:
        assert response.status_code == 200, response.text
        (answer,) = response.json()["values"]
        assert answer["allocatedGpuHours"] == 0
    else:
        assert response.status_code == 400, response.text
        assert response.json()["code"] == 400
        assert "filterBy" in response.json()["message"]
