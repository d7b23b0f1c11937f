"""Cluster and node-pool metrics from a real Prometheus on the generated exporter series.

On the Prometheus backend, capacity (kube-state-metrics) and utilisation (dcgm-exporter,
cAdvisor) over the cluster's live nodes come from Prometheus: each type must equal what
Prometheus returns for the documented expression over those nodes (written out here), per pool
too; the figures only the inventory samples know (allocation, quota) stay with them.
"""

from __future__ import annotations

import uuid

import pytest

from gpufleet.api.app import create_app
from gpufleet.metrics.cluster_promql import CLUSTER_QUERIES
from tests.support.agent_reports import CLUSTER_ID, node_path, node_report
from tests.support.prometheus_app import (
    client_for,
    close_to,
    direct,
    epoch,
    grid,
    iso,
    prometheus_settings,
)
from tests.support.reference import ReferenceValidators, load_reference

pytest_plugins = ["tests.support.prometheus_fixtures"]

_BLANK = "140737488355328"
POOLS = {"node-a": "a100", "node-b": "a100", "node-c": "h100"}
WINDOW = (1800, 9000, 20)


def _expressions(nodes: str) -> dict[str, str]:
    """The documented expressions over the nodes matched by the regex ``nodes``."""
    node = f'node=~"{nodes}"'
    dcgm = f'Hostname=~"{nodes}"'

    def per_gpu(field: str) -> str:
        return f"avg by (Hostname, gpu) ({field}{{{dcgm}}} < {_BLANK})"

    used, free = per_gpu("DCGM_FI_DEV_FB_USED"), per_gpu("DCGM_FI_DEV_FB_FREE")
    containers = f'{node}, container!="", container!="POD"'
    return {
        "TOTAL_GPU": f'sum(kube_node_status_capacity{{{node}, resource="nvidia_com_gpu"}})',
        "TOTAL_GPU_NODES": f'count(kube_node_status_capacity{{{node}, resource="nvidia_com_gpu"}}'
        " > 0)",
        "GPU_UTILIZATION": f"avg({per_gpu('DCGM_FI_DEV_GPU_UTIL')})",
        "GPU_MEMORY_UTILIZATION": f"sum({used}) / (sum({used}) + sum({free})) * 100",
        "CPU_UTILIZATION": f"sum(rate(container_cpu_usage_seconds_total{{{containers}}}[{{w}}]))"
        f' / sum(kube_node_status_capacity{{{node}, resource="cpu"}}) * 100',
        "CPU_MEMORY_UTILIZATION": f"sum(container_memory_working_set_bytes{{{containers}}})"
        f' / sum(kube_node_status_capacity{{{node}, resource="memory"}}) * 100',
    }


def _same_as_prometheus(prom, measurements, expression, first, last, step) -> None:
    """One measurement whose points are those Prometheus gives for ``expression``."""
    (series,) = direct(prom, expression, first, last, step)
    (measurement,) = measurements
    values = measurement["values"]
    assert values, "the comparison needs data"
    assert [epoch(v["timestamp"]) for v in values] == [ts for ts, _ in series["values"]]
    assert all(
        close_to(float(v["value"]), float(p))
        for v, (_, p) in zip(values, series["values"], strict=True)
    )


@pytest.fixture(scope="module")
def client(module_database_url, prom):
    settings = prometheus_settings(module_database_url, prom.url)
    with client_for(create_app(settings)) as client:
        nodes = [
            node_report(str(uuid.uuid5(uuid.NAMESPACE_DNS, name)), name=name, nodePool=pool)
            for name, pool in POOLS.items()
        ]
        assert client.post(node_path(), json={"nodes": nodes}).json()["accepted"] == 3
        yield client


def _fetch(client, path: str, types, start, end, samples=WINDOW[2], status=200, **params):
    response = client.get(
        path,
        params={"metricType": ",".join(types), "start": iso(start), "end": iso(end),
                "numberOfSamples": samples, **params},
    )  # fmt: skip
    assert response.status_code == status, response.text
    return response.json()


CLUSTER_PATH = f"/api/v1/clusters/{CLUSTER_ID}/metrics"


@pytest.mark.parametrize("metric_type", sorted(CLUSTER_QUERIES))
def test_every_prometheus_type_equals_prometheus(client, prom, t0, metric_type):
    start, end, samples = t0 + WINDOW[0], t0 + WINDOW[1], WINDOW[2]
    first, last, step = grid(start, end, samples)
    body = _fetch(client, CLUSTER_PATH, [metric_type], start, end)
    expression = _expressions("node-a|node-b|node-c")[metric_type]
    _same_as_prometheus(prom, body["measurements"], expression, first, last, step)
    by_pool = _fetch(client, CLUSTER_PATH, [metric_type], start, end, groupBy="Nodepool")
    assert [m["groups"][0]["value"] for m in by_pool["measurements"]] == ["a100", "h100"]
    a100 = [m for m in by_pool["measurements"] if m["groups"][0]["value"] == "a100"]
    _same_as_prometheus(prom, a100, _expressions("node-a|node-b")[metric_type], first, last, step)


def test_capacity_by_pool_by_hand_and_in_the_reference_shape(client, t0):
    validators = ReferenceValidators(load_reference("runai-adjacent-openapi.json"))
    body = _fetch(client, CLUSTER_PATH, ["TOTAL_GPU"], t0, t0 + 600, 1, groupBy="Nodepool")
    totals = {m["groups"][0]["value"]: m["values"][-1]["value"] for m in body["measurements"]}
    assert totals == {"a100": "6", "h100": "2"}
    errors = list(validators.response("/api/v1/clusters/{clusterUuid}/metrics").iter_errors(body))
    assert errors == [], errors[:3]
    path = f"/api/v1/clusters/{CLUSTER_ID}/nodepools/h100/metrics"
    pool = _fetch(client, path, ["TOTAL_GPU", "GPU_UTILIZATION", "ALLOCATED_GPU"], t0, t0 + 600, 1)
    by_type = {m["type"]: m for m in pool["measurements"]}
    assert by_type["TOTAL_GPU"]["labels"] == {"nodepool": "h100"}
    assert by_type["TOTAL_GPU"]["values"][-1]["value"] == "2"
    # node-c's GPUs: idle-0's at 0 percent and an unassigned one at 0 percent.
    assert by_type["GPU_UTILIZATION"]["values"][-1]["value"] == "0"
    # Allocation is the inventory samples' (none were taken here): no points, no failure.
    assert by_type["ALLOCATED_GPU"]["values"] == []
    reference = "/api/v1/clusters/{clusterUuid}/nodepools/{nodepoolName}/metrics"
    assert list(validators.response(reference).iter_errors(pool)) == []


def test_types_without_any_source_are_still_partial(client, t0):
    response = client.get(
        CLUSTER_PATH,
        params={"metricType": "TOTAL_GPU,GPU_UTILIZATION_DISTRIBUTION", "start": iso(t0),
                "end": iso(t0 + 600)},
    )  # fmt: skip
    assert response.status_code == 207
    assert "GPU_UTILIZATION_DISTRIBUTION" in response.headers["X-Gpufleet-Metric-Failures"]
