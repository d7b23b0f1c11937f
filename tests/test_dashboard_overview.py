"""The dashboard an administrator opens every morning, in headless Chromium against one real
``gpufleet serve --demo`` per module: the overview (GPUs now and over a day, the pending queue,
projects, clusters; each number a link; refreshing by itself), data on every view of a fresh
demo, the workloads table's requested GPUs and cluster names, readable charts of a many-GPU job,
a workload page that never shows an older range's answer after a newer one, and a phone-width
layout without horizontal scrolling; a project viewer's overview in its own scope, idle bars
that add up to what they link to, axis labels that read apart (bytes in round binary steps),
counters drawn as rates, and lines broken where no sample was taken.

Screenshots go to ``test-artifacts/dashboard/`` (see docs/testing.md).
"""

from __future__ import annotations

import itertools
import math
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import Page, expect

from gpufleet.demo.organisation import PROJECTS
from tests.support.access import grant, new_service_account, token_for
from tests.support.agent_reports import report
from tests.test_dashboard import api, browser, demo, page, screenshot, sign_in  # noqa: F401

pytestmark = pytest.mark.e2e

PHONE = {"width": 390, "height": 844}
# One demo server (``demo``, ``api``) and one browser per module, as in test_dashboard.
# Chromium's computed colours of the phase bars: pending amber, running green, failed red.
PHASE_COLOURS = {
    "Pending": "rgb(217, 119, 6)",
    "Running": "rgb(22, 163, 74)",
    "Failed": "rgb(220, 38, 38)",
}
WIDE_GPUS = 16  # more GPU series than the workload page draws as separate lines


def shown(value: float) -> str:
    """A figure as the overview prints it: one decimal at most, thousands separated."""
    rounded = round(value * 10) / 10
    return f"{int(rounded):,}" if rounded == int(rounded) else f"{rounded:,}"


def node_figure(client, kind: str) -> float:
    values = client.get("/api/v1/nodes/telemetry", params={"telemetryType": kind}).json()["values"]
    return sum(float(v["value"]) for v in values)


def largest_first(client, filter_by: str, sort_by: str, limit: int) -> list[dict]:
    """The first workloads matching ``filter_by``, largest ``sort_by`` first."""
    params = {"filterBy": filter_by, "sortBy": sort_by, "sortOrder": "desc", "limit": limit}
    return client.get("/api/v1/workloads", params=params).json()["workloads"]


IDLE = "idleAllocatedGpus>=0.01"


def signed_in(tab: Page, url: str) -> None:
    sign_in(tab, url)
    expect(tab.locator("#topbar")).to_be_visible()


def test_the_overview_is_the_landing_view_and_shows_the_fleet(page, demo, api):  # noqa: F811
    signed_in(page, demo.url)
    for name, kind in (
        ("total", "TOTAL_GPUS"),
        ("allocated", "ALLOCATED_GPUS"),
        ("idle", "IDLE_ALLOCATED_GPUS"),
        ("free-all", "FREE_GPUS"),  # beside the schedulable free (test_dashboard_nodes)
    ):
        expect(page.locator(f"#gpus-{name}")).to_have_text(shown(node_figure(api, kind)))
    total = api.get("/api/v1/workloads/count").json()["count"]
    expect(page.locator("#workloads-total")).to_have_text(f"{total:,}")

    history = page.locator("#gpu-history")
    expect(history.locator("canvas")).to_be_visible()
    assert int(history.get_attribute("data-points")) >= 1
    # The middle band is allocation that is not idle, not GPUs in use (the Usage view's "used").
    assert _band_labels(history) == ["Free", "Allocated, not idle", "Idle"]
    expect(history.locator(".u-title")).to_contain_text("add up to the allocation")

    longest = api.get(
        "/api/v1/workloads",
        params={"filterBy": "phase==Pending", "sortBy": "phaseUpdatedAt", "limit": 10},
    ).json()["workloads"]
    rows = page.locator("#pending-table tbody tr")
    expect(rows).to_have_count(len(longest))
    expect(rows.locator("td:first-child")).to_have_text([w["name"] for w in longest])
    expect(rows.first).to_contain_text(longest[0]["phaseMessage"])

    clusters = api.get("/api/v1/clusters").json()
    table = page.locator("#clusters-table tbody tr")
    expect(table).to_have_count(len(clusters))
    for cluster in clusters:
        row = page.locator(f"#clusters-table tr[data-cluster='{cluster['uuid']}']")
        expect(row.locator("td").first).to_have_text(cluster["name"])
        expect(row.locator(".badge")).to_have_text(cluster["status"]["state"])

    for part in ("#top-allocated", "#top-idle", "#utilisation", "#by-phase", "#pending-time"):
        expect(page.locator(f"{part}[data-bars]")).to_be_visible()
        assert int(page.locator(part).get_attribute("data-bars")) > 0, part
    for phase, colour in PHASE_COLOURS.items():
        bar = page.locator(f"#by-phase .bar[data-phase={phase}]")
        assert bar.evaluate("b => getComputedStyle(b).backgroundColor") == colour
    screenshot(page, "overview-admin")


