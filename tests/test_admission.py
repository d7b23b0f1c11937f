"""Admission to the database: requests wait for a connection on the event loop, not in a thread.

Through a real server, more requests at once than it has worker threads are all answered, and
none of them 503; then the admission on its own: it waits without a thread, hands its place on
when a request ends (also with an error), and answers a wait that runs out like a pool timeout.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import anyio
import anyio.to_thread
import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.pool import QueuePool, StaticPool

from gpufleet.api.admission import Admission, pool_capacity
from gpufleet.api.app import create_app
from gpufleet.api.errors import STORE_UNAVAILABLE
from gpufleet.core.errors import Unavailable
from gpufleet.settings import Settings
from tests.support.access import bearer, token_for
from tests.support.databases import ADMIN_ID, ADMIN_SECRET
from tests.support.factories import insert, workload

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


# The admission on its own.


async def _until(condition) -> None:
    """Let other tasks run until ``condition()`` holds."""
    for _ in range(1000):
        if condition():
            return
        await anyio.sleep(0)
    raise AssertionError("never happened")


def test_a_request_beyond_capacity_waits_on_the_loop_holding_no_thread():
    async def main():
        admission = Admission(1, timeout_seconds=60)
        threads = anyio.to_thread.current_default_thread_limiter()
        order = []

        async def second():
            async with admission.place():
                order.append("second")

        async with anyio.create_task_group() as tasks, admission.place():
            tasks.start_soon(second)
            await _until(lambda: admission.waiting == 1)
            assert threads.borrowed_tokens == 0
            # The loop is free meanwhile: a thread's work comes and goes.
            assert await anyio.to_thread.run_sync(lambda: "done") == "done"
            order.append("first")
        assert order == ["first", "second"]
        assert (admission.admitted, admission.waiting) == (0, 0)

    anyio.run(main)


class _HandlerFailed(Exception):
    pass


def test_a_place_is_given_back_when_its_request_fails():
    async def main():
        admission = Admission(1, timeout_seconds=60)
        admitted = []

        async def waiter():
            async with admission.place():
                admitted.append(True)

        async def failing(tasks):
            async with admission.place():
                tasks.start_soon(waiter)
                await _until(lambda: admission.waiting == 1)
                raise _HandlerFailed

        async with anyio.create_task_group() as tasks:
            with pytest.raises(_HandlerFailed):
                await failing(tasks)
        assert admitted == [True]
        assert (admission.admitted, admission.waiting) == (0, 0)
        async with admission.place():
            assert admission.admitted == 1

    anyio.run(main)


def test_a_cancelled_wait_leaves_the_line():
    async def main():
        admission = Admission(1, timeout_seconds=60)
        async with admission.place():
            with anyio.move_on_after(0.01):
                async with admission.place():
                    raise AssertionError("admitted beyond capacity")
            assert (admission.admitted, admission.waiting) == (1, 0)
        assert admission.admitted == 0

    anyio.run(main)


def test_a_wait_that_runs_out_is_unavailable():
    async def main():
        admission = Admission(1, timeout_seconds=0.05)
        async with admission.place():
            with pytest.raises(Unavailable, match="unavailable"):
                async with admission.place():
                    raise AssertionError("admitted beyond capacity")
            assert admission.waiting == 0
        assert admission.admitted == 0

    anyio.run(main)


def test_no_capacity_admits_everyone():
    async def main():
        admission = Admission(None, timeout_seconds=0.01)
        async with admission.place(), admission.place():
            assert admission.admitted == 0

    anyio.run(main)


def test_capacity_is_what_the_pool_lends():
    assert pool_capacity(QueuePool(lambda: None, pool_size=5, max_overflow=10)) == 15
    assert pool_capacity(QueuePool(lambda: None, pool_size=5, max_overflow=-1)) is None
    assert pool_capacity(StaticPool(lambda: None)) is None


@pytest.mark.parametrize(("capacity", "threads"), [(None, 40), (15, 40), (100, 125)])
def test_worker_threads_outnumber_the_admitted_requests(capacity, threads):
    async def main():
        Admission(capacity, timeout_seconds=1).size_worker_threads()
        return anyio.to_thread.current_default_thread_limiter().total_tokens

    assert anyio.run(main) == threads


@pytest.fixture
def two_connections(database_url):
    """An app whose pool lends two connections (preparing a PostgreSQL store takes two), and
    gives up waiting for one after 0.2 s."""
    settings = Settings(
        database_url=database_url,
        admin_client_id=ADMIN_ID,
        admin_client_secret=ADMIN_SECRET,
        db_pool_size=2,
        db_max_overflow=0,
        db_pool_timeout_seconds=0.2,
    )
    app = create_app(settings)
    yield app
    app.state.gpufleet.engine.dispose()


@contextmanager
def _another_request(http: TestClient, state):
    """What an admitted request holds: a place and a connection."""
    with http.portal.wrap_async_context_manager(state.admission.place()), state.engine.connect():
        yield


def test_a_full_admission_answers_like_a_pool_timeout(two_connections):
    state = two_connections.state.gpufleet
    guess = {"grantType": "client_credentials", "clientID": ADMIN_ID, "clientSecret": "guess"}
    with TestClient(two_connections) as http:
        # Every place taken: the request waits for one on the loop, then gives up.
        with _another_request(http, state), _another_request(http, state):
            full = http.post("/api/v1/token", json=guess)
        # Admitted, but the pool's connections are taken elsewhere: the pool times out.
        with state.engine.connect(), state.engine.connect():
            timed_out = http.post("/api/v1/token", json=guess)
        assert http.post("/api/v1/token", json=guess).status_code == 400
    assert full.status_code == timed_out.status_code == 503
    assert full.json() == timed_out.json() == {"code": 503, "message": STORE_UNAVAILABLE}


def test_a_metrics_request_holds_one_connection_at_a_time(two_connections):
    """The embedded backend reads samples on a connection of its own: the route hands its own
    back first, or with the pool's last connection it would wait for itself."""
    state = two_connections.state.gpufleet
    workload_id = insert(state.engine, [workload()])[0]["id"]
    query = {
        "start": "2024-05-01T12:00:00Z",
        "end": "2024-05-01T13:00:00Z",
        "metricType": "GPU_UTILIZATION",
    }
    with TestClient(two_connections) as http:
        http.headers.update(bearer(token_for(http, ADMIN_ID, ADMIN_SECRET)))
        with _another_request(http, state):
            response = http.get(f"/api/v1/workloads/{workload_id}/metrics", params=query)
    assert response.status_code == 200, response.text
