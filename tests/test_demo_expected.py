"""The fleet's expected holdings, worked out from the teams' parameters, agree with what the
simulation holds once it has run for a day (the 90 days of usage history are drawn at them)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gpufleet.demo.sim.engine import Simulation
from gpufleet.demo.sim.expected import held_at
from gpufleet.demo.sim.fleet import GPUS_PER_NODE, build_nodes

MONDAY = datetime(2026, 11, 30, tzinfo=UTC)
# Ticks of 30 s between two looks at the simulated fleet.
EVERY = 10


def _expected(moment: datetime) -> float:
    return sum(held.gpus for held in held_at(moment))


@pytest.fixture(scope="module")
def tuesday() -> list[float]:
    """GPUs the simulation holds in each hour of its second day (Tuesday), on average."""
    simulation = Simulation(4, MONDAY)
    per_hour = [0.0] * 48
    for tick in range(2 * 2880):
        simulation.step()
        if tick % EVERY == 0:
            held = sum(job.requested_gpus for job in simulation.jobs.values() if job.placed)
            per_hour[tick // 120] += held / (120 / EVERY)
    return per_hour[24:]


def test_a_day_holds_what_the_teams_parameters_say(tuesday):
    expected = [_expected(MONDAY + timedelta(days=1, hours=hour)) for hour in range(24)]
    assert sum(expected) == pytest.approx(sum(tuesday), rel=0.15)
    assert max(expected) == pytest.approx(max(tuesday), rel=0.15)
    for hour, (want, got) in enumerate(zip(expected, tuesday, strict=True)):
        assert want == pytest.approx(got, rel=0.35), hour


def test_weekends_are_quieter_and_the_fleet_never_overfull():
    def day(offset: int) -> float:
        return sum(_expected(MONDAY + timedelta(days=offset, hours=h)) for h in range(24))

    assert day(5) < 0.75 * day(1) and day(6) < 0.75 * day(1)
    capacity = GPUS_PER_NODE * sum(1 for node in build_nodes() if node.schedulable)
    week = [_expected(MONDAY + timedelta(hours=hour)) for hour in range(7 * 24)]
    assert max(week) <= capacity
    # The week repeats.
    later = MONDAY + timedelta(days=7, hours=13)
    assert _expected(later) == _expected(later - timedelta(days=7))
