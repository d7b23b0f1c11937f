"""Admission to the database: a request waits for a connection on the event loop, not in a thread.

A sync route runs in anyio's worker threads, and so does the checkout of its connection
(``deps.open_session``). If requests that wait for a pooled connection held every worker thread,
the requests that already have a connection could not get a thread to finish on, and everything
would stall until the pool timeout answered 503. So a request is first admitted here, on the
event loop and holding no thread: at most as many requests as the pool has connections
(``db_pool_size`` + ``db_max_overflow``) are admitted at once, the others wait their turn in
order of arrival for up to ``db_pool_timeout_seconds`` and are then answered 503 exactly like a
pool timeout. A request keeps its place until its connection is returned (after its answer is
sent), and holds at most one connection at a time (``hand_back`` returns it early to a backend
that takes one of its own).

The worker threads are sized so that the admitted requests cannot take all of them
(``size_worker_threads``): work that holds no connection (checking a bearer token, parsing a
body) always finds a thread, and so does an admitted request. Periodic tasks take their
connections outside admission, on threads of their own, for one run at a time each: an admitted
request may still wait for them in its thread, which the threads' headroom allows for.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.to_thread
from sqlalchemy.engine import Connection
from sqlalchemy.pool import Pool, QueuePool

from gpufleet.api.errors import STORE_UNAVAILABLE
from gpufleet.core.errors import Unavailable

log = logging.getLogger("gpufleet.api")

# Worker threads beyond the admitted requests, for work that holds no connection; anyio's
# default (40) stays the least.
THREAD_HEADROOM = 25
_DEFAULT_THREADS = 40


def pool_capacity(pool: Pool) -> int | None:
    """How many connections ``pool`` lends at once; None when a checkout never waits."""
    if not isinstance(pool, QueuePool):
        # SQLite's in-memory pools and NullPool hand out a connection without waiting.
        return None
    size, overflow = pool.size(), pool._max_overflow
    if size <= 0 or overflow < 0:
        return None  # QueuePool's spelling of "no limit"
    return size + overflow


class Admission:
    """Places for ``capacity`` requests at once (None: no limit); the event loop's alone, so no
    lock. Waiting requests are admitted in order of arrival, each given the place of one that
    ends."""

    def __init__(self, capacity: int | None, timeout_seconds: float) -> None:
        self.capacity = capacity
        self.timeout_seconds = timeout_seconds
        self.admitted = 0
        self._waiting: deque[anyio.Event] = deque()

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    @asynccontextmanager
    async def place(self) -> AsyncIterator[None]:
        """Hold a place for the block, or raise ``Unavailable`` when none frees up in time."""
        if self.capacity is None:
            yield
            return
        if self.admitted < self.capacity and not self._waiting:
            self.admitted += 1
        else:
            await self._wait()
        try:
            yield
        finally:
            self._release()

    async def _wait(self) -> None:
        turn = anyio.Event()
        self._waiting.append(turn)
        try:
            with anyio.move_on_after(self.timeout_seconds):
                await turn.wait()
        except BaseException:
            # Cancelled: give back a place handed over meanwhile, or leave the line.
            if turn.is_set():
                self._release()
            else:
                self._waiting.remove(turn)
            raise
        if not turn.is_set():
            self._waiting.remove(turn)
            log.warning(
                "no database connection within %gs (%d requests admitted, %d waiting)",
                self.timeout_seconds,
                self.admitted,
                len(self._waiting),
            )
            # The pool timeout's answer: a full admission is the same condition.
            raise Unavailable(STORE_UNAVAILABLE)

    def _release(self) -> None:
        if self._waiting:
            # Handed straight to the next in line: the admitted count stays as it is.
            self._waiting.popleft().set()
        else:
            self.admitted -= 1

    def size_worker_threads(self) -> None:
        """Give the running event loop's worker threads room for every admitted request and
        ``THREAD_HEADROOM`` more (called at startup, on the loop that serves)."""
        limiter = anyio.to_thread.current_default_thread_limiter()
        wanted = max(_DEFAULT_THREADS, (self.capacity or 0) + THREAD_HEADROOM)
        limiter.total_tokens = max(limiter.total_tokens, wanted)


def hand_back(conn: Connection) -> None:
    """Return the request's connection to the pool before a long call that needs none of it (a
    metrics backend: the embedded one takes a connection of its own, Prometheus takes a while).
    The request keeps its admission, so its second connection fits in the pool without waiting
    for another request's; the connection must not be used again."""
    conn.close()
