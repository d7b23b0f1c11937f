"""Starting the living demo beside a server: keys, the demo clusters' data rebuilt (what an
earlier run reported is deleted, the usage history before the simulated day written), then the
simulation reported to the server in a background thread."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.engine import Engine

from gpufleet.demo.organisation import CLUSTERS
from gpufleet.demo.sim.history import FleetHistory
from gpufleet.demo.sim.keys import AgentKey, demo_agent_keys
from gpufleet.demo.sim.live import PAST, DemoStatus, LiveDemo, on_tick
from gpufleet.demo.sim.reporter import Poster, Reporter
from gpufleet.demo.sim.teams import TEAMS
from gpufleet.demo.usage_history import write_usage_history
from gpufleet.store.cluster_data import delete_cluster_data, has_cluster_data
from gpufleet.store.clusters import account_usage_from

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
    history_interval_seconds: int = 0,
) -> RunningDemo:
    """Prepare the store (organisation, agent keys, the demo clusters' data rebuilt with 90
    days of usage before the simulated day) and report the simulation through
    ``clients(keys)`` in a daemon thread. ``wait_ready`` returns once the server answers, so
    the demo's work does not slow its start. With ``history_interval_seconds`` (the server's
    sampling interval) the clusters' history of the past is sampled as it is reported."""
    status = DemoStatus(seed, speed)
    stop = threading.Event()

    def run() -> None:
        try:
            if wait_ready is not None:
                wait_ready()
            now = datetime.now(UTC)
            keys = demo_agent_keys(engine, now)
            start = on_tick(now - PAST)
            rebuild(engine, start)
            history = None
            if history_interval_seconds > 0:
                history = FleetHistory(engine, history_interval_seconds)
            reporter = Reporter(clients(keys), TEAMS)
            demo = LiveDemo(
                reporter, seed=seed, speed=speed, status=status, history=history, start=start
            )
            demo.run(stop)
        except Exception as exc:  # the server goes on serving what was reported
            log.exception("the demo simulation failed")
            status.update(state="failed", error=f"{type(exc).__name__}: {exc}")

    thread = threading.Thread(target=run, name="demo-simulation", daemon=True)
    thread.start()
    return RunningDemo(status, thread, stop)


def rebuild(engine: Engine, start: datetime) -> None:
    """Start the demo clusters' data afresh: an earlier run's workloads, samples, events,
    GPU-hours and cluster history are deleted (its simulated day would overlap the new one and
    count twice), then the 90 days of usage before the new simulated day (from ``start``) are
    written, and the ledger accounts the demo clusters' workloads from ``start`` on (those
    already there are reported with their past, which the history holds)."""
    ids = [cluster.id for cluster in CLUSTERS]
    with engine.begin() as conn:
        if has_cluster_data(conn, ids):
            deleted = delete_cluster_data(conn, ids)
            log.info("deleted %d rows of the previous demo run", deleted)
        write_usage_history(conn, start)
        account_usage_from(conn, ids, start)
