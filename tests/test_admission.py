"""Admission to the database: requests wait for a connection on the event loop, not in a thread.

Through a real server, more requests at once than it has worker threads are all answered, and
none of them 503; then the admission on its own: it waits without a thread, hands its place on
when a request ends (also with an error), and answers a wait that runs out like a pool timeout.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.support.databases import ADMIN_ID

# Far beyond the server's 40 default worker threads, each kind on its own.
GUESSES = LISTS = 60
# The server's default pool timeout: a request stalled behind the worker threads waits that long
# for a connection and then answers 503.
POOL_TIMEOUT_SECONDS = 5.0


@pytest.mark.e2e
def test_more_requests_at_once_than_worker_threads_are_all_answered(live_server):
    headers = live_server.auth_headers()
    limits = httpx.Limits(max_connections=GUESSES + LISTS, max_keepalive_connections=0)

    def guess(_n: int) -> int:
        body = {"grantType": "client_credentials", "clientID": ADMIN_ID, "clientSecret": "guess"}
        return http.post("/api/v1/token", json=body).status_code

    def clusters(_n: int) -> int:
        return http.get("/api/v1/clusters", headers=headers).status_code

    # A stall ends when the pool timeout answers 503: a generous read timeout beyond it only
    # keeps a server that never answers from holding the test.
    timeout = httpx.Timeout(10 * POOL_TIMEOUT_SECONDS)
    with (
        httpx.Client(base_url=live_server.base_url, timeout=timeout, limits=limits) as http,
        ThreadPoolExecutor(GUESSES + LISTS) as pool,
    ):
        guesses = pool.map(guess, range(GUESSES))
        lists = pool.map(clusters, range(LISTS))
        guessed, listed = sorted(guesses), list(lists)
    # Wrong secrets: the first ten (the failure limit) are evaluated, the rest refused.
    assert guessed == [400] * 10 + [429] * (GUESSES - 10)
    assert listed == [200] * LISTS
