"""What the simulated fleet holds on average at a given hour, worked out from the teams'
parameters instead of simulated: the level the demo's usage history is drawn at, so the 90 days
before the simulated day run at the simulation's own levels.

Each kind of work a team submits arrives at the team's rate times the day's rhythm (as
``Simulation`` draws arrivals), holds its pods' GPUs for a log-uniform duration (as ``submit``
draws it) and, if it is a workspace, is resumed now and then. Services that never end are the
simulated day's: the standing ones and a day of arrivals. The demand of each project
and pool is then bounded as the scheduler bounds it: non-preemptible work by the deserved
quota, everything by the project's limit, and the pool by its ready GPUs, the over-quota share
going to projects in proportion to their excess.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from statistics import fmean

from gpufleet.core.priorities import BUILTIN_PRIORITY_VALUES, PREEMPTIBLE_BELOW
from gpufleet.demo.catalog import CATEGORY_PRIORITIES
from gpufleet.demo.sim.engine import RESUMED, RESUMED_HOURS, STOPPED_HOURS
from gpufleet.demo.sim.fleet import GPUS_PER_NODE, build_nodes
from gpufleet.demo.sim.teams import TEAMS, Team, Work, daily_rhythm

# The step of the arrival integral, in hours.
_STEP = 0.5
# How long after its run a workspace may still be resumed and running, in hours.
_RESUMES_WITHIN = STOPPED_HOURS[1] + RESUMED_HOURS[1]
# Services without an end are the simulated day's: those standing at its start and what a
# day of arrivals adds (the simulation starts anew a day before the server's start).
_ENDLESS_HOURS = 24


@dataclass(frozen=True, slots=True)
class Held:
    """GPUs a kind of work of a team holds on average in an hour, and those it waits for."""

    team: Team
    work: Work
    gpus: float
    waiting: float


def _endless(work: Work) -> bool:
    return work.hours[0] >= 100


def _gpus_per_run(work: Work) -> float:
    return fmean(work.pods) * fmean(work.gpus)


def _survival(work: Work, hours: float) -> float:
    """Chance that a run of ``work`` still holds its GPUs ``hours`` after it arrived."""
    shortest, longest = work.hours
    if _endless(work):
        return 1.0 if hours < _ENDLESS_HOURS else 0.0
    if hours <= shortest:
        alive = 1.0
    elif hours >= longest:
        alive = 0.0
    else:
        alive = math.log(longest / hours) / math.log(longest / shortest)
    if work.kind.shape == "interactive":
        # Stopped for a while, then perhaps resumed (at the mean times of both).
        resumed = hours - fmean(STOPPED_HOURS) - fmean(work.hours)
        if 0 <= resumed < fmean(RESUMED_HOURS):
            alive += RESUMED
    return alive


def _non_preemptible_share(work: Work) -> float:
    """Share of the work's runs submitted with a priority that cannot be preempted."""
    if work.priority_class is not None:
        return float(BUILTIN_PRIORITY_VALUES[work.priority_class] >= PREEMPTIBLE_BELOW)
    choices = CATEGORY_PRIORITIES[work.kind.category]
    return sum(
        choices.chance(name)
        for name in choices.values
        if BUILTIN_PRIORITY_VALUES[name] >= PREEMPTIBLE_BELOW
    )


def _demand(team: Team, work: Work, moment: datetime) -> float:
    """GPUs the runs of ``work`` submitted before ``moment`` ask for at ``moment``."""
    share = work.weight / sum(w.weight for w in team.work)
    longest = _ENDLESS_HOURS if _endless(work) else work.hours[1] + _RESUMES_WITHIN
    total = 0.0
    for step in range(int(longest / _STEP)):
        ago = (step + 0.5) * _STEP
        arrivals = team.rate * share * daily_rhythm(moment - timedelta(hours=ago)) * _STEP
        total += arrivals * _survival(work, ago)
    return total * _gpus_per_run(work)


@cache
def _capacity() -> dict[tuple[str, str], float]:
    """Ready, schedulable GPUs per (cluster id, pool)."""
    capacity: dict[tuple[str, str], float] = {}
    for node in build_nodes():
        if node.schedulable:
            key = (node.cluster.id, node.pool)
            capacity[key] = capacity.get(key, 0.0) + GPUS_PER_NODE
    return capacity


def held_at(moment: datetime) -> tuple[Held, ...]:
    """Every team's kinds of work (and standing services) with the GPUs they hold and wait
    for in the hour of ``moment``, on average. The rhythm repeats every week, and so does
    this: it is worked out once per hour of the week."""
    return _held_in_week(moment.weekday(), moment.hour)


@cache
def _held_in_week(weekday: int, hour: int) -> tuple[Held, ...]:
    # Any week will do: the middle of the hour in the week of 2024-01-01, a Monday.
    moment = datetime(2024, 1, 1 + weekday, hour, 30, tzinfo=UTC)
    asks: dict[tuple[int, str], list[tuple[Work, float]]] = {}
    within: dict[tuple[int, str], float] = {}
    extra: dict[tuple[int, str], float] = {}
    for t, team in enumerate(TEAMS):
        # Standing services run for good; standing long runs belong to the day's start only.
        standing = [(work, _gpus_per_run(work)) for work in team.standing if _endless(work)]
        regular = [(work, _demand(team, work, moment)) for work in team.work]
        for pool in sorted({work.pool for work, _ in standing + regular}):
            here = [(work, gpus) for work, gpus in standing + regular if work.pool == pool]
            firm = sum(gpus * _non_preemptible_share(work) for work, gpus in here)
            flexible = sum(gpus for _, gpus in here) - firm
            deserved = team.quota.get(pool, 0.0)
            limit = team.limit.get(pool, math.inf)
            # Non-preemptible work only within the deserved GPUs, the rest up to the limit.
            firm = min(firm, deserved)
            key = (t, pool)
            asks[key] = here
            within[key] = min(firm + min(flexible, deserved - firm), limit)
            extra[key] = max(min(firm + flexible, limit) - within[key], 0.0)
    # Beyond their quotas, projects share the pool's spare GPUs by their excess and weight.
    held = dict(within)
    by_pool: dict[tuple[str, str], list[tuple[int, str]]] = {}
    for t, pool in asks:
        by_pool.setdefault((TEAMS[t].cluster.id, pool), []).append((t, pool))
    for key, members in by_pool.items():
        room = max(_capacity().get(key, 0.0) - sum(within[m] for m in members), 0.0)
        weights = {m: extra[m] * TEAMS[m[0]].over_quota_weight for m in members}
        wanted = sum(weights.values())
        for member in members:
            if wanted > room:
                held[member] += min(extra[member], room * weights[member] / wanted)
            else:
                held[member] += extra[member]
    result = []
    for key, here in asks.items():
        total = sum(gpus for _, gpus in here)
        scale = held[key] / total if total else 0.0
        team = TEAMS[key[0]]
        result.extend(Held(team, work, gpus * scale, gpus * (1 - scale)) for work, gpus in here)
    return tuple(result)
