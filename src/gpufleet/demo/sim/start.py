"""Starting the living demo beside a server: keys, the usage history before the simulated
day, then the simulation reported to the server in a background thread."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gpufleet.demo.sim.keys import AgentKey, demo_agent_keys
from gpufleet.demo.sim.live import PAST, DemoStatus, LiveDemo
from gpufleet.demo.sim.reporter import Poster, Reporter
from gpufleet.demo.sim.teams import TEAMS
from gpufleet.demo.usage_history import write_usage_history
from gpufleet.store.tables import workloads

log = logging.getLogger(__name__)


# Makes one ingest client per cluster from the agents' keys (the CLI uses the agent's).
ClientFactory = Callable[[list[AgentKey]], Mapping[str, Poster]]


@dataclass
class RunningDemo:
    """A demo simulation reporting in a background thread."""

    status: DemoStatus
    thread: threading.Thread
    stop_event: threading.Event

    def stop(self, timeout: float = 10.0) -> None:
        self.stop_event.set()
        self.thread.join(timeout)


def start_demo(
    engine: Engine,
    clients: ClientFactory,
    *,
    seed: int,
    speed: float = 1.0,
    wait_ready: Callable[[], None] | None = None,
) -> RunningDemo:
    """Prepare the store (organisation, agent keys, 90 days of usage before the simulated day
    on a fresh store) and report the simulation through ``clients(keys)`` in a daemon
    thread. ``wait_ready`` returns once the server answers, so the demo's work does not slow
    its start."""
    status = DemoStatus(seed, speed)
    stop = threading.Event()

    def run() -> None:
        try:
            if wait_ready is not None:
                wait_ready()
            now = datetime.now(UTC)
            keys = demo_agent_keys(engine, now)
            if _fresh(engine):
                with engine.begin() as conn:
                    write_usage_history(conn, now - PAST)
            reporter = Reporter(clients(keys), TEAMS)
            demo = LiveDemo(reporter, seed=seed, speed=speed, status=status)
            demo.run(stop)
        except Exception as exc:  # the server goes on serving what was reported
            log.exception("the demo simulation failed")
            status.update(state="failed", error=f"{type(exc).__name__}: {exc}")

    thread = threading.Thread(target=run, name="demo-simulation", daemon=True)
    thread.start()
    return RunningDemo(status, thread, stop)


def _fresh(engine: Engine) -> bool:
    with engine.connect() as conn:
        return conn.execute(sa.select(workloads.c.id).limit(1)).first() is None
