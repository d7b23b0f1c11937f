"""Ninety days of GPU-hours for the demo organisation, written straight into the ledger's
hourly rollups, and the live part: the seeded running and pending workloads begin their
ledger timelines at the anchor, so the ledger carries on from there.

The history is the living demo's fleet at its average: each kind of work a team of
``demo.sim.teams`` submits (and each of its standing services) is one standing "history"
workload (an id of its own, not in the workload list) in that work's node pool, holding each
hour the GPUs ``demo.sim.expected`` works out for it from the same arrival rates, sizes,
durations, quotas, limits and node pools the simulation runs on, give or take a tenth. Its
utilisation and idle share follow the work's character as the simulation's samples do: steady
training busy, bursty workspaces idle between bursts, idle hoarders idle, services following
the day's demand. So the 90 days run on into the simulated day at its levels.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from uuid import NAMESPACE_URL, uuid5

from sqlalchemy.engine import Connection

from gpufleet.core.times import to_ms
from gpufleet.demo.organisation import PROJECTS, Project
from gpufleet.demo.sim.expected import held_at
from gpufleet.demo.sim.records import service_load
from gpufleet.demo.sim.samples import IDLING
from gpufleet.demo.sim.serving import MEAN_POPULARITY
from gpufleet.demo.sim.teams import BURSTY, IDLE, SERVING
from gpufleet.demo.workloads import DemoWorkload
from gpufleet.store.dialect import bulk_append
from gpufleet.store.tables import usage_hourly
from gpufleet.store.usage_ledger import observation_of, start_timelines

HISTORY_DAYS = 90
HOUR_MS = 3_600_000
# The order of the rows ``_rows`` yields.
_COLUMNS = (
    "workload_id", "hour_ms", "nodepool", "cluster_id", "department_id", "project_id",
    "submitter", "type", "gpu_seconds", "cpu_core_seconds", "memory_gib_seconds",
    "pending_seconds", "gpu_utilisation", "idle_share",
)  # fmt: skip
# A bursty workspace is busy in about 3 of 10 windows of 20 minutes (``samples``); the idle-GPU
# rule counts the rest but the first minutes after a burst.
_BURSTY_IDLE = 0.6


def _history_id(project: Project, slot: int) -> str:
    return str(uuid5(NAMESPACE_URL, f"https://demo.gpufleet.invalid/usage/{project.id}/{slot}"))


def _utilisation(character: str, moment: datetime, rng: random.Random) -> tuple[float, float]:
    """(mean GPU utilisation in percent, idle share) of an hour of work of this character."""
    if character == IDLE:
        return 100 * IDLING / 2, rng.uniform(0.95, 1.0)
    if character == BURSTY:
        return rng.uniform(18, 28), rng.uniform(_BURSTY_IDLE - 0.1, _BURSTY_IDLE + 0.1)
    if character == SERVING:
        return 100 * service_load(moment) * MEAN_POPULARITY * rng.uniform(0.9, 1.05), 0.0
    return rng.uniform(82, 92), rng.uniform(0.0, 0.02)


# The organisation grew into its fleet: 90 days ago its teams asked for this share of what they
# ask for now, rising evenly until three days ago. Each project's demand also wanders around
# its trend from hour to hour (a random walk pulled back to it, with a time constant of about
# a day and a half, a spread of about a tenth and never more than a quarter), so no two weeks
# of the history are alike; the wander fades out over the four days before those three. The
# last three days are the model's average, which the simulated day goes on from.
_GROWTH_FROM = 0.8
_STEADY_HOURS = 3 * 24
_FADE_HOURS = 4 * 24
_WANDER_PULL = 0.97
_WANDER_STEP = 0.025
_WANDER_MOST = 0.25


def _demand_factors(project: Project, hours: int) -> list[float]:
    """For each hour of the history, ``project``'s demand against the model's average."""
    rng = random.Random(f"demo-usage-demand/{project.id}")
    ramp = max(hours - _STEADY_HOURS, 1)
    wander, factors = 0.0, []
    for index in range(hours + 1):
        wander = _WANDER_PULL * wander + rng.gauss(0.0, _WANDER_STEP)
        fade = min(max(ramp - index, 0) / _FADE_HOURS, 1.0)
        trend = 1.0 - (1.0 - _GROWTH_FROM) * max(ramp - index, 0) / ramp
        wander = min(max(wander, -_WANDER_MOST), _WANDER_MOST)
        factors.append(trend * (1.0 + fade * wander))
    return factors


def _rows(project: Project, start: datetime, hours: int, tail_s: float) -> Iterator[tuple]:
    rngs: dict[int, random.Random] = {}
    factors = _demand_factors(project, hours)
    for index in range(hours + 1):
        seconds = 3600.0 if index < hours else tail_s
        if seconds <= 0:
            break
        moment = start + timedelta(hours=index)
        held = [h for h in held_at(moment) if h.team.project is project]
        demand = factors[index]
        for slot, share in enumerate(held):
            rng = rngs.setdefault(slot, random.Random(f"demo-usage/{project.id}/{slot}"))
            team, work = share.team, share.work
            # Less demand holds less; more waits, since the model's average already holds
            # what the quotas and the pool's GPUs let it.
            gpus = share.gpus * min(demand, 1.0)
            waiting = share.waiting * demand + share.gpus * max(demand - 1.0, 0.0)
            gpu_s = round(gpus * rng.uniform(0.9, 1.1), 2) * seconds
            busy, idle = _utilisation(work.character, moment, rng)
            runs = sum(work.pods) / len(work.pods) * sum(work.gpus) / len(work.gpus)
            pending = waiting / runs * seconds if runs else 0.0
            yield (
                _history_id(project, slot), to_ms(moment), work.pool,
                project.department.cluster.id, project.department.id, project.id,
                team.people[slot % len(team.people)], work.kind.type,
                gpu_s, gpu_s * 8, gpu_s * 64, pending, round(busy, 1), round(idle, 3),
            )  # fmt: skip


def write_usage_history(conn: Connection, anchor: datetime, days: int = HISTORY_DAYS) -> int:
    """Rollups for the ``days`` before ``anchor`` (the last, partial hour up to it)."""
    end_hour = anchor.replace(minute=0, second=0, microsecond=0)
    start = end_hour - timedelta(days=days)
    hours = days * 24
    tail = (anchor - end_hour).total_seconds()
    rows = (row for project in PROJECTS for row in _rows(project, start, hours, tail))
    return bulk_append(conn, usage_hourly, _COLUMNS, rows)


def start_live_usage(conn: Connection, batch: list[DemoWorkload], anchor: datetime) -> None:
    """The seeding hook: the batch's workloads begin their ledger timelines at the anchor."""
    observations = [observation_of(w.wire, anchor) for w in batch if not w.wire.get("deletedAt")]
    start_timelines(conn, [o for o in observations if o.state.accrues])
