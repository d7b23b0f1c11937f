"""Telemetry agrees with the list and count endpoints for every groupBy and pair of them."""

from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from gpufleet.store.telemetry import TelemetryGroupBy
from tests.support.factories import CLUSTER_ID, insert, workload
from tests.support.telemetry_organisation import (
    ALL_GROUPINGS,
    GROUP_FIELDS,
    OTHER_CLUSTER,
    expected_values,
    seed_organisation,
)

URL = "/api/v1/workloads/telemetry"


@pytest.fixture
def listed(client, engine) -> list[dict]:
    seed_organisation(engine)
    response = client.get("/api/v1/workloads", params={"limit": 500})
    assert response.status_code == 200
    return response.json()["workloads"]


def _telemetry(client, kind: str, grouping=(), **params) -> dict:
    query = {"telemetryType": kind, **params}
    if grouping:
        query["groupBy"] = ",".join(grouping)
    response = client.get(URL, params=query)
    assert response.status_code == 200, response.text
    return response.json()


def _by_group(body: dict) -> dict[tuple[str, ...], float]:
    return {
        tuple(g["value"] for g in v.get("groups", [])): float(v["value"]) for v in body["values"]
    }


def test_counts_and_gpus_agree_with_the_list_endpoint(client, listed):
    total = client.get("/api/v1/workloads/count").json()["count"]
    assert total == 36
    for grouping in ALL_GROUPINGS:
        count = _telemetry(client, "WORKLOADS_COUNT", grouping)
        assert count["type"] == "WORKLOADS_COUNT"
        assert _by_group(count) == expected_values(listed, grouping, lambda w: 1), grouping
        if "CurrentNodepools" not in grouping:
            assert sum(_by_group(count).values()) == total
        gpus = _by_group(_telemetry(client, "GPU_ALLOCATION", grouping))
        expected = expected_values(listed, grouping, lambda w: w["allocatedResources"]["gpu"])
        assert gpus.keys() == expected.keys(), grouping
        for key, value in expected.items():
            assert gpus[key] == pytest.approx(value), (grouping, key)


def test_a_workload_in_several_node_pools_counts_in_each(client, listed):
    body = _by_group(_telemetry(client, "WORKLOADS_COUNT", ("CurrentNodepools",)))
    for pool in ("default", "a100", "h100"):
        count = client.get("/api/v1/workloads/count", params={"filterBy": f"nodepool=={pool}"})
        assert body[(pool,)] == count.json()["count"]
    assert body[("",)] == sum(1 for w in listed if not w["currentNodePools"])
    assert sum(body.values()) > len(listed)


def test_without_groupby_one_ungrouped_value(client, listed):
    body = _telemetry(client, "GPU_ALLOCATION")
    assert body["values"] == [
        {"value": str(int(sum(w["allocatedResources"]["gpu"] for w in listed)))}
    ]
    assert datetime.fromisoformat(body["timestamp"].replace("Z", "+00:00")) <= datetime.now(UTC)


def test_groups_carry_names_where_one_exists(client, listed):
    body = _telemetry(client, "WORKLOADS_COUNT", ("ClusterId", "DepartmentId"))
    for value in body["values"]:
        cluster, department = value["groups"]
        assert cluster["key"] == "ClusterId"
        assert cluster["name"] == ("lab" if cluster["value"] == OTHER_CLUSTER else "prod")
        assert department == {
            "key": "DepartmentId",
            "value": department["value"],
            "name": f"dept-{department['value']}",
        }
    phases = _telemetry(client, "WORKLOADS_COUNT", ("Phase",))["values"]
    assert all("name" not in v["groups"][0] for v in phases)


@pytest.mark.parametrize(
    "params",
    [
        {"clusterId": OTHER_CLUSTER},
        {"departmentId": "2"},
        {"nodepoolName": "h100"},
        {"filterByPhases": "Running,Pending"},
        {"filterByPhases": ["Running", "Failed"]},
        {"clusterId": CLUSTER_ID, "nodepoolName": "h100", "filterByPhases": "Running"},
    ],
)
def test_filters_select_what_the_list_shows(client, listed, params):
    phases = params.get("filterByPhases")
    if isinstance(phases, str):
        phases = phases.split(",")

    def kept(item):
        return (
            item["clusterId"] == params.get("clusterId", item["clusterId"])
            and item["departmentId"] == params.get("departmentId", item["departmentId"])
            and ("nodepoolName" not in params or params["nodepoolName"] in item["currentNodePools"])
            and (phases is None or item["phase"] in phases)
        )

    chosen = [w for w in listed if kept(w)]
    assert chosen
    body = _telemetry(client, "WORKLOADS_COUNT", ("DepartmentId",), **params)
    assert _by_group(body) == expected_values(chosen, ("DepartmentId",), lambda w: 1)


