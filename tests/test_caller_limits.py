"""One caller flooding expensive reads slows only itself.

``CallerSlots`` is checked on its own (queue, hand-over, 429), then through the real server:
while one viewer fires bursts of deep, time-sorted pages, another viewer's lists, counts and
telemetry all succeed.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import anyio
import httpx
import pytest

from gpufleet.api.concurrency import CallerBusy, CallerSlots
from tests.support.access import key_with_role
from tests.support.server import ServerProcess

DEMO_WORKLOADS = 3000
FLOOD = 20
DEEP_PAGE = {"sortBy": "totalRunningTimeSeconds", "offset": "2500", "limit": "500"}


def test_slots_queue_hand_over_and_refuse():
    async def scenario() -> list[str]:
        slots = CallerSlots(limit=1, queue_seconds=5)
        events: list[str] = []
        release_first = anyio.Event()

        async def first() -> None:
            async with slots.slot("a"):
                events.append("first runs")
                await release_first.wait()

        async def second() -> None:
            async with slots.slot("a"):
                events.append("second runs")

        async with anyio.create_task_group() as group:
            group.start_soon(first)
            await anyio.wait_all_tasks_blocked()
            group.start_soon(second)
            await anyio.wait_all_tasks_blocked()
            # Another caller is not held up by the first one's queue.
            async with slots.slot("b"):
                events.append("other caller runs")
            release_first.set()
        return events

    assert anyio.run(scenario) == ["first runs", "other caller runs", "second runs"]


def test_a_full_queue_or_no_queue_is_answered_busy():
    async def scenario() -> tuple[int, int]:
        slots = CallerSlots(limit=1, queue_seconds=0)
        async with slots.slot("a"):
            with pytest.raises(CallerBusy) as no_queue:
                async with slots.slot("a"):
                    pass
        timed = CallerSlots(limit=1, queue_seconds=0.05)
        async with timed.slot("a"):
            with pytest.raises(CallerBusy) as waited:
                async with timed.slot("a"):
                    pass
        # Every slot was given back: the caller can run again at once.
        async with slots.slot("a"), timed.slot("a"):
            pass
        return no_queue.value.retry_after, waited.value.retry_after

    assert anyio.run(scenario) == (1, 1)


@pytest.fixture(scope="module")
def server(module_database_url, tmp_path_factory):
    env = {
        "GPUFLEET_CALLER_MAX_CONCURRENT_READS": "1",
        "GPUFLEET_CALLER_READ_QUEUE_SECONDS": "0",
    }
    with ServerProcess(
        module_database_url,
        demo=True,
        demo_workloads=DEMO_WORKLOADS,
        extra_env=env,
        log_dir=tmp_path_factory.mktemp("caller-limits"),
    ) as process:
        yield process


def _flood(base_url: str, headers: dict[str, str]) -> list[httpx.Response]:
    start = threading.Barrier(FLOOD)

    def one(_: int) -> httpx.Response:
        start.wait()
        return httpx.get(
            base_url + "/api/v1/workloads", params=DEEP_PAGE, headers=headers, timeout=120
        )

    with ThreadPoolExecutor(FLOOD) as pool:
        return list(pool.map(one, range(FLOOD)))


def test_a_flooding_caller_slows_only_itself(server):
    with httpx.Client(base_url=server.base_url, headers=server.auth_headers()) as admin:
        flooder = key_with_role(admin, "viewer", "tenant")
        other = key_with_role(admin, "viewer", "tenant")
    flooding = ThreadPoolExecutor(1).submit(
        lambda: [r for _ in range(3) for r in _flood(server.base_url, flooder)]
    )
    others: list[httpx.Response] = []
    with httpx.Client(base_url=server.base_url, headers=other, timeout=120) as client:
        while not flooding.done() or not others:
            others.append(client.get("/api/v1/workloads", params=DEEP_PAGE))
            others.append(client.get("/api/v1/workloads/count"))
            others.append(
                client.get(
                    "/api/v1/workloads/telemetry", params={"telemetryType": "WORKLOADS_COUNT"}
                )
            )
    flood = flooding.result()
    assert [r.status_code for r in others] == [200] * len(others)
    assert {r.status_code for r in flood} <= {200, 429}
    refused = [r for r in flood if r.status_code == 429]
    # Twenty requests released together cannot all find the caller's single slot free.
    assert refused
    for response in refused:
        assert response.headers["Retry-After"] == "1"
        assert response.json()["code"] == 429
        assert "concurrent" in response.json()["message"]
