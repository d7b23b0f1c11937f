"""Every telemetry type x groupBy (none, each one, every pair) x filter parameter answers.

No combination may answer 5xx; each answer agrees with the workloads the list endpoint returns
for the same filters. One app and one organisation serve the whole module.
"""

from __future__ import annotations

from collections import defaultdict

import pytest
from fastapi.testclient import TestClient

from gpufleet.store.telemetry import PENDING_TIME_BUCKETS, TelemetryType
from tests.support.factories import CLUSTER_ID
from tests.support.shared_app import admin_client, shared_app
from tests.support.telemetry_organisation import (
    ALL_GROUPINGS,
    OTHER_CLUSTER,
    expected_values,
    group_keys,
    seed_organisation,
)

URL = "/api/v1/workloads/telemetry"
GROUPINGS = [(), *ALL_GROUPINGS]
FILTERS = {
    "none": {},
    "clusterId": {"clusterId": OTHER_CLUSTER},
    "departmentId": {"departmentId": "2"},
    "nodepoolName": {"nodepoolName": "a100"},
    "filterByPhases": {"filterByPhases": "Running,Pending"},
    "all": {
        "clusterId": CLUSTER_ID,
        "departmentId": "1",
        "nodepoolName": "h100",
        "filterByPhases": "Running,Pending,Failed",
    },
}


@pytest.fixture(scope="module")
def client(request, tmp_path_factory):
    with shared_app(request, tmp_path_factory) as app, admin_client(app) as client:
        seed_organisation(app.state.gpufleet.engine)
        yield client


@pytest.fixture(scope="module")
def listed(client: TestClient) -> list[dict]:
    response = client.get("/api/v1/workloads", params={"limit": 500})
    assert response.status_code == 200
    return response.json()["workloads"]


def _kept(item: dict, params: dict) -> bool:
    phases = params.get("filterByPhases")
    return (
        item["clusterId"] == params.get("clusterId", item["clusterId"])
        and item["departmentId"] == params.get("departmentId", item["departmentId"])
        and ("nodepoolName" not in params or params["nodepoolName"] in item["currentNodePools"])
        and (phases is None or item["phase"] in phases.split(","))
    )


def _allocated(item: dict) -> float:
    return item["allocatedResources"]["gpu"]


def _requested(item: dict) -> float:
    return item["workloadRequestedResources"]["gpu"]["request"]


def _expected(
    kind: TelemetryType, items: list[dict], grouping: tuple[str, ...], named_phases: bool
) -> dict:
    """What telemetry should answer, keyed by group values (the bucket first when pending)."""
    match kind:
        case TelemetryType.WORKLOADS_COUNT:
            values = expected_values(items, grouping, lambda _w: 1)
            return values or ({} if grouping else {(): 0.0})
        case TelemetryType.GPU_ALLOCATION:
            values = expected_values(items, grouping, _allocated)
            return values or ({} if grouping else {(): 0.0})
        case TelemetryType.ALLOCATION_RATIO:
            # Unless phases are named, of the workloads asking for GPUs now.
            if not named_phases:
                items = [w for w in items if w["phase"] not in ("Completed", "Failed", "Stopped")]
            allocated = expected_values(items, grouping, _allocated)
            requested = expected_values(items, grouping, _requested)
            return {k: 100 * allocated[k] / v for k, v in requested.items() if v > 0}
    raise AssertionError(kind)


def _pending_totals(body: dict) -> dict:
    """Pending workloads per group, summed over the time buckets, which must all be present."""
    totals: dict[tuple[str, ...], float] = defaultdict(float)
    buckets: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for value in body["values"]:
        bucket, *groups = value["groups"]
        key = tuple(g["value"] for g in groups)
        totals[key] += float(value["value"])
        buckets[key].append(bucket["value"])
    assert all(b == [label for label, _ in PENDING_TIME_BUCKETS] for b in buckets.values())
    return dict(totals)


@pytest.mark.parametrize("filter_name", FILTERS)
@pytest.mark.parametrize("kind", list(TelemetryType))
def test_every_grouping_answers_what_the_list_shows(client, listed, kind, filter_name):
    params = FILTERS[filter_name]
    chosen = [w for w in listed if _kept(w, params)]
    assert chosen, "each filter must keep some workloads"
    for grouping in GROUPINGS:
        query = {"telemetryType": kind.value, **params}
        if grouping:
            query["groupBy"] = ",".join(grouping)
        response = client.get(URL, params=query)
        assert response.status_code < 500, (grouping, response.text)
        if kind is TelemetryType.PENDING_TIME_DISTRIBUTION and len(grouping) == 2:
            # The time bucket is the first group, so one groupBy is the most it takes.
            assert response.status_code == 400, response.text
            assert "'groupBy'" in response.json()["message"]
            continue
        assert response.status_code == 200, (grouping, response.text)
        body = response.json()
        if kind is TelemetryType.PENDING_TIME_DISTRIBUTION:
            pending = [w for w in chosen if w["phase"] == "Pending"]
            expected = expected_values(pending, grouping, lambda _w: 1)
            assert _pending_totals(body) == (expected or ({} if grouping else {(): 0.0}))
            continue
        answered = {
            tuple(g["value"] for g in v.get("groups", [])): float(v["value"])
            for v in body["values"]
        }
        expected = _expected(kind, chosen, grouping, "filterByPhases" in params)
        assert answered.keys() == expected.keys(), grouping
        for key, value in expected.items():
            assert answered[key] == pytest.approx(value), (grouping, key)


def test_the_grid_covers_node_pools_of_several_workloads(listed):
    """The nodepool filter with the node-pool grouping is the case that used to fail."""
    chosen = [w for w in listed if _kept(w, FILTERS["nodepoolName"])]
    assert any(len(group_keys(w, ("CurrentNodepools",))) > 1 for w in chosen)
