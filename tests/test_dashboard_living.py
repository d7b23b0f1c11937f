"""The dashboard on the living demo: a real ``gpufleet serve --demo`` whose simulator reports
the last day through the ingest API while the browser watches.

One test, one server: reporting the simulated past costs minutes of the machine, so it is done
once (a test per check could be spread over several workers, each starting its own demo). The
checks wait until the past is reported to within three hours of now, which is enough for
every six-hour chart; the rest of the past fills in while they run.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.support.databases import ADMIN_ID, ADMIN_SECRET, fresh_database
from tests.support.server import ServerProcess
from tests.test_dashboard import browser, page, screenshot  # noqa: F401
from tests.test_dashboard_overview import (
    check_views_fit_a_phone,
    check_views_have_data,
    largest_first,
    signed_in,
    views_of,
)

# The simulator and the API it feeds are checked on both databases by test_demo_live; this
# module checks what the browser draws, once.
pytestmark = [pytest.mark.e2e, pytest.mark.sqlite_pass]

# How close to now the reported past must be before the views are checked.
CAUGHT_UP = timedelta(hours=3)
PAST_TIMEOUT_SECONDS = 900
MAX_LINES = 8  # per-GPU lines a chart draws before it shows their aggregate instead


@pytest.fixture(scope="module")
def living(request, tmp_path_factory):
    logs = tmp_path_factory.mktemp("living-demo")
    with fresh_database(request, logs) as url:
        server = ServerProcess(
            url, demo=True, admin_id=ADMIN_ID, admin_secret=ADMIN_SECRET, log_dir=logs
        )
        server.start()
        try:
            with httpx.Client(
                base_url=server.base_url, headers=server.auth_headers(), timeout=60
            ) as api:
                yield server, api
        finally:
            server.stop()


def _status(api: httpx.Client) -> dict:
    answer = api.get("/api/v1/demo/status")
    assert answer.status_code == 200, answer.text
    return answer.json()


def _wait_for_the_past(api: httpx.Client) -> dict:
    deadline = time.monotonic() + PAST_TIMEOUT_SECONDS
    while True:
        status = _status(api)
        assert status["state"] != "failed", status
        reached = status["simulatedTime"] and datetime.fromisoformat(status["simulatedTime"])
        if status["historyComplete"] or (reached and reached >= datetime.now(UTC) - CAUGHT_UP):
            return status
        assert time.monotonic() < deadline, status
        time.sleep(2)


def _check_history_hours_are_the_clusters(tab: Page, api: httpx.Client) -> None:
    """The 24-hour chart's allocated GPUs of each whole hour are the clusters' sampled
    history of that hour, the interval the metrics answer stamps where it ends: an hour read
    off by one would follow the fleet's swings an hour late, beside the ledger's idle GPUs.
    The past may still be arriving in the last hours, so those are left out, and a page drawn
    before the last of it arrived is drawn again."""
    compared: list[tuple[float, float, float]] = []
    for _ in range(3):
        compared = _chart_and_history(tab, api)
        assert len(compared) >= 12, compared
        if all(chart == pytest.approx(history, abs=0.01) for _, chart, history in compared):
            return
        time.sleep(5)
        tab.reload()
        expect(tab.locator("#gpu-history canvas")).to_be_visible()
    raise AssertionError(compared)


def _chart_and_history(tab: Page, api: httpx.Client) -> list[tuple[float, float, float]]:
    """(hour, the chart's allocated GPUs, the clusters' sampled ones) of the chart's hours
    but its last three (now, the hour filling, the one before it)."""
    hours, allocated = tab.locator("#gpu-history").evaluate(
        "el => [Array.from(el.plot.data[0]), Array.from(el.plot.data[2])]"
    )
    drawn = dict(list(zip(hours, allocated, strict=True))[:-3])
    start = datetime.fromtimestamp(min(drawn), UTC)
    end = datetime.fromtimestamp(max(drawn), UTC) + timedelta(hours=1)
    params = {
        "metricType": "ALLOCATED_GPU",
        "start": start.isoformat(),
        "end": end.isoformat(),
        "numberOfSamples": round((end - start) / timedelta(hours=1)),
    }
    sampled: dict[float, float] = {}
    for cluster in api.get("/api/v1/clusters").json():
        answer = api.get(f"/api/v1/clusters/{cluster['uuid']}/metrics", params=params).json()
        for measurement in answer["measurements"]:
            if measurement["type"] != "ALLOCATED_GPU" or measurement["labels"]:
                continue
            for point in measurement["values"]:
                ended = datetime.fromisoformat(point["timestamp"].replace("Z", "+00:00"))
                began = (ended - timedelta(hours=1)).timestamp()
                sampled[began] = sampled.get(began, 0.0) + float(point["value"])
    return [(hour, drawn[hour], sampled[hour]) for hour in sorted(drawn) if hour in sampled]


def _gpu_series(api: httpx.Client, workload_id: str) -> int:
    end = datetime.now(UTC)
    answer = api.get(
        f"/api/v1/workloads/{workload_id}/metrics",
        params={
            "metricType": "GPU_UTILIZATION",
            "start": (end - timedelta(hours=6)).isoformat(),
            "end": end.isoformat(),
        },
    ).json()
    return sum(1 for m in answer["measurements"] if m["values"])


def _check_the_largest_running_workload(tab, url: str, api: httpx.Client) -> dict:
    # Whenever it was created (before the reported day too), its whole story is there.
    (largest,) = largest_first(api, "phase==Running", "allocatedGPU", 1)
    pods = api.get(f"/api/v1/workloads/{largest['id']}/pods").json()["pods"]
    assert pods, largest["name"]
    tab.goto(f"{url}/#/workloads/{largest['id']}")
    expect(tab.locator("#workload-name")).to_contain_text(largest["name"])
    expect(tab.locator("#pods tbody tr")).to_have_count(len(pods))
    expect(tab.locator("#history tbody tr[data-kind=PhaseUpdate]").first).to_be_visible()
    expect(tab.locator("#history tbody tr[data-kind=Event]").first).to_be_visible()
    for metric in ("GPU_UTILIZATION", "GPU_MEMORY_USAGE_BYTES", "CPU_USAGE_CORES"):
        chart = tab.locator(f"[data-metric={metric}]")
        expect(chart.locator("canvas")).to_be_visible()
        assert int(chart.get_attribute("data-points")) > 0, metric
    gpus = _gpu_series(api, largest["id"])
    utilisation = tab.locator("[data-metric=GPU_UTILIZATION]")
    if gpus > MAX_LINES:
        expect(utilisation).to_have_attribute("data-series", "1")
        utilisation.locator("button[data-breakdown]").click()
    expect(utilisation).to_have_attribute("data-series", str(gpus))
    screenshot(tab, "living-largest-workload")

    tab.click(f"button[data-pod='{pods[0]['id']}']")
    pod_chart = tab.locator("[data-pod-metric=GPU_UTILIZATION_PER_GPU]")
    expect(pod_chart.locator("canvas")).to_be_visible()
    assert int(pod_chart.get_attribute("data-points")) > 0
    return largest


@pytest.mark.timeout(PAST_TIMEOUT_SECONDS + 300)
def test_the_dashboard_on_a_fresh_living_demo(page, browser, living):  # noqa: F811
    server, api = living
    signed_in(page, server.base_url)
    # While the past is being reported, the overview says so, and it moves by itself.
    expect(page.locator("#seeding")).to_contain_text("still simulating")
    page.select_option("#auto-refresh", "10")
    page.evaluate("window.stillTheSamePage = true")
    total = page.locator("#workloads-total")
    expect(total).not_to_have_text("…")
    first = total.text_content()
    expect(total).not_to_have_text(first, timeout=120_000)
    assert page.evaluate("window.stillTheSamePage") is True
    screenshot(page, "living-overview-seeding")

    status = _wait_for_the_past(api)
    largest = _check_the_largest_running_workload(page, server.base_url, api)
    # A running pod's node: the workload's earlier pods (one preempted in the warm-up, say)
    # may have run on a node that now runs nothing.
    pods = api.get(f"/api/v1/workloads/{largest['id']}/pods").json()["pods"]
    pod = next(p for p in pods if p["k8sPhase"] == "Running" and p["nodeName"])
    views = views_of(largest["id"], (pod["clusterId"], pod["nodeName"]))
    check_views_have_data(page, server.base_url, views, "living")
    check_views_fit_a_phone(browser, server.base_url, views, "living-phone")

    page.goto(f"{server.base_url}/#/overview")
    expect(page.locator("#gpu-history canvas")).to_be_visible()
    assert int(page.locator("#gpu-history").get_attribute("data-points")) >= 20
    _check_history_hours_are_the_clusters(page, api)
    if status["historyComplete"]:
        expect(page.locator("#seeding")).to_be_hidden()