def test_each_overview_number_links_to_the_view_behind_it(page, demo, api):  # noqa: F811
    signed_in(page, demo.url)
    for stat, expected_filter in (
        ("#gpus-allocated", "allocatedGPU>=0.01"),
        ("#gpus-idle", "idleAllocatedGpus>=0.01"),
        ("#workloads-pending", "phase==Pending"),
    ):
        page.goto(demo.url + "/#/overview")
        # Wait for the whole first refresh: the 24-hour chart drawn above the workload figures
        # moves them down, and a click aimed before it lands on whatever took their place.
        expect(page.locator("#updated")).not_to_have_attribute("data-refreshes", "0")
        expect(page.locator(stat)).not_to_have_text("…")
        page.click(stat)
        expect(page.locator(f".chip[data-filter='{expected_filter}']")).to_be_visible()
        count = api.get("/api/v1/workloads/count", params={"filterBy": expected_filter}).json()
        expect(page.locator("#range")).to_contain_text(f"of {count['count']:,}")

    page.goto(demo.url + "/#/overview")
    project_link = page.locator("#top-allocated .num a").first
    expect(project_link).to_be_visible()
    filters = parse_qs(urlparse(project_link.get_attribute("href").replace("#/", "/")).query)["f"]
    project = page.locator("#top-allocated .label a").first.text_content()
    assert filters == [f"projectName=={project}", "allocatedGPU>=0.01"]
    project_link.click()
    expect(page.locator(f".chip[data-filter='projectName=={project}']")).to_be_visible()
    expect(page.locator("#workloads-table tbody tr").first).to_contain_text(project)

    page.goto(demo.url + "/#/overview")
    page.locator("#pending-table tbody tr td:first-child a").first.click()
    expect(page.locator("#workload-name [data-phase=Pending]")).to_be_visible()


def test_the_overview_refreshes_by_itself(page, demo, api):  # noqa: F811
    signed_in(page, demo.url)
    pending = api.get("/api/v1/workloads/count", params={"filterBy": "phase==Pending"}).json()
    expect(page.locator("#workloads-pending")).to_have_text(f"{pending['count']:,}")
    page.select_option("#auto-refresh", "10")
    # A marker on the window survives only if the page is never reloaded.
    page.evaluate("window.stillTheSamePage = true")
    # A refresh is counted once all its parts have answered: the first one finishes first.
    updated = page.locator("#updated")
    expect(updated).not_to_have_attribute("data-refreshes", "0")
    refreshes = updated.get_attribute("data-refreshes")

    _reported(api, "Pending", name="arrived-while-watching", allocatedResources={"gpu": 0})
    expect(page.locator("#workloads-pending")).to_have_text(f"{pending['count'] + 1:,}")
    # The refresh that drew the new figure is counted when its other parts have answered too.
    expect(updated).not_to_have_attribute("data-refreshes", refreshes)
    assert page.evaluate("window.stillTheSamePage") is True
    assert page.evaluate("localStorage.getItem('gpufleet.overviewRefreshSeconds')") == "10"


def _requested(workload: dict) -> float:
    return workload["workloadRequestedResources"].get("gpu", {}).get("request", 0)


def test_the_workloads_table_shows_requested_gpus_and_cluster_names(page, demo, api):  # noqa: F811
    waiting = api.get(
        "/api/v1/workloads",
        params={"filterBy": ["phase==Pending", "type==RayJob"], "limit": 100},
    ).json()["workloads"]
    big = max(waiting, key=_requested)
    requested = big["workloadRequestedResources"]["gpu"]["request"]
    assert requested >= 2 and big["allocatedResources"]["gpu"] == 0
    names = {c["uuid"]: c["name"] for c in api.get("/api/v1/clusters").json()}

    signed_in(page, demo.url)
    page.goto(f"{demo.url}/#/workloads?f=name%3D%3D{big['name']}")
    row = page.locator(f"#workloads-table tr[data-id='{big['id']}']")
    expect(row).to_be_visible()
    headers = page.locator("#workloads-table thead th").all_text_contents()
    cells = row.locator("td")
    expect(cells.nth(headers.index("Requested GPUs"))).to_have_text(shown(requested))
    expect(cells.nth(headers.index("Allocated GPUs"))).to_have_text("0")
    expect(cells.nth(headers.index("Cluster"))).to_have_text(names[big["clusterId"]])

    page.goto(f"{demo.url}/#/workloads?f=clusterId%3D%3D{big['clusterId']}")
    expect(page.locator(".chip .chip-label")).to_have_text(f"cluster=={names[big['clusterId']]}")
    # A numeric column sorts largest first on its first click.
    page.click("th[data-sort=allocatedGPU]")
    expect(page.locator("th[data-sort=allocatedGPU].sorted-desc")).to_be_visible()
    (largest,) = largest_first(api, f"clusterId=={big['clusterId']}", "allocatedGPU", 1)
    expect(page.locator("#workloads-table tbody tr").first).to_have_attribute(
        "data-id", largest["id"]
    )

    page.goto(f"{demo.url}/#/workloads/{big['id']}")
    expect(page.locator("#workload-details")).to_contain_text(names[big["clusterId"]])
    assert big["clusterId"] not in page.locator("#workload-details").text_content()
    screenshot(page, "workloads-requested-gpus")


