"""Limiting failed token requests, atomically, by what the attempt presents and where from.

Each attempt is counted under several keys, each with its own limit (see ``attempt_keys`` in
``api/routes/tokens.py``): the client id together with the source address, a hash of a
presented refresh or external token, and the source address alone (a ceiling). So guessing a
client id from one address locks out that address for that id, never the real owner elsewhere.

Admission and counting are one step under one lock: an attempt is admitted only while the
failures already counted plus the attempts still being evaluated stay below every key's limit.
Concurrent guesses therefore cannot exceed the limit; an attempt beyond it waits (briefly)
for those in flight to finish, then is admitted or refused. Successful attempts of the same
key are never refused for being concurrent, only delayed.

Counts live in the process: each replica limits on its own, so with N replicas behind a load
balancer that spreads one address over all of them, an attacker gets up to N x limit guesses
per window (documented in ``docs/security.md``); a counter shared through the database would
cost a write on every token request.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from gpufleet.core.errors import Invalid, TooManyRequests

# How long an attempt may queue behind others of the same key before it is refused.
MAX_QUEUE_SECONDS = 10.0
# Idle keys are forgotten beyond this many, so a scan of random ids cannot grow memory forever.
_MAX_KEYS = 100_000


@dataclass(frozen=True, slots=True)
class LimitKey:
    """One counter an attempt is charged to: ``name`` and how many failures it may hold."""

    name: str
    limit: int


class FailureLimiter:
    def __init__(self, window_seconds: float, max_queue_seconds: float = MAX_QUEUE_SECONDS):
        self.window_seconds = window_seconds
        self.max_queue_seconds = max_queue_seconds
        self._failures: dict[str, deque[float]] = {}
        self._in_flight: dict[str, int] = {}
        self._changed = threading.Condition()

    def _recent(self, name: str, now: float) -> int:
        failures = self._failures.get(name)
        if failures is None:
            return 0
        while failures and now - failures[0] > self.window_seconds:
            failures.popleft()
        return len(failures)

    def _retry_after(self, keys: Sequence[LimitKey], now: float) -> int:
        """Seconds until every exhausted key has a failure leave its window; 0 when none is."""
        wait = 0.0
        for key in keys:
            failures = self._failures.get(key.name)
            if failures and len(failures) >= key.limit:
                wait = max(wait, self.window_seconds - (now - failures[-key.limit]))
        return int(wait) + 1 if wait > 0 else 0

    def _admit(self, keys: Sequence[LimitKey]) -> None:
        deadline = time.monotonic() + self.max_queue_seconds
        with self._changed:
            while True:
                now = time.monotonic()
                if any(self._recent(key.name, now) >= key.limit for key in keys):
                    wait = self._retry_after(keys, now)
                    raise TooManyRequests(
                        f"Too many failed token requests; retry in {wait} seconds."
                    )
                if all(
                    self._recent(key.name, now) + self._in_flight.get(key.name, 0) < key.limit
                    for key in keys
                ):
                    for key in keys:
                        self._in_flight[key.name] = self._in_flight.get(key.name, 0) + 1
                    return
                if now >= deadline:
                    raise TooManyRequests("Too many token requests at once; retry in 1 seconds.")
                self._changed.wait(deadline - now)

    def _settle(self, keys: Sequence[LimitKey], failed: bool, reset: Sequence[str]) -> None:
        now = time.monotonic()
        with self._changed:
            for key in keys:
                left = self._in_flight[key.name] - 1
                if left:
                    self._in_flight[key.name] = left
                else:
                    del self._in_flight[key.name]
                if failed:
                    self._failures.setdefault(key.name, deque()).append(now)
            for name in reset:
                self._failures.pop(name, None)
            if len(self._failures) > _MAX_KEYS:
                for name in [n for n in self._failures if not self._recent(n, now)]:
                    del self._failures[name]
            self._changed.notify_all()

    @contextmanager
    def attempt(self, keys: Sequence[LimitKey], reset_on_success: Sequence[str] = ()) -> Iterator:
        """Admit one attempt charged to ``keys`` (429 when one is exhausted) and count it.

        An ``Invalid`` raised inside the block (wrong credentials, a bad token) counts as a
        failure under every key; on success the failures of ``reset_on_success`` are forgotten.
        Other errors (the database unreachable) count as nothing.
        """
        self._admit(keys)
        failed = succeeded = False
        try:
            yield
            succeeded = True
        except Invalid:
            failed = True
            raise
        finally:
            self._settle(keys, failed, reset_on_success if succeeded else ())
