"""Running the living demo: 24 hours of past simulated fast, then the present at a chosen speed.

The past is the same simulation run as fast as the machine allows, reported through the same
ingest API, with samples coarser the older they are (``PAST_SAMPLING``).
Reported times are never ahead of the clock (the server refuses such reports), so a speed
above 1 starts the live part behind the present by ``lead``: it runs at that speed until it
reaches the present, then in real time.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from gpufleet.core.times import format_rfc3339
from gpufleet.demo.sim.engine import TICK, Simulation
from gpufleet.demo.sim.reporter import NODE_AGE_DAYS, Reporter
from gpufleet.demo.sim.teams import TEAMS

PAST = timedelta(hours=24)
# Simulated before the past: long enough for the fleet to fill up from its standing work (it
# holds a third of the usage history's level at its first tick and about nine tenths twelve
# hours on), so the reported day goes on from the history without a dip. Only the workloads
# still there at its end are reported, with their past.
WARM_UP = timedelta(hours=12)
# How often the past is sampled, by how long before the present, in ticks: the workloads and
# the pods every tick in the last 10 minutes, every 5 minutes in the last 2 hours, every 10
# minutes before that. Metric ingest is the slow part of reporting the past; this keeps it to a
# few hundred thousand samples. Ten minutes apart is as sparse as the idle-GPU rule can still
# call a sample idle (it needs the GPU to have reported within two idle windows before), so
# idle GPU-hours of the far past are measured too, and as sparse as the dashboard's charts
# still draw as one line (they break it where samples are more than 15 minutes apart).
PAST_SAMPLING = ((timedelta(minutes=10), 1, 1), (timedelta(hours=2), 10, 10), (PAST, 20, 20))
# Flush the past every this many ticks (fewer, larger requests).
PAST_FLUSH_TICKS = 60
# Wall time a sped-up demo takes to catch up with the present.
CATCH_UP = timedelta(minutes=20)
# Queues are reported again this often (simulated time).
QUEUE_EVERY = timedelta(hours=1)
# Live samples: at most this many sample rounds per wall-clock minute at high speeds.
LIVE_ROUNDS_PER_MINUTE = 15


class History(Protocol):
    """What keeps the clusters' history of the reported past (``sim.history.FleetHistory``)."""

    def reported(self, moment: datetime) -> None: ...

    def present(self, moment: datetime) -> None: ...


def lead_for(speed: float) -> timedelta:
    """How far behind the present a demo at ``speed`` starts its live part."""
    if speed <= 1:
        return timedelta(0)
    return min(PAST - timedelta(hours=1), CATCH_UP * (speed - 1))


@dataclass
class DemoStatus:
    """What the demo is doing, for ``GET /api/v1/demo/status``."""

    seed: int
    speed: float
    state: str = "starting"
    history_from: datetime | None = None
    simulated_time: datetime | None = None
    history_complete_at: datetime | None = None
    error: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def wire(self) -> dict[str, Any]:
        with self.lock:
            return {
                "state": self.state,
                "seed": self.seed,
                "speed": self.speed,
                "historyFrom": _time(self.history_from),
                "simulatedTime": _time(self.simulated_time),
                "historyComplete": self.history_complete_at is not None,
                "historyCompletedAt": _time(self.history_complete_at),
                "reported": dict(self.counts),
                "error": self.error,
            }

    def update(self, **values: Any) -> None:
        with self.lock:
            for name, value in values.items():
                setattr(self, name, value)