def _reported(client, phase: str, **overrides) -> dict:
    """A workload reported now through the ingest API, in the project of a demo workload."""
    template = client.get(
        "/api/v1/workloads", params={"filterBy": "phase==Running", "sortBy": "name", "limit": 1}
    ).json()["workloads"][0]
    workload = report(
        cluster_id=template["clusterId"],
        phase=phase,
        projectId=template["projectId"],
        projectName=template["projectName"],
        departmentId=template["departmentId"],
        departmentName=template["departmentName"],
        namespace=template["namespace"],
        pods=[],
        observedAt=datetime.now(UTC).isoformat(),
    )
    workload.update(overrides)
    answer = client.post(
        f"/api/v1/ingest/clusters/{template['clusterId']}/workloads", json={"workloads": [workload]}
    )
    assert answer.status_code == 200 and answer.json()["accepted"] == 1, answer.text
    return workload


def _wide_workload(client, now: datetime) -> dict:
    """A running workload on ``WIDE_GPUS`` GPUs with an hour of per-GPU utilisation samples."""
    workload = _reported(
        client,
        "Running",
        name=f"wide-{uuid.uuid4().hex[:6]}",
        allocatedResources={"gpu": WIDE_GPUS},
    )
    samples = [
        {
            "workloadId": workload["id"],
            "type": "GPU_UTILIZATION",
            "timestamp": (now - timedelta(minutes=minute)).isoformat().replace("+00:00", "Z"),
            "value": 40 + 30 * math.sin(minute / 9 + gpu),
            "labels": {"gpu": str(gpu)},
        }
        for minute in range(1, 60)
        for gpu in range(WIDE_GPUS)
    ]
    assert client.post("/api/v1/ingest/metrics", json={"samples": samples}).status_code == 200
    return workload


def test_a_many_gpu_chart_is_one_aggregate_line_with_the_breakdown_on_demand(page, demo, api):  # noqa: F811
    workload = _wide_workload(api, datetime.now(UTC).replace(microsecond=0))
    signed_in(page, demo.url)
    page.goto(f"{demo.url}/#/workloads/{workload['id']}")
    chart = page.locator("[data-metric=GPU_UTILIZATION]")
    expect(chart.locator("canvas")).to_be_visible()
    expect(chart.locator(".u-title")).to_have_text("GPU utilisation (%)")
    expect(chart).to_have_attribute("data-series", "1")
    expect(chart.locator(".u-legend")).to_contain_text(f"mean of {WIDE_GPUS} GPUs")
    toggle = chart.locator("button[data-breakdown]")
    expect(toggle).to_have_text(f"Show each of the {WIDE_GPUS} GPUs")
    toggle.click()
    expect(chart).to_have_attribute("data-series", str(WIDE_GPUS))
    expect(chart.locator(".u-legend")).to_have_count(0)  # 16 entries would be noise
    screenshot(page, "workload-many-gpus")
    toggle.click()
    expect(chart).to_have_attribute("data-series", "1")


def _span_seconds(url: str) -> float:
    query = parse_qs(urlparse(url).query)
    start, end = (datetime.fromisoformat(query[key][0]) for key in ("start", "end"))
    return (end - start).total_seconds()


def test_a_slow_older_range_never_replaces_a_newer_one(page, demo):  # noqa: F811
    signed_in(page, demo.url)
    page.goto(f"{demo.url}/#/workloads/{demo.charted_id}")
    boxes = page.locator("#metric-charts, #inference-charts")
    expect(page.locator("#metric-charts")).to_have_attribute("data-range", "6h")

    held = []

    def hold_the_day(route):
        if _span_seconds(route.request.url) == 86400:
            held.append(route)
        else:
            route.continue_()

    def workload_metrics(url: str) -> bool:
        return f"/api/v1/workloads/{demo.charted_id}/metrics?" in url

    page.route(workload_metrics, hold_the_day)
    page.click("button[data-range='24h']")  # its answers are held back
    page.click("button[data-range='1h']")
    for index in range(boxes.count()):
        expect(boxes.nth(index)).to_have_attribute("data-range", "1h")
    points = page.locator("[data-metric=GPU_UTILIZATION]").get_attribute("data-points")
    assert held
    for route in held:
        with page.expect_response(lambda response, route=route: response.url == route.request.url):
            route.continue_()
    page.unroute(workload_metrics)
    # The older answers have arrived; what shows is still the newer range.
    page.wait_for_load_state("networkidle")
    for index in range(boxes.count()):
        expect(boxes.nth(index)).to_have_attribute("data-range", "1h")
    expect(page.locator("[data-metric=GPU_UTILIZATION]")).to_have_attribute("data-points", points)
    expect(page.locator("button[data-range='1h'].active")).to_be_visible()


