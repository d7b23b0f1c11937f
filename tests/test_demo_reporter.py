"""What the demo's reporter sends: the simulation's steps as an agent's ingest requests."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from gpufleet.core.times import format_rfc3339
from gpufleet.demo.organisation import CLUSTERS
from gpufleet.demo.sim.engine import Simulation
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
