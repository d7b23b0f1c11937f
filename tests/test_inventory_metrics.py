"""Metrics over time of clusters, projects and departments: the sampler records allocation,
capacity and quota, and the metrics endpoints read them back per interval."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from gpufleet.core.metric_values import SampleWindow
from gpufleet.core.times import format_rfc3339, to_ms
from gpufleet.metrics.tasks import record_inventory
from gpufleet.settings import Settings
from gpufleet.store.dialect import bulk_append
from gpufleet.store.engine import create_store_engine
from gpufleet.store.inventory_samples import BACKFILL_LEASE, instants_statement, series_statement
from gpufleet.store.leases import release_lease, take_lease
from gpufleet.store.tables import inventory_samples
from tests.support.access import key_with_role
from tests.support.agent_reports import (
    CLUSTER_ID,
    at,
    batch,
    in_project,
    ingest_path,
    node_path,
    node_report,
    queue_path,
    report,
)
from tests.support.reference import ReferenceValidators, load_reference

INTERVAL = 60
CLUSTER_TYPES = (
    "TOTAL_GPU",
    "TOTAL_GPU_NODES",
    "ALLOCATED_GPU",
    "UNALLOCATED_GPU",
    "GPU_QUOTA",
    "WORKLOADS_COUNT",
)


def _running(project_id: str, name: str, gpus: float, node: str, pool: str) -> dict:
    item = report(
        phase="Running",
        **in_project(project_id, name),
        allocatedResources={"gpu": gpus},
        currentNodePools=[pool],
    )
    item["pods"][0].update(nodeName=node, nodepool=pool, allocatedResources={"gpu": gpus})
    return item


@pytest.fixture
def fleet(client):
    nodes = [
        node_report(name="a100-1", nodePool="a100"),
        node_report(name="a100-2", nodePool="a100"),
        node_report(name="cpu-1", nodePool="default", gpuCount=0, allocatableGpus=0),
    ]
    assert client.post(node_path(), json={"nodes": nodes}).status_code == 200
    workloads = [
        _running("10", "vision", 4.0, "a100-1", "a100"),
        _running("11", "speech", 2.0, "a100-2", "a100"),
        report(
            phase="Pending", projectId="11", projectName="speech", allocatedResources={"gpu": 0}
        ),
    ]
    response = client.post(ingest_path(), json=batch(*workloads))
    assert response.status_code == 200 and response.json()["accepted"] == 3, response.text
    unit = {
        "type": "project",
        "id": "10",
        "name": "vision",
        "departmentId": "2",
        "departmentName": "research",
        "namespace": "runai-vision",
    }
    queue = {
        "source": "kai",
        "name": "vision",
        "orgUnit": unit,
        "quotas": [{"nodePool": "a100", "gpu": {"deserved": 3}}],
    }
    response = client.post(queue_path(), json={"observedAt": at(0), "queues": [queue]})
    assert response.status_code == 200, response.text


def _window(now: datetime) -> dict:
    return {
        "start": format_rfc3339(now - timedelta(minutes=30)),
        "end": format_rfc3339(now + timedelta(minutes=1)),
        "numberOfSamples": 31,
    }


def _last(measurement: dict) -> float:
    return float(measurement["values"][-1]["value"])


def test_cluster_metrics_follow_capacity_allocation_and_quota(client, app, fleet):
    engine = app.state.gpufleet.engine
    now = datetime.now(UTC)
    assert record_inventory(engine, INTERVAL, now - timedelta(minutes=10)) > 0
    # One more workload between the two samples: the history shows the change.
    extra = _running("10", "vision", 1.0, "a100-2", "a100")
    assert client.post(ingest_path(), json=batch(extra)).status_code == 200
    record_inventory(engine, INTERVAL, now)

    params = {
        **_window(now),
        "metricType": ",".join(CLUSTER_TYPES),
    }
    response = client.get(f"/api/v1/clusters/{CLUSTER_ID}/metrics", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    ReferenceValidators(load_reference("runai-adjacent-openapi.json")).response(
        "/api/v1/clusters/{clusterUuid}/metrics"
    ).validate(body)
    got = {m["type"]: m for m in body["measurements"]}
    assert [float(v["value"]) for v in got["ALLOCATED_GPU"]["values"]] == [6.0, 7.0]
    assert _last(got["TOTAL_GPU"]) == 16.0
    assert _last(got["TOTAL_GPU_NODES"]) == 2.0
    assert _last(got["UNALLOCATED_GPU"]) == 9.0
    assert _last(got["GPU_QUOTA"]) == 3.0
    assert _last(got["WORKLOADS_COUNT"]) == 4.0

    grouped = client.get(
        f"/api/v1/clusters/{CLUSTER_ID}/metrics",
        params={**_window(now), "metricType": "TOTAL_GPU", "groupBy": "Nodepool"},
    ).json()["measurements"]
    assert {m["groups"][0]["value"]: _last(m) for m in grouped} == {"a100": 16.0, "default": 0.0}
    by_project = client.get(
        f"/api/v1/clusters/{CLUSTER_ID}/metrics",
        params={**_window(now), "metricType": "ALLOCATED_GPU", "groupBy": "Project"},
    ).json()["measurements"]
    assert {m["groups"][0]["value"]: _last(m) for m in by_project} == {"10": 5.0, "11": 2.0}
    one_pool = client.get(
        f"/api/v1/clusters/{CLUSTER_ID}/metrics",
        params={**_window(now), "metricType": "UNALLOCATED_GPU", "nodepoolName": "a100"},
    ).json()["measurements"]
    assert _last(one_pool[0]) == 9.0

    partial = client.get(
        f"/api/v1/clusters/{CLUSTER_ID}/metrics",
        params={**_window(now), "metricType": "GPU_UTILIZATION,TOTAL_GPU"},
    )
    assert partial.status_code == 207
    assert "GPU_UTILIZATION" in partial.headers["X-Gpufleet-Metric-Failures"]
    assert partial.json()["measurements"][0]["values"] is None


def test_project_and_department_metrics(client, app, fleet):
    engine = app.state.gpufleet.engine
    now = datetime.now(UTC)
    record_inventory(engine, INTERVAL, now)
    validators = ReferenceValidators(load_reference("runai-adjacent-openapi.json"))
    params = {**_window(now), "metricType": "GPU_ALLOCATION,GPU_QUOTA,CPU_QUOTA_MILLICORES"}
    response = client.get("/api/v1/org-unit/projects/10/metrics", params=params)
    assert response.status_code == 200, response.text
    validators.response("/api/v1/org-unit/projects/{projectId}/metrics").validate(response.json())
    got = {m["type"]: m for m in response.json()["measurements"]}
    project = client.get("/api/v1/org-unit/projects/10").json()
    assert _last(got["GPU_ALLOCATION"]) == project["status"]["quotaStatus"]["allocated"]["gpu"]
    assert _last(got["GPU_QUOTA"]) == project["totalResources"]["gpuQuota"] == 3.0
    assert got["CPU_QUOTA_MILLICORES"]["values"] == []

    pool = client.get(
        "/api/v1/org-unit/projects/11/metrics",
        params={**_window(now), "metricType": "GPU_ALLOCATION", "nodepoolName": "a100"},
    ).json()["measurements"][0]
    assert pool["labels"] == {"nodepool": "a100"} and _last(pool) == 2.0

    department = client.get(
        "/api/v1/org-unit/departments/2/metrics",
        params={**_window(now), "metricType": "GPU_ALLOCATION,GPU_MEMORY_UTILIZATION"},
    )
    assert department.status_code == 207
    validators.response(
        "/api/v1/org-unit/departments/{departmentId}/metrics", status="207"
    ).validate(department.json())
    measurements = department.json()["measurements"]
    assert _last(measurements[0]) == 6.0 and measurements[1]["values"] is None


def test_metrics_keep_to_the_scope_and_check_their_parameters(client, app, fleet):
    record_inventory(app.state.gpufleet.engine, INTERVAL, datetime.now(UTC))
    window = {**_window(datetime.now(UTC)), "metricType": "GPU_ALLOCATION"}
    viewer = key_with_role(client, "viewer", "project", "10")
    assert (
        client.get(
            "/api/v1/org-unit/projects/10/metrics", params=window, headers=viewer
        ).status_code
        == 200
    )
    assert (
        client.get(
            "/api/v1/org-unit/projects/11/metrics", params=window, headers=viewer
        ).status_code
        == 404
    )
    assert (
        client.get(
            "/api/v1/org-unit/departments/2/metrics", params=window, headers=viewer
        ).status_code
        == 404
    )
    cluster = {**window, "metricType": "TOTAL_GPU"}
    path = f"/api/v1/clusters/{CLUSTER_ID}/metrics"
    assert client.get(path, params=cluster, headers=viewer).status_code == 403
    reader = key_with_role(client, "viewer", "cluster", CLUSTER_ID)
    assert client.get(path, params=cluster, headers=reader).status_code == 200
    for bad in (
        {**cluster, "metricType": "NOPE"},
        {**cluster, "groupBy": "Project", "nodepoolName": "a100"},
        {**cluster, "end": cluster["start"]},
        {key: value for key, value in cluster.items() if key != "metricType"},
    ):
        response = client.get(path, params=bad)
        assert response.status_code == 400, (bad, response.text)


def test_the_sampler_leaves_the_present_alone_while_the_past_is_backfilled(app, fleet):
    """A producer reporting the past (the living demo) holds the backfill lease: the store does
    not show the present then, so the periodic sampler writes nothing until it is given up."""
    engine = app.state.gpufleet.engine
    now = datetime.now(UTC)
    with engine.begin() as conn:
        assert take_lease(conn, BACKFILL_LEASE, "backfill", to_ms(now), 60_000)
    assert record_inventory(engine, INTERVAL, now) == 0
    with engine.begin() as conn:
        release_lease(conn, BACKFILL_LEASE, "backfill")
    assert record_inventory(engine, INTERVAL, now) > 0


def _series(client, path: str, window: dict, metric_type: str, **params) -> dict:
    """Each measurement's values by its group's value ("" without a group)."""
    response = client.get(path, params={**window, "metricType": metric_type, **params})
    assert response.status_code == 200, response.text
    return {
        (m.get("groups") or [{"value": ""}])[0]["value"]: [float(v["value"]) for v in m["values"]]
        for m in response.json()["measurements"]
    }


def _holding(project_id: str, name: str, gpus: float, node: str, cpu: float, memory: str):
    item = _running(project_id, name, gpus, node, "a100")
    item["pods"][0]["allocatedResources"] = {"gpu": gpus, "cpu": cpu, "cpuMemory": memory}
    return item


@pytest.fixture
def gap(client, app):
    """Three samples a minute apart; project 11's workloads (2 GPUs, 1.5 CPU cores and 3 GB on
    a100-2, and one pending) are deleted after the first, so its later samples of counts and
    amounts are absent. Both projects are in department 2, whose own queue deserves 4 GPUs
    where its projects' deserve 3 + 2."""
    engine = app.state.gpufleet.engine
    nodes = [node_report(name=f"a100-{n}", nodePool="a100") for n in (1, 2)]
    assert client.post(node_path(), json={"nodes": nodes}).status_code == 200
    speech = [
        _holding("11", "speech", 2.0, "a100-2", 1.5, "3G"),
        report(phase="Pending", **in_project("11", "speech"), allocatedResources={"gpu": 0}),
    ]
    vision = _holding("10", "vision", 4.0, "a100-1", 2.0, "1G")
    assert client.post(ingest_path(), json=batch(vision, *speech)).status_code == 200
    in_research = {"type": "project", "departmentId": "2", "departmentName": "research"}
    queues = [
        {"source": "kai", "name": name, "orgUnit": unit,
         "quotas": [{"nodePool": "a100", "gpu": {"deserved": deserved}}]}
        for name, unit, deserved in (
            ("research", {"type": "department", "id": "2", "name": "research"}, 4),
            ("vision", {**in_research, "id": "10", "name": "vision"}, 3),
            ("speech", {**in_research, "id": "11", "name": "speech"}, 2),
        )
    ]  # fmt: skip
    response = client.post(queue_path(), json={"observedAt": at(1), "queues": queues})
    assert response.status_code == 200, response.text
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=3)
    record_inventory(engine, INTERVAL, start)
    gone = batch(deleted=[item["id"] for item in speech])
    assert client.post(ingest_path(), json=gone).status_code == 200
    record_inventory(engine, INTERVAL, start + timedelta(minutes=1))
    record_inventory(engine, INTERVAL, start + timedelta(minutes=2))
    span = {"start": format_rfc3339(start), "end": format_rfc3339(start + timedelta(minutes=3))}
    return {"coarse": {**span, "numberOfSamples": 1}, "fine": {**span, "numberOfSamples": 3}}


