"""The living demo reported through the real ingest API, with one agent key per cluster: what
the API answers afterwards agrees with the simulation (phases and their history, pods, node
allocation, project quotas and allocation, samples) and the clusters are connected."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from gpufleet.agent.push import IngestClient
from gpufleet.demo.organisation import CLUSTERS
from gpufleet.demo.sim.keys import account_name, demo_agent_keys
from gpufleet.demo.sim.lifecycle import HOLDING, SAMPLED
from gpufleet.demo.sim.live import LiveDemo
from gpufleet.demo.sim.reporter import Reporter
from gpufleet.demo.sim.scheduler import Usage
from gpufleet.demo.sim.teams import TEAMS
from tests.support.shared_app import admin_client, shared_app

PAST = timedelta(minutes=90)


@pytest.fixture(scope="module")
def reported(request, tmp_path_factory):
    """An hour and a half of the demo reported into a fresh server; the demo and an admin client."""
    with shared_app(request, tmp_path_factory) as app, TestClient(app) as agents:
        keys = demo_agent_keys(app.state.gpufleet.engine, datetime.now(UTC))
        clients = {
            key.cluster_id: IngestClient(
                "http://testserver", key.client_id, key.client_secret, http=agents
            )
            for key in keys
        }
        demo = LiveDemo(Reporter(clients, TEAMS), seed=3, past=PAST)
        demo.begin()
        demo.run_past(threading.Event())
        with admin_client(app) as admin:
            yield demo, admin


def _all(admin, path: str, key: str, **params) -> list[dict]:
    items, offset = [], 0
    while True:
        answer = admin.get(path, params={**params, "offset": offset, "limit": 500})
        assert answer.status_code == 200, answer.text
        page = answer.json()
        items += page[key]
        if page.get("next") is None:
            return items
        offset = page["next"]


def test_every_report_was_accepted_and_the_clusters_are_connected(reported):
    demo, admin = reported
    assert demo.reporter.failures == 0
    clusters = {c["name"]: c for c in admin.get("/api/v1/clusters").json()}
    assert {c.name for c in CLUSTERS} <= set(clusters)
    assert all(clusters[c.name]["status"]["state"] == "Connected" for c in CLUSTERS)
    accounts = {a["name"] for a in admin.get("/api/v1/service-accounts").json()}
    # Only `serve --demo` has a demo status to tell.
    assert admin.get("/api/v1/demo/status").status_code == 404
    assert {account_name(c.name) for c in CLUSTERS} <= accounts


def test_workloads_and_their_histories_are_the_simulations(reported):
    demo, admin = reported
    simulation = demo.simulation
    served = {w["id"]: w for w in _all(admin, "/api/v1/workloads", "workloads")}
    alive = {
        **simulation.jobs,
        **{i: j for i, j in simulation.finished.items() if not j.deleted_at},
    }
    assert set(served) == set(alive)
    for workload_id, job in alive.items():
        assert served[workload_id]["phase"] == job.phase.value, job.name
    # The history of every live workload lists its phases as they happened, newest first.
    for job in list(simulation.jobs.values())[:40]:
        records = _all(admin, f"/api/v1/workloads/{job.id}/history", "records")
        phases = [r["spec"]["phaseUpdate"]["phase"] for r in records
                  if r["meta"]["type"] == "PhaseUpdate"]  # fmt: skip
        assert phases[::-1] == [phase.value for phase, _ in job.history], job.name


def test_pods_are_bound_where_the_scheduler_put_them(reported):
    demo, admin = reported
    running = [j for j in demo.simulation.jobs.values() if j.phase in SAMPLED][:20]
    assert running
    for job in running:
        pods = admin.get(f"/api/v1/workloads/{job.id}/pods").json()["pods"]
        assert {p["name"]: p["nodeName"] for p in pods} == {p.name: p.node.name for p in job.bound}


def test_node_telemetry_and_project_quotas_agree_with_the_fleet(reported):
    demo, admin = reported
    simulation = demo.simulation

    def telemetry(kind: str) -> float:
        answer = admin.get("/api/v1/nodes/telemetry", params={"telemetryType": kind})
        assert answer.status_code == 200, answer.text
        return sum(float(v["value"]) for v in answer.json()["values"])

    allocated = sum(node.gpu_used for node in simulation.nodes)
    assert telemetry("TOTAL_GPUS") == 8 * len(simulation.nodes)
    assert telemetry("ALLOCATED_GPUS") == pytest.approx(allocated)
    assert telemetry("FREE_GPUS") == pytest.approx(8 * len(simulation.nodes) - allocated)
    nodes = _all(admin, "/api/v1/nodes", "nodes")
    assert len(nodes) == len(simulation.nodes)
    assert sum(n["status"] != "Ready" for n in nodes) == sum(not n.ready for n in simulation.nodes)
    holding = [w for w in _all(admin, "/api/v1/workloads", "workloads") if w["phase"] in
               {p.value for p in HOLDING}]  # fmt: skip
    assert sum(w["allocatedResources"]["gpu"] for w in holding) == pytest.approx(allocated)

    usage = Usage(simulation.jobs.values())
    for project in _all(admin, "/api/v1/org-unit/projects", "projects"):
        team = next(t for t in TEAMS if t.project.id == project["id"])
        quotas = {r["nodePool"]["name"]: r["gpu"]["deserved"] for r in project["resources"]}
        assert quotas == team.quota
        for status in project["status"]["nodePoolQuotaStatuses"]:
            held = usage.held.get((team.project.id, status["nodePoolName"]), 0.0)
            assert status["allocated"].get("gpu", 0.0) == pytest.approx(held), project["name"]


def test_running_workloads_and_their_pods_have_samples(reported):
    demo, admin = reported
    end = demo.simulation.now
    window = {"start": (end - PAST).isoformat(), "end": end.isoformat()}
    running = [j for j in demo.simulation.jobs.values() if j.phase in SAMPLED and j.gpus >= 1]
    job = max(running, key=lambda j: j.requested_gpus)
    answer = admin.get(
        f"/api/v1/workloads/{job.id}/metrics",
        params={
            **window,
            "metricType": ["GPU_UTILIZATION", "CPU_USAGE_CORES"],
            "numberOfSamples": 20,
        },
    )
    assert answer.status_code == 200, answer.text
    measured = {m["type"]: m for m in answer.json()["measurements"]}
    assert measured["GPU_UTILIZATION"]["values"] and measured["CPU_USAGE_CORES"]["values"]
    pod = job.bound[0]
    answer = admin.get(
        f"/api/v1/workloads/{job.id}/pods/{pod.uid}/metrics",
        params={**window, "metricType": "GPU_UTILIZATION", "numberOfSamples": 20},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["measurements"][0]["values"]
