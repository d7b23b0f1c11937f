"""The metrics routes (a workload's, a pod's, a node's) judge the caller before its parameters:
a caller without read access is refused (403) and a revoked token is not accepted (401) whatever
it asks, so neither learns what the server would have accepted (nor which metrics backend it
runs, which a 400 for an unserved node type names)."""

from __future__ import annotations

import uuid

import pytest

from tests.support.access import bearer, grant, new_service_account, token_for
from tests.support.factories import insert, workload

HOUR = {"start": "2024-05-01T12:00:00Z", "end": "2024-05-01T13:00:00Z"}


@pytest.fixture
def callers(client, engine):
    """A workload, and the headers of a caller without rules and of a disabled account."""
    workload_id = insert(engine, [workload()])[0]["id"]
    nobody = new_service_account(client, "nobody")
    without_rules = bearer(token_for(client, nobody["clientId"], nobody["clientSecret"]))
    viewer = new_service_account(client, "viewer")
    assert grant(client, viewer["clientId"], "viewer", "tenant").status_code == 201
    revoked = bearer(token_for(client, viewer["clientId"], viewer["clientSecret"]))
    disabled = client.patch(f"/api/v1/service-accounts/{viewer['id']}", json={"enabled": False})
    assert disabled.status_code in (200, 204), disabled.text
    return workload_id, without_rules, revoked


def _asks(workload_id: str) -> list[tuple[str, dict]]:
    node, pod = uuid.uuid4(), uuid.uuid4()
    workload_path = f"/api/v1/workloads/{workload_id}/metrics"
    return [
        (workload_path, {**HOUR, "metricType": "GPU_UTILIZATION"}),
        ("/api/v1/workloads/not-a-uuid/metrics", {**HOUR, "metricType": "GPU_UTILIZATION"}),
        (workload_path, {**HOUR, "metricType": "NOT_A_TYPE"}),
        (workload_path, {"metricType": "GPU_UTILIZATION"}),  # no start
        (f"/api/v1/workloads/{workload_id}/pods/xyz/metrics", {**HOUR, "metricType": "x"}),
        (f"/api/v1/workloads/{workload_id}/pods/{pod}/metrics", HOUR),
        (f"/api/v1/nodes/{node}/metrics", {**HOUR, "metricType": "GPU_UTILIZATION"}),
        (f"/api/v1/nodes/{node}/metrics", {**HOUR, "metricType": "GPU_ALLOCATION_PER_GPU"}),
        ("/api/v1/nodes/not-a-uuid/metrics", {"metricType": "nothing"}),
    ]


def test_the_caller_is_judged_before_its_parameters(client, callers):
    workload_id, without_rules, revoked = callers
    for path, params in _asks(workload_id):
        refused = client.get(path, params=params, headers=without_rules)
        assert refused.status_code == 403, (path, params, refused.text)
        assert "metrics backend" not in refused.text
        unaccepted = client.get(path, params=params, headers=revoked)
        assert unaccepted.status_code == 401, (path, params, unaccepted.text)