def test_an_absent_count_or_amount_is_a_zero_of_the_coarse_mean(client, gap):
    """A point is the mean over its interval's sampling instants; an instant without a sample
    of a count or an amount held counts as 0, not left out of the mean."""
    cluster = f"/api/v1/clusters/{CLUSTER_ID}/metrics"
    for window, speech in ((gap["coarse"], [2 / 3]), (gap["fine"], [2.0, 0.0, 0.0])):
        by_project = _series(client, cluster, window, "ALLOCATED_GPU", groupBy="Project")
        assert by_project == {"10": [4.0] * len(speech), "11": pytest.approx(speech)}
    counts = _series(client, cluster, gap["coarse"], "WORKLOADS_COUNT", groupBy="Project")
    assert counts == {"10": [1.0], "11": pytest.approx([2 / 3])}
    project = "/api/v1/org-unit/projects/11/metrics"
    assert _series(client, project, gap["fine"], "CPU_ALLOCATION_MILLICORES") == {
        "": [1500.0, 0.0, 0.0]
    }
    coarse = _series(client, project, gap["coarse"], "CPU_MEMORY_ALLOCATION_MB")
    assert coarse == {"": pytest.approx([1000.0])}
    # A pool the unit never held anything in reads 0, not "no data".
    pool = _series(client, project, gap["fine"], "CPU_ALLOCATION_MILLICORES", nodepoolName="h100")
    assert pool == {"": [0.0, 0.0, 0.0]}