@pytest.fixture(scope="module")
def history_workload(api) -> dict:  # noqa: F811
    """A running inference workload of the demo with six hours of every charted series."""
    end = datetime.now(UTC)
    window = {"start": (end - timedelta(hours=6)).isoformat(), "end": end.isoformat()}
    candidates = api.get(
        "/api/v1/workloads",
        params={"filterBy": ["phase==Running", "type==Inference"], "limit": 200},
    ).json()["workloads"]
    types = "GPU_MEMORY_USAGE_BYTES,CPU_MEMORY_USAGE_BYTES,POD_COUNT,NIM_NUM_REQUESTS_RUNNING"
    for workload in candidates:
        metrics = api.get(
            f"/api/v1/workloads/{workload['id']}/metrics", params={"metricType": types, **window}
        ).json()
        if all(m["values"] for m in metrics["measurements"]):
            return workload
    raise AssertionError("no running inference workload of the demo has metrics")


def views_of(workload_id: str, node: tuple[str, str] | None = None) -> dict[str, str]:
    """The first page of every view, the page of one workload and of one project and, given
    (cluster uuid, name), of one node (a node's charts need its pods' samples, which only the
    living demo reports)."""
    views = {
        "overview": "#/overview",
        "workloads": "#/workloads",
        "pending": "#/workloads?f=phase%3D%3DPending",
        "events": "#/events",
        "warnings": "#/events?type=Warning",
        "capacity": "#/capacity",
        "nodes": "#/nodes",
        "projects": "#/projects",
        "project": f"#/projects/{PROJECTS[0].id}",
        "departments": "#/departments",
        "usage": "#/usage",
        "access": "#/access",
        "workload": f"#/workloads/{workload_id}",
    }
    if node is not None:
        views["node"] = "#/nodes/{}/{}".format(*node)
    return views


# What a view says in place of a chart, a table or a panel it has nothing for.
EMPTY_LINES = (
    "No samples",
    "No workloads",
    "No pods",
    "No clusters",
    "No nodes",
    "No projects",
    "No departments",
    "No events",
)


def check_views_have_data(tab: Page, url: str, views: dict[str, str], prefix: str) -> None:
    """Each view finished loading without an error, an empty chart or an empty table."""
    for name, route in views.items():
        tab.goto(f"{url}/{route}")
        expect(tab.locator("main")).not_to_contain_text("Loading…")
        for empty in EMPTY_LINES:
            expect(tab.locator("main")).not_to_contain_text(empty)
        expect(tab.locator("main [role=alert]")).to_have_count(0)
        tables = tab.locator("main table.data")
        for index in range(tables.count()):
            assert tables.nth(index).locator("tbody tr").count() > 0, (name, index)
        screenshot(tab, f"{prefix}-{name}")


def check_views_fit_a_phone(chromium, url: str, views: dict[str, str], prefix: str) -> None:
    """At 390 px no view scrolls sideways (wide tables scroll inside their panels)."""
    context = chromium.new_context(viewport=PHONE, is_mobile=True)
    phone = context.new_page()
    try:
        signed_in(phone, url)
        for name, route in views.items():
            phone.goto(f"{url}/{route}")
            expect(phone.locator("main")).not_to_contain_text("Loading…")
            overflow = phone.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, (name, overflow)
            screenshot(phone, f"{prefix}-{name}")
    finally:
        context.close()


def test_every_view_has_data_on_a_fresh_demo(page, demo, history_workload):  # noqa: F811
    signed_in(page, demo.url)
    check_views_have_data(page, demo.url, views_of(history_workload["id"]), "fresh")


def test_every_view_fits_a_phone_screen(browser, demo, history_workload):  # noqa: F811
    check_views_fit_a_phone(browser, demo.url, views_of(history_workload["id"]), "phone")


def _viewer_of_one_project(client) -> tuple[dict, dict]:
    """A service account with a viewer rule on the demo project holding most GPUs."""
    values = client.get(
        "/api/v1/workloads/telemetry",
        params={"telemetryType": "GPU_ALLOCATION", "groupBy": "ProjectId"},
    ).json()["values"]
    project = max(values, key=lambda v: float(v["value"]))["groups"][0]
    account = new_service_account(client, "overview-project-viewer")
    rule = grant(client, account["clientId"], "viewer", "project", project["value"])
    assert rule.status_code == 201, rule.text
    return account, project


def _figure(tab: Page, selector: str) -> float:
    return float(tab.locator(selector).text_content().replace(",", ""))


