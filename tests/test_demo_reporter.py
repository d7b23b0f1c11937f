"""What the demo's reporter sends: the simulation's steps as an agent's ingest requests."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from gpufleet.core.times import format_rfc3339
from gpufleet.demo.organisation import CLUSTERS, RESEARCH
from gpufleet.demo.sim.engine import Simulation
from gpufleet.demo.sim.records import queues
from gpufleet.demo.sim.reporter import Reporter
from gpufleet.demo.sim.teams import TEAMS

START = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)


class Recorder:
    """A poster that keeps every body it is given."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Mapping[str, Any]]] = []

    def post(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        self.sent.append((path, body))
        return {"accepted": 0, "stale": 0, "deleted": 0, "refused": []}


def test_deletions_are_sent_with_their_simulated_time():
    posters = {cluster.id: Recorder() for cluster in CLUSTERS}
    reporter = Reporter(posters, TEAMS)
    simulation = Simulation(11, START)
    deleted: dict[str, str] = {}
    while len(deleted) < 3:
        step = simulation.step()
        reporter.add(step)
        deleted.update((workload_id, format_rfc3339(step.at)) for _, workload_id in step.deleted)
    reporter.flush()
    sent = {
        item["id"]: item["observedAt"]
        for poster in posters.values()
        for path, body in poster.sent
        if path.endswith("/workloads")
        for item in body.get("deletions", [])
    }
    assert sent == deleted
    assert not any(body.get("deletedIds") for p in posters.values() for _, body in p.sent)


def test_one_department_is_guaranteed_less_than_it_promises_its_projects():
    """The demo shows an over-subscribed department: research's projects are promised 64 H100s
    and research 48; every other department is guaranteed its projects' quotas added up."""
    sent = [q for cluster in CLUSTERS for q in queues(TEAMS, cluster.id, START)["queues"]]
    promised: dict[tuple[str, str], float] = {}
    guaranteed: dict[tuple[str, str], float] = {}
    for queue in sent:
        unit = queue["orgUnit"]
        for quota in queue["quotas"]:
            if unit["type"] == "department":
                guaranteed[unit["id"], quota["nodePool"]] = quota["gpu"]["deserved"]
            else:
                key = (unit["departmentId"], quota["nodePool"])
                promised[key] = promised.get(key, 0.0) + quota["gpu"]["deserved"]
    assert promised.keys() == guaranteed.keys()
    over = {
        key: (promised[key], guaranteed[key])
        for key in promised
        if promised[key] != guaranteed[key]
    }
    assert over == {(RESEARCH.id, "h100"): (64, 48)}