def test_the_cluster_project_and_department_endpoints_agree(client, gap):
    cluster = f"/api/v1/clusters/{CLUSTER_ID}/metrics"
    for window in gap.values():
        by_project = _series(client, cluster, window, "ALLOCATED_GPU", groupBy="Project")
        for metric_type in (
            "GPU_ALLOCATION",
            "CPU_ALLOCATION_MILLICORES",
            "CPU_MEMORY_ALLOCATION_MB",
        ):
            projects = [
                _series(client, f"/api/v1/org-unit/projects/{p}/metrics", window, metric_type)[""]
                for p in ("10", "11")
            ]
            if metric_type == "GPU_ALLOCATION":
                assert projects == [by_project["10"], by_project["11"]]
            department = _series(
                client, "/api/v1/org-unit/departments/2/metrics", window, metric_type
            )
            assert department[""] == pytest.approx([sum(v) for v in zip(*projects, strict=True)])


def test_a_departments_gpu_quota_is_its_own_in_the_clusters_metrics_too(client, gap):
    """Run:ai's department quota per node pool is the department's own deserved GPUs, which
    its projects' may exceed (here 3 + 2 against 4); the cluster's total stays the projects'."""
    window = gap["coarse"]
    cluster = f"/api/v1/clusters/{CLUSTER_ID}/metrics"
    by_department = _series(client, cluster, window, "GPU_QUOTA", groupBy="Department")
    own = _series(client, "/api/v1/org-unit/departments/2/metrics", window, "GPU_QUOTA")
    assert by_department == {"2": [4.0]} and own == {"": [4.0]}
    assert _series(client, cluster, window, "GPU_QUOTA") == {"": [5.0]}
    by_project = _series(client, cluster, window, "GPU_QUOTA", groupBy="Project")
    assert by_project == {"10": [3.0], "11": [2.0]}