def test_a_project_viewer_sees_its_projects_figures_and_no_refusals(page, demo, api):  # noqa: F811
    account, project = _viewer_of_one_project(api)
    refused: list[str] = []
    asked: list[str] = []
    answers = _idle_answers(page)
    # 404 is what /demo/status answers on a server without the living simulator.
    page.on("response", lambda r: r.status in (401, 403) and refused.append(f"{r.status} {r.url}"))
    page.on("request", lambda r: asked.append(r.url))
    page.goto(demo.url + "/")
    page.fill("input[name=clientId]", account["clientId"])
    page.fill("input[name=clientSecret]", account["clientSecret"])
    page.click("#signin button[type=submit]")
    expect(page.locator("#updated")).not_to_have_attribute("data-refreshes", "0")

    # The figures are the project's own: what the links behind them list, as the viewer.
    token = token_for(api, account["clientId"], account["clientSecret"])
    viewer = {"Authorization": f"Bearer {token}"}

    def as_viewer(filter_by: str) -> list[dict]:
        params = {"filterBy": filter_by, "limit": 500}
        return api.get("/api/v1/workloads", params=params, headers=viewer).json()["workloads"]

    listed = as_viewer("allocatedGPU>=0.01")
    allocated = sum(w["allocatedResources"]["gpu"] for w in listed)
    assert {w["projectId"] for w in listed} == {project["value"]}
    expect(page.locator("#gpus-allocated")).not_to_have_text("…")
    assert _figure(page, "#gpus-allocated") == pytest.approx(allocated, abs=0.051)
    drawn = _drawn(answers)  # asked as the viewer: its projects' only
    assert {w["projectId"] for w in drawn} <= {project["value"]}
    idle = sum(w["idleAllocatedGpus"] for w in drawn)
    assert _figure(page, "#gpus-idle") == pytest.approx(idle, abs=0.051)
    # The clusters' totals are not the project's: neither shown nor mixed into the chart.
    expect(page.locator("#scope-note")).to_be_visible()
    expect(page.locator("#gpus-total")).to_be_hidden()
    expect(page.locator("#gpus-free")).to_be_hidden()
    history = page.locator("#gpu-history")
    expect(history).to_have_attribute("data-scope", "projects")
    expect(history.locator("canvas")).to_be_visible()
    assert _band_labels(history) == ["Allocated, not idle", "Idle"]
    expect(history.locator(".u-title")).to_contain_text("add up to the allocation")
    # The right edge (now) is the allocation above the chart, not the clusters'.
    top_now = history.evaluate("el => el.plot.data[1][el.plot.data[1].length - 1]")
    assert top_now == pytest.approx(allocated, abs=0.051)
    assert refused == []
    assert not [url for url in asked if "/metrics" in url and "/clusters/" in url]
    screenshot(page, "overview-project-viewer")


def _band_labels(chart) -> list[str]:
    """The stacked chart's bands as its legend names them, top first."""
    return chart.evaluate("el => el.plot.series.slice(1).map((s) => s.label)")


def _idle_answers(tab: Page) -> list[dict]:
    """The idle workloads the page reads, page by page and refresh by refresh, as they come:
    the server re-applies the idle rule every minute, so a fresh request could answer
    otherwise than what was drawn."""
    answers: list[dict] = []

    def read(response) -> None:
        query = parse_qs(urlparse(response.url).query)
        if "/api/v1/workloads?" in response.url and query.get("filterBy") == [IDLE]:
            answers.append({"offset": query.get("offset", ["0"])[0], "body": response.json()})

    tab.on("response", read)
    return answers


def _drawn(answers: list[dict]) -> list[dict]:
    """The idle workloads of the latest refresh, from its first page on."""
    last = max(i for i, a in enumerate(answers) if a["offset"] == "0")
    return [w for a in answers[last:] for w in a["body"]["workloads"]]


def test_idle_project_bars_add_up_to_the_workloads_they_link(page, demo, api):  # noqa: F811
    answers = _idle_answers(page)
    signed_in(page, demo.url)
    bars = page.locator("#top-idle .bars")
    expect(bars).to_be_visible()
    links = page.locator("#top-idle .num a")
    assert links.count() > 0
    shown = {link.get_attribute("href"): link.text_content() for link in links.all()}
    drawn = _drawn(answers)
    for href, text in shown.items():
        filters = parse_qs(urlparse(href.replace("#/", "/")).query)["f"]
        assert IDLE in filters
        (project,) = [f.removeprefix("projectName==") for f in filters if f != IDLE]
        idle = sum(w["idleAllocatedGpus"] for w in drawn if w["projectName"] == project)
        listed = api.get("/api/v1/workloads", params={"filterBy": filters, "limit": 500}).json()
        assert listed["workloads"], href  # the link lists the bar's workloads
        value = float(text.removesuffix(" GPUs").replace(",", ""))
        assert value == pytest.approx(idle, abs=0.051), (href, value, idle)  # one decimal


def _charted(client, name: str, samples: list[dict], **overrides) -> dict:
    workload = _reported(client, "Running", name=name, **overrides)
    for sample in samples:
        sample["workloadId"] = workload["id"]
    assert client.post("/api/v1/ingest/metrics", json={"samples": samples}).status_code == 200
    return workload


