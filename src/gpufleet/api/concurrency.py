"""A per-caller limit on concurrent expensive reads, so one caller can slow only itself.

Each caller (an access key or a user) may run ``caller_max_concurrent_reads`` expensive reads
(lists, counts, telemetry, metrics) at once on a replica. A request beyond that waits in a
short queue, on the event loop and holding no thread or database connection, for up to
``caller_read_queue_seconds``; when the wait runs out, or when the caller already has four
times its limit waiting, it is answered 429 with ``Retry-After``. The rest of the connection
pool stays free for everyone else.

The slot is taken before the caller's access is resolved, so a queued request holds no
connection: routes declare ``ExpensiveRead`` as their first parameter.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import anyio
from fastapi import Depends, Request

from gpufleet.api.deps import CurrentPrincipal
from gpufleet.core.errors import TooManyRequests

# How many requests of one caller may wait, as a multiple of its concurrency limit.
_QUEUE_FACTOR = 4


class CallerBusy(TooManyRequests):
    """The caller already runs as many expensive reads as it may; ``retry_after`` in seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class CallerSlots:
    """Slots per caller; used only from the event loop, so it needs no lock."""

    def __init__(self, limit: int, queue_seconds: float) -> None:
        self.limit = limit
        self.queue_seconds = queue_seconds
        self._running: Counter[str] = Counter()
        self._waiting: dict[str, deque[anyio.Event]] = {}

    @asynccontextmanager
    async def slot(self, caller: str) -> AsyncIterator[None]:
        """Hold one of ``caller``'s slots for the duration of the block, or raise CallerBusy."""
        if self._running[caller] < self.limit:
            self._running[caller] += 1
        else:
            await self._wait(caller)
        try:
            yield
        finally:
            self._release(caller)

    def _busy(self) -> CallerBusy:
        wait = max(1, math.ceil(self.queue_seconds))
        return CallerBusy(
            f"Too many concurrent requests from this caller (at most {self.limit} lists, "
            f"counts, telemetry or metrics at once); retry in {wait} seconds.",
            retry_after=wait,
        )

    async def _wait(self, caller: str) -> None:
        queue = self._waiting.setdefault(caller, deque())
        if len(queue) >= self.limit * _QUEUE_FACTOR or not self.queue_seconds:
            raise self._busy()
        turn = anyio.Event()
        queue.append(turn)
        try:
            with anyio.move_on_after(self.queue_seconds):
                await turn.wait()
        finally:
            if not turn.is_set():
                queue.remove(turn)
                if not queue:
                    self._waiting.pop(caller, None)
        if not turn.is_set():
            raise self._busy()

    def _release(self, caller: str) -> None:
        queue = self._waiting.get(caller)
        if queue:
            # Handed straight to the next in line: the running count stays as it is.
            queue.popleft().set()
            if not queue:
                self._waiting.pop(caller, None)
            return
        self._running[caller] -= 1
        if self._running[caller] <= 0:
            del self._running[caller]


async def expensive_read_slot(request: Request, principal: CurrentPrincipal) -> AsyncIterator[None]:
    slots: CallerSlots = request.app.state.read_slots
    async with slots.slot(f"{principal.subject_type}:{principal.subject}"):
        yield


# Released when the handler returns, before the answer is sent: a client that waits for
# its answer before the next request never finds its own slot still taken.
ExpensiveRead = Annotated[None, Depends(expensive_read_slot, scope="function")]