def _time(value: datetime | None) -> str | None:
    return None if value is None else format_rfc3339(value)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class LiveDemo:
    """One simulation reported by one reporter: the past, then the present."""

    def __init__(
        self,
        reporter: Reporter,
        *,
        seed: int,
        speed: float = 1.0,
        clock: Callable[[], datetime] = _utcnow,
        past: timedelta = PAST,
        status: DemoStatus | None = None,
        history: History | None = None,
        start: datetime | None = None,
    ) -> None:
        """``start`` is where the reported past begins (by default ``past`` before the clock),
        on a tick."""
        if speed <= 0:
            raise ValueError("the demo speed must be positive")
        self.reporter = reporter
        self.speed = speed
        self.clock = clock
        start = on_tick(start or clock() - past)
        self.simulation = Simulation(seed, start, TEAMS, warm_up=WARM_UP)
        self.status = status or DemoStatus(seed, speed)
        self.status.update(history_from=start)
        self.history = history
        self._next_queues = start + QUEUE_EVERY

    def run(self, stop: threading.Event) -> None:
        """Report the past, then the present until ``stop`` is set."""
        self.begin()
        try:
            self.run_past(stop)
            self.status.update(state="live")
            self.run_live(stop)
        finally:
            self._reached_present()
        self.status.update(state="stopped")

    def begin(self) -> None:
        """The first report: the nodes, the queues and the workloads already there, each with
        its past from its creation on (its phases, pods and events)."""
        self.status.update(state="history")
        simulation = self.simulation
        nodes_created = simulation.start - timedelta(days=NODE_AGE_DAYS)
        self.reporter.start(simulation.opening(), nodes_created, simulation.before_start)

    def _tick(self, *, sample: bool, pods: bool = True) -> None:
        step = self.simulation.step(sample=sample, pods=pods)
        self.reporter.add(step)
        if step.at >= self._next_queues:
            self.reporter.add_queues(step.at)
            self._next_queues = step.at + QUEUE_EVERY

    def run_past(self, stop: threading.Event) -> None:
        """Simulate as fast as possible up to the start of the live part."""
        lead = lead_for(self.speed)
        ticks = 0
        while not stop.is_set():
            now = self.clock()
            if self.simulation.now + TICK > now - lead:
                break
            ticks += 1
            every, pods_every = _sample_every(now - self.simulation.now)
            self._tick(sample=ticks % every == 0, pods=ticks % pods_every == 0)
            # Flushed at least at every tick the pods are sampled, so the clusters' history is
            # as fine as the pods' samples.
            if ticks % min(pods_every, PAST_FLUSH_TICKS) == 0:
                self._flushed()
        self._flushed()
        if lead == timedelta(0):
            self._complete(self.clock())

    def run_live(self, stop: threading.Event, *, until: datetime | None = None) -> None:
        """Advance with the clock (``speed`` times as fast until the present is reached)."""
        started_wall = time.monotonic()
        started_sim = self.simulation.now
        every = max(1, math.ceil(self.speed * 60 / TICK.total_seconds() / LIVE_ROUNDS_PER_MINUTE))
        ticks = 0
        while not stop.is_set() and (until is None or self.simulation.now < until):
            elapsed = time.monotonic() - started_wall
            present = self.clock()
            ahead = started_sim + timedelta(seconds=elapsed * self.speed)
            target = min(present, ahead)
            # Sped up while catching up with the present; every tick sampled once there.
            cadence = every if ahead < present else 1
            stepped = False
            while self.simulation.now + TICK <= target and not stop.is_set():
                ticks += 1
                self._tick(sample=ticks % cadence == 0)
                stepped = True
            if stepped:
                self._flushed(heartbeat=True)
            if self.status.history_complete_at is None and self.simulation.now + TICK > present:
                self._complete(present)
            wait = TICK.total_seconds() / max(self.speed, 1.0)
            stop.wait(min(wait, 1.0) if self.speed > 1 else wait / 6)

    def _flushed(self, *, heartbeat: bool = False) -> None:
        self.reporter.flush(heartbeat=heartbeat)
        self.status.update(simulated_time=self.simulation.now, counts=dict(self.reporter.pushed))
        if self.history is not None and self.status.history_complete_at is None:
            self.history.reported(self.simulation.now)

    def _complete(self, present: datetime) -> None:
        self.status.update(history_complete_at=present)
        self._reached_present()

    def _reached_present(self) -> None:
        """From here on the server samples the present itself."""
        if self.history is not None:
            history, self.history = self.history, None
            history.present(self.simulation.now)


def _sample_every(before_present: timedelta) -> tuple[int, int]:
    """Ticks between samples of the workloads and of their pods, at this distance from the
    present."""
    return next(
        ((every, pods) for within, every, pods in PAST_SAMPLING if before_present <= within),
        PAST_SAMPLING[-1][1:],
    )


def on_tick(moment: datetime) -> datetime:
    """The moment rounded down to a whole tick (30 s)."""
    seconds = int(moment.timestamp())
    return datetime.fromtimestamp(seconds - seconds % int(TICK.total_seconds()), UTC)