def _stamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def test_axis_labels_read_apart_and_fit_their_axis(page, demo, api):  # noqa: F811
    now = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    samples = [
        sample
        for minute in range(60)
        for sample in (
            {
                "type": "CPU_USAGE_CORES",
                "timestamp": _stamp(now - timedelta(minutes=minute)),
                "value": 0.42 + 0.06 * math.sin(minute / 5),
            },
            {
                "type": "CPU_MEMORY_USAGE_BYTES",
                "timestamp": _stamp(now - timedelta(minutes=minute)),
                "value": 2.87 * 2**30 + 2**24 * math.cos(minute / 7),
            },
        )
    ]
    workload = _charted(api, f"narrow-{uuid.uuid4().hex[:6]}", samples)
    signed_in(page, demo.url)
    page.goto(f"{demo.url}/#/workloads/{workload['id']}")
    page.click("button[data-range='1h']")
    for metric in ("CPU_USAGE_CORES", "CPU_MEMORY_USAGE_BYTES"):
        chart = page.locator(f"[data-metric={metric}]")
        expect(chart.locator("canvas")).to_be_visible()
        labels, room, widest = chart.evaluate(
            """el => {
                const axis = el.plot.axes[1];
                const context = document.createElement("canvas").getContext("2d");
                context.font = axis.font[0];
                const widths = axis._values.map((v) => context.measureText(v).width);
                const ratio = devicePixelRatio;
                const room = axis._size - axis.ticks.size - axis.gap;
                return [axis._values, room, Math.max(...widths) / ratio];
            }"""
        )
        assert len(labels) >= 3, (metric, labels)
        assert len(set(labels)) == len(labels), (metric, labels)
        assert widest <= room, (metric, labels, widest, room)
    screenshot(page, "workload-axes")


def test_request_counters_are_drawn_as_a_rate_whatever_the_sampling(page, demo, api):  # noqa: F811
    # Two requests a second throughout: sampled every 10 minutes for a day (as the demo's
    # history is), then every 5 minutes, then every 30 s. No range's step is a multiple of
    # 10 minutes but the day's, and the 6-hour and 24-hour steps (3 and 12 minutes) put one
    # sample in some intervals, two or none in others.
    now = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    start = now - timedelta(hours=25)
    hour = 24 * 3600
    seconds = [
        *range(0, hour + 1200, 600),
        *range(hour + 1200, hour + 2400, 300),
        *range(hour + 2400, hour + 3601, 30),
    ]
    samples = [
        {
            "type": "NIM_REQUEST_SUCCESS_TOTAL",
            "timestamp": _stamp(start + timedelta(seconds=second)),
            "value": 1000 + 2 * second,
        }
        for second in seconds
    ]
    name = f"served-{uuid.uuid4().hex[:6]}"
    workload = _charted(api, name, samples, type="Inference", allocatedResources={"gpu": 1})
    signed_in(page, demo.url)
    page.goto(f"{demo.url}/#/workloads/{workload['id']}")
    chart = page.locator("[data-metric=NIM_REQUEST_TOTALS]")
    for range_name, at_least in (("1h", 40), ("6h", 40), ("24h", 100)):
        page.click(f"button[data-range='{range_name}']")
        expect(page.locator("#inference-charts")).to_have_attribute("data-range", range_name)
        expect(chart.locator(".u-title")).to_have_text("Requests finished (requests per minute)")
        rates = [v for v in chart.evaluate("el => el.plot.data[1]") if v is not None]
        assert len(rates) > at_least, range_name
        assert rates == pytest.approx([120] * len(rates), rel=0.01), range_name


# Each chart's plotted data, the aggregate's inside its toggle's box: uPlot's x values and, per
# series, "gap" where the line breaks (null), "none" where it has no point (undefined).
PLOTTED = """el => {
    const plot = el.plot ?? el.querySelector("div").plot;
    const mark = (v) => (v === null ? "gap" : v === undefined ? "none" : v);
    return [el.dataset.metric, plot.data[0], plot.data.slice(1).map((values) => values.map(mark))];
}"""


def test_charts_break_their_lines_where_no_sample_was_taken(page, demo, api):  # noqa: F811
    # Two hours of samples every 2 minutes, three without any (the workload was pending), and
    # the last hour: every chart of the 6-hour range (3-minute steps) has a gap in between.
    now = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    minutes = [*range(360, 240, -2), *range(60, -1, -2)]
    gpus = 10  # drawn as their mean, each on demand
    samples = [
        sample
        for minute in minutes
        for stamp in (_stamp(now - timedelta(minutes=minute)),)
        for sample in (
            *(
                {
                    "type": "GPU_UTILIZATION",
                    "timestamp": stamp,
                    "value": 50 + 40 * math.sin(minute / 20 + gpu),
                    "labels": {"gpu": str(gpu)},
                }
                for gpu in range(gpus)
            ),
            {"type": "POD_COUNT", "timestamp": stamp, "value": 4},
            {"type": "RUNNING_POD_COUNT", "timestamp": stamp, "value": 4},
            {"type": "NIM_REQUEST_SUCCESS_TOTAL", "timestamp": stamp, "value": 10 * (400 - minute)},
            *(
                {
                    "type": "NIM_TIME_TO_FIRST_TOKEN_SECONDS",
                    "timestamp": stamp,
                    "value": share * (400 - minute),
                    "labels": {"le": le},
                }
                for le, share in (("0.1", 2), ("0.5", 5), ("+Inf", 6))
            ),
        )
    ]
    name = f"paused-{uuid.uuid4().hex[:6]}"
    workload = _charted(api, name, samples, type="Inference", allocatedResources={"gpu": gpus})
    before = (now - timedelta(minutes=240)).timestamp()
    after = (now - timedelta(minutes=60)).timestamp()
    signed_in(page, demo.url)
    page.goto(f"{demo.url}/#/workloads/{workload['id']}")
    charts = page.locator("#metric-charts [data-metric], #inference-charts [data-metric]")
    toggle = page.locator("[data-metric=GPU_UTILIZATION] button[data-breakdown]")
    for breakdown in ("off", "on"):
        expect(toggle).to_have_attribute("data-breakdown", breakdown)
        expect(charts.locator("canvas")).to_have_count(4)
        for metric, xs, series in (chart.evaluate(PLOTTED) for chart in charts.all()):
            for values in series:
                gaps = [x for x, v in zip(xs, values, strict=True) if v == "gap"]
                drawn = [x for x, v in zip(xs, values, strict=True) if v not in ("gap", "none")]
                if not drawn:
                    continue  # requests failed: none were reported
                assert gaps, (metric, breakdown)
                assert all(before < x < after for x in gaps), (metric, gaps)
                assert min(drawn) < before and max(drawn) > after, metric
        toggle.click()
    screenshot(page, "workload-gaps")