def test_an_absent_quota_or_wait_is_not_measured_rather_than_zero(client, gap):
    """A quota no queue sets, and the mean wait when nothing is pending, have no points; only
    the sampled instants that have them count in a point."""
    project = "/api/v1/org-unit/projects/11/metrics"
    assert _series(client, project, gap["fine"], "CPU_QUOTA_MILLICORES") == {"": []}
    cluster = f"/api/v1/clusters/{CLUSTER_ID}/metrics"
    waits = _series(client, cluster, gap["fine"], "AVG_WORKLOAD_WAIT_TIME")[""]
    assert len(waits) == 1


def test_every_sampled_type_says_whether_absence_is_zero():
    from gpufleet.api.routes.inventory_metrics import SAMPLED_CLUSTER_TYPES, SAMPLED_UNIT_TYPES
    from gpufleet.store.inventory_figures import ZERO_WHEN_ABSENT

    sampled = {t.value for t in SAMPLED_CLUSTER_TYPES | SAMPLED_UNIT_TYPES}
    assert sampled >= ZERO_WHEN_ABSENT
    assert sampled - ZERO_WHEN_ABSENT == {
        "GPU_QUOTA",
        "CPU_QUOTA_MILLICORES",
        "CPU_MEMORY_QUOTA_MB",
        "AVG_WORKLOAD_WAIT_TIME",
    }


