"""One warning per backoff period while the Kubernetes API fails, not one per kind per retry.

Every watcher reports its failures and successes here. The first failure is a warning; later
ones within ``period`` are counted and logged at debug, and the next warning says how many
kinds were failing meanwhile. The first success after an outage is logged once at info.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger("gpufleet.agent.watch")


class ApiOutage:
    """Shared by the watchers of one agent."""

    def __init__(self, period: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.period = period
        self._clock = clock
        self._lock = threading.Lock()
        self._failing: set[str] = set()
        self._next_warning = 0.0

    def failed(self, kind: str, error: BaseException) -> None:
        """A watcher of ``kind`` failed and will retry after its backoff."""
        with self._lock:
            self._failing.add(kind)
            now = self._clock()
            if now < self._next_warning:
                log.debug("watch of %s interrupted: %s", kind, error)
                return
            self._next_warning = now + self.period
            failing = len(self._failing)
        log.warning(
            "Kubernetes API requests failing for %d kind(s), retrying with backoff: %s",
            failing,
            " ".join(str(error).split())[:300],
        )

    def succeeded(self, kind: str) -> None:
        """A request of ``kind`` got an answer."""
        with self._lock:
            if kind not in self._failing:
                return
            self._failing.discard(kind)
            recovered = not self._failing
            if recovered:
                self._next_warning = 0.0
        if recovered:
            log.info("Kubernetes API answering again")