def _binary_ticks(labels: list[str]) -> tuple[list[float], float]:
    """Byte axis labels as bytes, and the step between them."""
    powers = {unit: 1024**power for power, unit in enumerate(("B", "KiB", "MiB", "GiB", "TiB"))}
    ticks = []
    for label in labels:
        number, unit = label.split(" ")
        ticks.append(float(number.replace(",", "")) * powers[unit])
    return ticks, ticks[1] - ticks[0]


def test_byte_axes_read_round_binary_numbers(page, demo, api):  # noqa: F811
    # Per-GPU memory between 37 and 75 GiB on 4 GPUs, and on 24 GPUs (drawn as their total,
    # over a terabyte): decimal ticks 10 GB apart read 37, 47, 56 GiB and 1.1, 1.3, 1.4 TiB.
    now = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    signed_in(page, demo.url)
    for gpus in (4, 24):
        samples = [
            {
                "type": "GPU_MEMORY_USAGE_BYTES",
                "timestamp": _stamp(now - timedelta(minutes=minute)),
                "value": (56 + 19 * math.sin(minute / 7) + gpu % 3) * 2**30,
                "labels": {"gpu": str(gpu)},
            }
            for minute in range(0, 60, 2)
            for gpu in range(gpus)
        ]
        name = f"memory-{uuid.uuid4().hex[:6]}"
        workload = _charted(api, name, samples, allocatedResources={"gpu": gpus})
        page.goto(f"{demo.url}/#/workloads/{workload['id']}")
        page.click("button[data-range='1h']")
        chart = page.locator("[data-metric=GPU_MEMORY_USAGE_BYTES]")
        expect(chart.locator("canvas")).to_be_visible()
        labels = chart.evaluate("el => (el.plot ?? el.querySelector('div').plot).axes[1]._values")
        ticks, step = _binary_ticks(labels)
        assert len(ticks) >= 3, labels
        assert math.log2(step) == int(math.log2(step)), labels  # 2^n bytes: 8 GiB, 128 GiB
        assert all(tick % step == 0 for tick in ticks), labels  # each label exact
        assert [b - a for a, b in itertools.pairwise(ticks)] == [step] * (len(ticks) - 1), labels
        screenshot(page, f"workload-memory-{gpus}-gpus")


@pytest.mark.parametrize("width", [1440, 1024])
def test_the_workloads_table_fits_a_desktop_screen(browser, demo, width):  # noqa: F811
    context = browser.new_context(viewport={"width": width, "height": 900})
    tab = context.new_page()
    try:
        signed_in(tab, demo.url)
        for route in ("#/workloads", "#/workloads?sort=allocatedGPU&order=desc"):
            tab.goto(f"{demo.url}/{route}")
            expect(tab.locator("#workloads-table tbody tr").first).to_be_visible()
            table, room = tab.evaluate(
                """[document.querySelector("#workloads-table").scrollWidth,
                    document.querySelector("#workloads-body").clientWidth]"""
            )
            assert table <= room, (route, table, room)
            age = tab.locator("#workloads-table th[data-sort=createdAt]")
            assert age.bounding_box()["x"] + age.bounding_box()["width"] <= width
        screenshot(tab, f"workloads-{width}")
    finally:
        context.close()


WORDY_MESSAGE = (
    "Not enough free resources in node pool h100 for 8 pods of 8 GPUs: at most 0 whole GPUs are "
    "free on one of its 20 ready nodes, and project vision would exceed its limit of 64 GPUs in "
    "node pool h100 while 3 of its workloads wait"
)
# Long enough to wrap in the pods table, breaking at its hyphens.
WORDY_POD = "-".join(["llama3-70b-finetune-sweep"] * 5) + "-launcher-0"


@pytest.fixture(scope="module")
def wordy_workload(api) -> dict:  # noqa: F811
    """A pending workload with a long phase message and a pod with a long name."""
    pod = {"name": WORDY_POD, "uid": str(uuid.uuid4()), "phase": "Pending"}
    return _reported(
        api,
        "Pending",
        name=f"wordy-{uuid.uuid4().hex[:6]}",
        phaseMessage=WORDY_MESSAGE,
        allocatedResources={"gpu": 0},
        pods=[pod],
    )