PLAN_START_MS = 1_760_000_000_000
GROUPS = ("Nodepool", "Project", "Department", "Category")


@pytest.fixture(scope="module")
def sampled_day(module_database_url: str) -> Iterator[sa.Engine]:
    """A day of samples every 5 minutes: two clusters grouped by pool, project and category,
    and their projects' allocation and quotas; analysed, as autovacuum would soon have it."""
    engine = create_store_engine(Settings(database_url=module_database_url))
    day_ms = 24 * 3600_000

    def rows() -> Iterator[tuple]:
        for ts in range(PLAN_START_MS, PLAN_START_MS + day_ms, 300_000):
            for cluster in ("east", "west"):
                for kind in ("ALLOCATED_GPU", "TOTAL_GPU", "WORKLOADS_COUNT", "GPU_QUOTA"):
                    for series in ("", *(f"{g}={n}" for g in GROUPS for n in range(8))):
                        yield ("cluster", cluster, kind, series, ts, 1.0)
            for project in range(24):
                for kind in ("GPU_ALLOCATION", "CPU_ALLOCATION_MILLICORES", "GPU_QUOTA"):
                    for series in ("", "Nodepool=a100", "Nodepool=h100"):
                        yield ("project", str(project), kind, series, ts, 1.0)

    columns = ("unit_type", "unit_id", "metric_type", "series", "ts_ms", "value")
    with engine.begin() as conn:
        bulk_append(conn, inventory_samples, columns, rows())
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE" if engine.dialect.name == "postgresql" else "ANALYZE")
    yield engine
    engine.dispose()


def _plan(engine: sa.Engine, statement: sa.Select) -> str:
    explain = "EXPLAIN QUERY PLAN" if engine.dialect.name == "sqlite" else "EXPLAIN (COSTS OFF)"
    compiled = statement.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True})
    with engine.connect() as conn:
        return "\n".join(str(row[-1]) for row in conn.exec_driver_sql(f"{explain} {compiled}"))


# What the metrics endpoints read: the cluster's instants, then each type's series.
READS = {
    "total": (("cluster", "east"), "ALLOCATED_GPU", [""]),
    "grouped": (("cluster", "east"), "ALLOCATED_GPU", "Project"),
    "unit pool": (("project", "7"), "GPU_ALLOCATION", ["Nodepool=a100"]),
}


@pytest.mark.parametrize("read", ["instants", *READS])
def test_a_series_is_read_as_one_range_of_the_primary_key(sampled_day, read):
    """An hour of one unit's type is a range of the samples' primary key, never a scan."""
    start = PLAN_START_MS + 12 * 3600_000
    window = SampleWindow(start, start + 3600_000, 60)
    statement = (
        instants_statement("east", window)
        if read == "instants"
        else series_statement(*READS[read], window)
    )
    plan = _plan(sampled_day, statement)
    if sampled_day.dialect.name == "sqlite":
        assert "SEARCH inventory_samples USING PRIMARY KEY (unit_type=? AND unit_id=? AND " in plan
        assert "SCAN inventory_samples" not in plan, plan
    else:
        assert re.search(r"Index (Only )?Scan using pk_inventory_samples", plan), plan
        assert "Seq Scan" not in plan, plan
