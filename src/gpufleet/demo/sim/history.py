"""The clusters' history of the simulated past: the inventory samples the server's sampler
records of the present (GPUs total, allocated and free, quotas, workloads per cluster, node pool
and project), taken at the simulated moments the demo has just reported.

Right after a report the store holds the fleet as it was at that simulated moment, so sampling
it then gives the history a server would have recorded had it been running. While the demo is
behind the clock it holds the backfill lease, so the server's own sampler does not label the
store's past state with the present time; the lease is given up once the demo reaches the
present, and the server samples from then on.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine

from gpufleet.core.times import to_ms
from gpufleet.store.inventory_samples import BACKFILL_LEASE, sample_inventory
from gpufleet.store.leases import release_lease, take_lease

HOLDER = "demo-simulation"
# The lease outlives a stalled demo by this much wall time at most (ms).
TERM_MS = 5 * 60_000
# At most one sample per this much simulated time (a sped-up demo reports every second).
EVERY = timedelta(minutes=5)


class FleetHistory:
    """Samples the store's figures at reported simulated moments, holding the backfill lease."""

    def __init__(self, engine: Engine, interval_seconds: int, *, every: timedelta = EVERY) -> None:
        self.engine = engine
        self.interval_seconds = max(interval_seconds, 1)
        self.every = every
        self._last: datetime | None = None

    def reported(self, moment: datetime) -> None:
        """The store now shows the fleet at ``moment``: sample it (at most once per
        ``every``), renewing the lease."""
        if self._last is not None and moment - self._last < self.every:
            return
        self._last = moment
        with self.engine.begin() as conn:
            take_lease(conn, BACKFILL_LEASE, HOLDER, to_ms(datetime.now(UTC)), TERM_MS)
            sample_inventory(conn, moment, self.interval_seconds)

    def present(self, moment: datetime) -> None:
        """The demo reached the present (or stops) at ``moment``: its last sample, then the
        server's sampler takes over."""
        with self.engine.begin() as conn:
            sample_inventory(conn, moment, self.interval_seconds)
            release_lease(conn, BACKFILL_LEASE, HOLDER)