# Each word of an element's text as the lines it is drawn on (distinct tops), and the left edge
# of each line of it relative to the left of the element's content box.
WORD_LINES = """el => {
  const text = el.firstChild;
  const words = [];
  for (const match of text.data.matchAll(/\\S+/g)) {
    const range = document.createRange();
    range.setStart(text, match.index);
    range.setEnd(text, match.index + match[0].length);
    const tops = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
    words.push([match[0], tops.size]);
  }
  return words;
}"""
LINE_LEFTS = """el => {
  const cell = el.closest("td");
  const padding = parseFloat(getComputedStyle(cell).paddingLeft);
  const content = cell.getBoundingClientRect().left + padding;
  const range = document.createRange();
  range.selectNodeContents(el);
  const lines = new Map();
  for (const r of range.getClientRects()) {
    const top = Math.round(r.top);
    lines.set(top, Math.min(lines.get(top) ?? r.left, r.left));
  }
  return [...lines.values()].map((left) => left - content);
}"""


@pytest.mark.parametrize("width", [1440, 1024])
def test_a_workload_page_wraps_between_words(browser, demo, wordy_workload, width):  # noqa: F811
    context = browser.new_context(viewport={"width": width, "height": 900})
    tab = context.new_page()
    try:
        signed_in(tab, demo.url)
        tab.goto(f"{demo.url}/#/workloads/{wordy_workload['id']}")
        message = tab.locator("#workload-details dd", has_text="Not enough free resources")
        expect(message).to_be_visible()
        words = message.evaluate(WORD_LINES)
        assert max(lines for _word, lines in words) == 1, [w for w in words if w[1] > 1]
        assert message.bounding_box()["height"] > 40  # it did wrap, between words
        # A wrapped pod name reads from the left edge of its cell, as every other cell does.
        pod = tab.locator("#pods button[data-pod]", has_text=WORDY_POD)
        expect(pod).to_be_visible()
        lefts = pod.evaluate(LINE_LEFTS)
        assert len(lefts) > 1, lefts
        assert all(abs(left) < 1 for left in lefts), lefts
        for panel in tab.locator("main section.panel").all():
            needed, room = panel.evaluate("el => [el.scrollWidth, el.clientWidth]")
            assert needed <= room, (panel.locator("h2").first.text_content(), needed, room)
        screenshot(tab, f"workload-wrapping-{width}")
    finally:
        context.close()


def test_the_pending_queue_waits_since_the_workload_last_became_pending(page, demo, api):  # noqa: F811
    # Pending for 48 hours, then running, preempted and pending again 90 minutes ago: it has
    # waited 90 minutes this time, 49.5 hours in all.
    now = datetime.now(UTC).replace(microsecond=0)
    workload_id = str(uuid.uuid4())
    name = f"preempted-{workload_id[:6]}"
    for hours_ago, phase in ((50, "Pending"), (2, "Running"), (1.5, "Pending")):
        at = (now - timedelta(hours=hours_ago)).isoformat()
        _reported(api, phase, id=workload_id, name=name, observedAt=at, phaseUpdatedAt=at)
    (stored,) = api.get("/api/v1/workloads", params={"filterBy": f"name=={name}"}).json()[
        "workloads"
    ]
    assert stored["totalPendingTimeSeconds"] >= 49.5 * 3600

    signed_in(page, demo.url)
    longest = api.get(
        "/api/v1/workloads",
        params={"filterBy": "phase==Pending", "sortBy": "phaseUpdatedAt", "limit": 10},
    ).json()["workloads"]
    rows = page.locator("#pending-table tbody tr")
    expect(rows.locator("td:first-child")).to_have_text([w["name"] for w in longest])
    shown_at = datetime.now(UTC)
    for workload, row in zip(longest, rows.all(), strict=True):
        # Waited until the page asked, within the two minutes before the test looked.
        waited = (shown_at - datetime.fromisoformat(workload["phaseUpdatedAt"])).total_seconds()
        expected = {_duration(waited - lag) for lag in range(120)}
        assert row.locator("td[data-field=waiting]").inner_text() in expected, workload["name"]
    # The Pending link lists them in the same order.
    href = page.locator("#workloads-pending").get_attribute("href")
    assert parse_qs(urlparse(href.replace("#/", "/")).query) == {
        "f": ["phase==Pending"], "sort": ["phaseUpdatedAt"], "order": ["asc"],
    }  # fmt: skip

    # The total is on the workload's page, named as a total.
    page.goto(f"{demo.url}/#/workloads/{workload_id}")
    details = page.locator("#workload-details")
    expect(details.locator("dt", has_text="Pending in total")).to_be_visible()
    expect(details).to_contain_text(_duration(stored["totalPendingTimeSeconds"]))


def _duration(seconds: float) -> str:
    """A duration as the dashboard writes it: its two largest units (days, hours, minutes)."""
    left = max(0, int(seconds))
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if left >= size:
            parts.append(f"{left // size}{unit}")
            left %= size
        if len(parts) == 2:
            break
    return " ".join(parts) if parts else f"{left}s"