def test_csv_gives_the_same_numbers(client, listed):
    grouping = ("Type", "CurrentNodepools")
    json_body = _telemetry(client, "GPU_ALLOCATION", grouping)
    response = client.get(
        URL,
        params={"telemetryType": "GPU_ALLOCATION", "groupBy": ",".join(grouping)},
        headers={"Accept": "text/csv"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == len(json_body["values"])
    from_csv = {(r["Type"], r["CurrentNodepools"]): float(r["value"]) for r in rows}
    assert from_csv == _by_group(json_body)
    assert {r["type"] for r in rows} == {"GPU_ALLOCATION"}


def test_allocation_ratio_is_allocated_over_requested(client, engine):
    insert(
        engine,
        [
            workload(
                departmentId="1",
                allocatedResources={"gpu": 1.0},
                workloadRequestedResources={"gpu": {"request": 2.0}},
            ),
            workload(
                departmentId="1",
                allocatedResources={"gpu": 0.5},
                workloadRequestedResources={"gpu": {"request": 2.0}},
            ),
            workload(
                departmentId="2",
                allocatedResources={"gpu": 3.0},
                workloadRequestedResources={"gpu": {"request": 3.0}},
            ),
            workload(
                departmentId="3",
                allocatedResources={"gpu": 0.0},
                workloadRequestedResources={"gpu": {"request": 0.0}},
            ),
            # Asking for nothing now: left out unless phases are named.
            *(
                workload(
                    departmentId="2",
                    phase=phase,
                    allocatedResources={"gpu": 0.0},
                    workloadRequestedResources={"gpu": {"request": 5.0}},
                )
                for phase in ("Completed", "Failed", "Stopped")
            ),
        ],
    )
    body = _telemetry(client, "ALLOCATION_RATIO", ("DepartmentId",))
    assert body["type"] == "ALLOCATION_RATIO"
    # 1.5 of 4 GPUs, 3 of 3; department 3 requested nothing and has no ratio.
    assert _by_group(body) == {("1",): 37.5, ("2",): 100.0}
    named = _telemetry(
        client, "ALLOCATION_RATIO", ("DepartmentId",), filterByPhases="Running,Completed"
    )
    assert _by_group(named) == {("1",): 37.5, ("2",): 37.5}  # 3 of 3 + 5


def test_pending_time_distribution_buckets(client, engine):
    now = datetime.now(UTC)
    waits = [
        timedelta(minutes=1),
        timedelta(minutes=14),
        timedelta(minutes=20),
        timedelta(hours=3),
        timedelta(days=2),
        timedelta(days=3),
    ]
    insert(
        engine,
        [
            workload(
                phase="Pending",
                phaseUpdatedAt=now - wait,
                currentNodePools=[],
                departmentId=str(1 + i % 2),
            )
            for i, wait in enumerate(waits)
        ]
        + [workload(phase="Running")],
    )
    body = _telemetry(client, "PENDING_TIME_DISTRIBUTION")
    assert [(v["groups"][0]["value"], v["value"]) for v in body["values"]] == [
        ("0-15m", "2"),
        ("15m-1h", "1"),
        ("1h-24h", "1"),
        ("24h+", "2"),
    ]
    assert {v["groups"][0]["key"] for v in body["values"]} == {"PendingTime"}
    grouped = _telemetry(client, "PENDING_TIME_DISTRIBUTION", ("DepartmentId",))
    counts = Counter()
    for value in grouped["values"]:
        bucket, department = value["groups"]
        counts[(bucket["value"], department["value"])] = int(value["value"])
    assert len(grouped["values"]) == 8  # 4 buckets for each department with pending work
    assert counts[("0-15m", "1")] == 1 and counts[("0-15m", "2")] == 1
    assert counts[("24h+", "1")] == 1 and counts[("24h+", "2")] == 1
    assert counts[("15m-1h", "2")] == 0


def test_empty_store_gives_zero(client):
    assert _telemetry(client, "WORKLOADS_COUNT")["values"] == [{"value": "0"}]
    assert _telemetry(client, "WORKLOADS_COUNT", ("Phase",))["values"] == []
    assert len(_telemetry(client, "PENDING_TIME_DISTRIBUTION")["values"]) == 4


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"telemetryType": "WORKLOADS_COUNT", "groupBy": "Phase,Type,Category"}, "groupBy"),
        ({"telemetryType": "WORKLOADS_COUNT", "groupBy": ["Phase", "Type", "Category"]}, "groupBy"),
        ({"telemetryType": "WORKLOADS_COUNT", "groupBy": "Phase,Phase"}, "groupBy"),
        ({"telemetryType": "WORKLOADS_COUNT", "groupBy": "phase"}, "groupBy"),
        ({"telemetryType": "PENDING_TIME_DISTRIBUTION", "groupBy": "Phase,Type"}, "groupBy"),
        ({"telemetryType": "NOPE"}, "telemetryType"),
        ({}, "telemetryType"),
        ({"telemetryType": "WORKLOADS_COUNT", "clusterId": "not-a-uuid"}, "clusterId"),
        ({"telemetryType": "WORKLOADS_COUNT", "clusterId": "' OR 1=1 --"}, "clusterId"),
        (
            {"telemetryType": "WORKLOADS_COUNT", "filterByPhases": "Running,Sleeping"},
            "filterByPhases",
        ),
        ({"telemetryType": "WORKLOADS_COUNT", "departmentId": "x" * 300}, "departmentId"),
        ({"telemetryType": "WORKLOADS_COUNT", "nodepoolName": "a\x01b"}, "nodepoolName"),
    ],
)
def test_bad_parameters_are_400_naming_them(client, params, named):
    response = client.get(URL, params=params)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == 400
    assert f"'{named}'" in body["message"]


def test_odd_but_valid_values_match_nothing(client, listed):
    for params in ({"departmentId": "1' OR '1'='1"}, {"nodepoolName": "пул-%_"}):
        body = _telemetry(client, "WORKLOADS_COUNT", **params)
        assert body["values"] == [{"value": "0"}]


def test_requires_authentication(anonymous_client):
    response = anonymous_client.get(URL, params={"telemetryType": "WORKLOADS_COUNT"})
    assert response.status_code == 401


def test_every_groupby_is_covered():
    assert set(GROUP_FIELDS) == {g.value for g in TelemetryGroupBy}


def test_telemetry_route_is_not_taken_for_a_workload(client):
    response = client.get(URL)
    assert response.status_code == 400
    assert "telemetryType" in response.json()["message"]
