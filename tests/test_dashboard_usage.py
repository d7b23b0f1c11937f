"""The dashboard's Usage view in headless Chromium against a real demo server (its 90 days of
GPU-hours): the chart and the top consumers show the API's figures, the window and unit
pickers change the question, and the download is the API's CSV for it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Page, expect

# The same module-scoped demo server and API client as the other dashboard tests (one of each
# for this module).
from tests.test_dashboard import api, browser, demo, page, screenshot, sign_in  # noqa: F401

pytestmark = pytest.mark.e2e

# A window wholly in the past, so the live ledger cannot move its figures under the test.
LAST_DAY = (datetime.now(UTC) - timedelta(days=1)).date()
FIRST_DAY = LAST_DAY - timedelta(days=13)


def _number(text: str) -> float:
    return float(text.replace(",", "").removesuffix("%").removesuffix(" GPU-h"))


def _shown(tab: Page) -> dict:
    """The window the view asked about, as the API parameters it used."""
    section = tab.locator("#usage")
    return {"start": section.get_attribute("data-start"), "end": section.get_attribute("data-end")}


def _open(tab: Page, server, route: str = "") -> None:
    sign_in(tab, server.url)
    expect(tab.locator("#topbar")).to_be_visible()
    tab.click("[data-nav=usage]")
    if route:
        tab.evaluate("route => { location.hash = route }", f"#/usage?{route}")
    expect(tab.locator("#usage-chart canvas")).to_be_visible()


def _usage(client, params: dict, **more) -> list[dict]:
    response = client.get("/api/v1/usage", params={**params, **more})
    assert response.status_code == 200, response.text
    return response.json()["values"]


def test_the_view_shows_the_tenants_hours_and_the_top_consumers(page, demo, api):  # noqa: F811
    route = f"window=custom&from={FIRST_DAY}&to={LAST_DAY}"
    _open(page, demo, route)
    expect(page.locator("#usage")).to_have_attribute("data-start", f"{FIRST_DAY}T00:00:00.000Z")
    window = _shown(page)
    assert page.locator("#usage").get_attribute("data-bucket") == "day"
    assert page.locator("#usage-chart").get_attribute("data-points") == "14"
    (total,) = _usage(api, window)
    assert total["allocatedGpuHours"] > 0
    totals = page.locator("#usage-totals")
    shown = _number(totals.locator("[data-field=allocated] strong").inner_text())
    assert shown == pytest.approx(total["allocatedGpuHours"], abs=0.01)
    by_project = _usage(api, window, groupBy="project")
    rows = page.locator("#usage-consumers tbody tr")
    expect(rows).to_have_count(min(20, len(by_project)))
    for value in by_project:
        row = page.locator(f"#usage-consumers tr[data-group='{value['groups'][0]['value']}']")
        expect(row.locator("td").first).to_have_text(value["groups"][0]["name"])
        efficiency = _number(row.locator("td[data-field=efficiency]").inner_text())
        expected = 100 * value["usedGpuHours"] / value["allocatedGpuHours"]
        assert efficiency == pytest.approx(expected, abs=0.051)
        idle = _number(row.locator("td[data-field=idle]").inner_text())
        assert idle == pytest.approx(value["idleGpuHours"], abs=0.006)
    screenshot(page, "usage")


def test_the_window_picker_changes_the_answer(page, demo, api):  # noqa: F811
    _open(page, demo)
    section = page.locator("#usage")
    allocated = page.locator("#usage-totals [data-field=allocated] strong")
    answers = {}
    for name, bucket, points in (("24h", "hour", (24, 25)), ("90d", "day", (90, 91))):
        page.click(f"[data-window='{name}']")
        expect(page.locator(f"[data-window='{name}'].active")).to_be_visible()
        expect(section).to_have_attribute("data-bucket", bucket)
        assert int(page.locator("#usage-chart").get_attribute("data-points")) in points
        answers[name] = _number(allocated.inner_text())
        (total,) = _usage(api, _shown(page))
        # The current hour moves on while the test reads it; older hours do not.
        assert answers[name] == pytest.approx(total["allocatedGpuHours"], rel=0.02)
    assert answers["90d"] > 10 * answers["24h"] > 0
    page.click("[data-window=custom]")
    page.fill("#usage-custom input[name=from]", str(LAST_DAY - timedelta(days=1)))
    page.fill("#usage-custom input[name=to]", str(LAST_DAY))
    page.click("#usage-custom button[type=submit]")
    expect(section).to_have_attribute("data-bucket", "hour")
    expect(page.locator("#usage-chart")).to_have_attribute("data-points", "48")
    (total,) = _usage(api, _shown(page))
    assert _number(allocated.inner_text()) == pytest.approx(total["allocatedGpuHours"], abs=0.01)


def test_a_project_shows_its_submitters_and_downloads_the_apis_csv(page, demo, api):  # noqa: F811
    project = max(
        _usage(api, {"start": f"{FIRST_DAY}T00:00:00Z"}, groupBy="project"),
        key=lambda v: v["allocatedGpuHours"],
    )["groups"][0]
    _open(page, demo, f"window=custom&from={FIRST_DAY}&to={LAST_DAY}")
    expect(page.locator("#usage-unit option").first).to_have_text("Whole tenant")
    page.select_option("#usage-unit", f"project:{project['value']}")
    expect(page.locator("#usage-consumers th").first).to_have_text("Submitter")
    window = _shown(page)
    (total,) = _usage(api, window, filterBy=f"projectId=={project['value']}")
    shown = _number(page.locator("#usage-totals [data-field=allocated] strong").inner_text())
    assert shown == pytest.approx(total["allocatedGpuHours"], abs=0.01)
    with page.expect_download() as waiting:
        page.click("#usage-csv")
    download = waiting.value
    assert download.suggested_filename.endswith(".csv")
    text = Path(download.path()).read_bytes().decode()
    expected = api.get(
        "/api/v1/usage",
        params={**window, "groupBy": "submitter", "filterBy": f"projectId=={project['value']}"},
        headers={"Accept": "text/csv"},
    )
    assert text == expected.text
    assert text.splitlines()[0].startswith("submitter,submitterName,allocatedGpuHours")
    assert len(text.splitlines()) > 1


def test_stacked_charts_start_at_zero(page, demo):  # noqa: F811
    _open(page, demo)
    chart = page.locator("#usage-chart")
    for name in ("24h", "90d"):
        page.click(f"[data-window='{name}']")
        expect(page.locator(f"[data-window='{name}'].active")).to_be_visible()
        expect(chart.locator("canvas")).to_be_visible()
        assert chart.evaluate("el => el.plot.scales.y.min") == 0, name


HOURS_PER_BUCKET = {"hour": 1, "day": 24}
WINDOW_HOURS = {"24h": 24, "7d": 7 * 24, "30d": 30 * 24, "90d": 90 * 24}


def _series_of_window(url: str, name: str) -> bool:
    """Whether ``url`` asks for the buckets of the window ``name``: from a bucket's start up to
    now, so at least the window and less than a bucket more. A response to an earlier choice
    that arrives late is not taken for this one's."""
    if "/api/v1/usage?" not in url:
        return False
    asked = parse_qs(urlsplit(url).query)
    if "bucket" not in asked:
        return False
    start, end = (datetime.fromisoformat(asked[key][0]) for key in ("start", "end"))
    hours = (end - start).total_seconds() / 3600
    return WINDOW_HOURS[name] <= hours < WINDOW_HOURS[name] + HOURS_PER_BUCKET[asked["bucket"][0]]


def test_no_bucket_exceeds_the_fleet_and_the_totals_are_the_windows_buckets(page, demo, api):  # noqa: F811
    # The API answers whole buckets from the one holding `start` (it rounds `start` down), so a
    # window ending now starts on a bucket boundary: its first bucket is whole, drawn as it is,
    # and only the current one is partial (drawn at its pace so far). The live ledger moves the
    # current bucket, so everything is compared with the answer the page itself drew.
    (fleet,) = api.get("/api/v1/nodes/telemetry", params={"telemetryType": "TOTAL_GPUS"}).json()[
        "values"
    ]
    gpus = float(fleet["value"])
    _open(page, demo)
    chart = page.locator("#usage-chart")
    for name in ("24h", "7d", "30d", "90d"):
        with page.expect_response(lambda r, name=name: _series_of_window(r.url, name)) as got:
            page.click(f"[data-window='{name}']")
        asked = parse_qs(urlsplit(got.value.url).query)
        expect(page.locator("#usage")).to_have_attribute("data-start", asked["start"][0])
        expect(chart.locator("canvas")).to_be_visible()
        bucket = asked["bucket"][0]
        hours = HOURS_PER_BUCKET[bucket]
        start = datetime.fromisoformat(asked["start"][0])
        assert start.timestamp() % (hours * 3600) == 0, (name, start)
        stated = start.strftime("%Y-%m-%d %H:%M" if bucket == "hour" else "%Y-%m-%d")
        expect(page.locator("#usage-window")).to_contain_text(f"From {stated} UTC to now")

        values = got.value.json()["values"]
        by_start = {datetime.fromisoformat(v["start"]).timestamp(): v for v in values}
        xs, tops = chart.evaluate("el => [el.plot.data[0], el.plot.data[1]]")
        assert xs[0] == start.timestamp(), name
        assert set(by_start) <= set(xs), name
        expect(chart).to_have_attribute("data-partial", str(len(xs) - 1))
        for x, top in zip(xs[:-1], tops[:-1], strict=True):
            drawn = by_start.get(x, {}).get("allocatedGpuHours", 0)
            assert top == pytest.approx(drawn, abs=1e-6), (name, x)
        assert max(tops) <= gpus * hours + 1e-6, (name, max(tops), gpus * hours)

        totals = page.locator("#usage-totals")
        for field, figure in (("allocated", "allocatedGpuHours"), ("used", "usedGpuHours")):
            shown = _number(totals.locator(f"[data-field={field}] strong").inner_text())
            assert shown == pytest.approx(sum(v[figure] for v in values), abs=0.006), (name, field)


def _rows_agree(tab: Page, values: list[dict]) -> None:
    """The consumers table shows each group of ``values`` (the API's answer) as it is."""
    expect(tab.locator("#usage-consumers tbody tr")).to_have_count(min(20, len(values)))
    for value in sorted(values, key=lambda v: -v["allocatedGpuHours"])[:20]:
        group = value["groups"][0]
        row = tab.locator(f"#usage-consumers tr[data-group='{group['value']}']")
        expect(row.locator("td").first).to_have_text(group["name"] or "(none)")
        allocated = _number(row.locator("td[data-field=allocated]").inner_text())
        assert allocated == pytest.approx(value["allocatedGpuHours"], abs=0.006)
        used = _number(row.locator("td[data-field=used]").inner_text())
        assert used == pytest.approx(value["usedGpuHours"], abs=0.006)


def _total_agrees(tab: Page, values: list[dict]) -> None:
    (total,) = values
    shown = _number(tab.locator("#usage-totals [data-field=allocated] strong").inner_text())
    assert shown == pytest.approx(total["allocatedGpuHours"], abs=0.01)


def test_a_cluster_and_one_of_its_node_pools_show_the_apis_figures(page, demo, api):  # noqa: F811
    window = {"start": f"{FIRST_DAY}T00:00:00Z", "end": f"{LAST_DAY + timedelta(days=1)}T00:00:00Z"}
    clusters = _usage(api, window, groupBy="cluster")
    assert len(clusters) >= 2  # the demo's two clusters both hold usage
    cluster = max(clusters, key=lambda v: v["allocatedGpuHours"])["groups"][0]
    in_cluster = f"clusterId=={cluster['value']}"
    # The tenant's table by cluster opens a cluster.
    _open(page, demo, f"window=custom&from={FIRST_DAY}&to={LAST_DAY}")
    page.click("#usage-by [data-by=cluster]")
    expect(page.locator("#usage-consumers th").first).to_have_text("Cluster")
    _rows_agree(page, clusters)
    page.click(f"#usage-consumers tr[data-group='{cluster['value']}'] a")
    expect(page.locator("#usage")).to_have_attribute("data-unit", f"cluster:{cluster['value']}")
    expect(page.locator("#usage-unit")).to_have_value(f"cluster:{cluster['value']}")
    expect(page.locator("#usage-consumers th").first).to_have_text("Project")
    _total_agrees(page, _usage(api, window, filterBy=in_cluster))
    _rows_agree(page, _usage(api, window, filterBy=in_cluster, groupBy="project"))

    page.click("#usage-by [data-by=nodepool]")
    expect(page.locator("#usage-consumers th").first).to_have_text("Node pool")
    pools = _usage(api, window, filterBy=in_cluster, groupBy="nodepool")
    assert len([p for p in pools if p["groups"][0]["value"]]) >= 2
    _rows_agree(page, pools)
    pool = max(pools, key=lambda v: v["allocatedGpuHours"])["groups"][0]["value"]
    screenshot(page, "usage-cluster")

    # A pool's row opens the pool: its chart, figures and projects are the API's for that
    # cluster's pool alone (two clusters' pools of one name are two pools).
    page.click(f"#usage-consumers tr[data-group='{pool}'] a")
    unit = f"nodepool:{cluster['value']}/{pool}"
    expect(page.locator("#usage")).to_have_attribute("data-unit", unit)
    expect(page.locator("#usage-unit")).to_have_value(unit)
    in_pool = f"{in_cluster},nodepool=={pool}"
    _total_agrees(page, _usage(api, window, filterBy=in_pool))
    _rows_agree(page, _usage(api, window, filterBy=in_pool, groupBy="project"))
    days = _usage(api, window, filterBy=in_pool, bucket="day")
    by_start = {datetime.fromisoformat(v["start"]).timestamp(): v for v in days}
    chart = page.locator("#usage-chart")
    expect(chart).to_have_attribute("data-points", "14")
    xs, tops = chart.evaluate("el => [el.plot.data[0], el.plot.data[1]]")
    assert set(by_start) <= set(xs)
    for x, top in zip(xs, tops, strict=True):
        assert top == pytest.approx(by_start.get(x, {}).get("allocatedGpuHours", 0), abs=1e-6)
    screenshot(page, "usage-nodepool")

    # The picker offers every cluster and every pool of each, the other cluster's too.
    other = min(clusters, key=lambda v: v["allocatedGpuHours"])["groups"][0]["value"]
    expect(page.locator(f"#usage-unit option[value='cluster:{other}']")).to_have_count(1)
    page.select_option("#usage-unit", f"nodepool:{other}/default")
    expect(page.locator("#usage")).to_have_attribute("data-unit", f"nodepool:{other}/default")
    in_other = f"clusterId=={other},nodepool==default"
    _total_agrees(page, _usage(api, window, filterBy=in_other))
    _rows_agree(page, _usage(api, window, filterBy=in_other, groupBy="project"))


def test_capacity_links_each_cluster_and_pool_to_its_usage(page, demo, api):  # noqa: F811
    sign_in(page, demo.url)
    expect(page.locator("#topbar")).to_be_visible()
    page.click("[data-nav=capacity]")
    section = page.locator("section.cluster").first
    cluster = section.get_attribute("data-cluster")
    pool = section.locator("tr[data-pool]").first.get_attribute("data-pool")
    section.locator(f"a[data-usage='nodepool:{cluster}/{pool}']").click()
    expect(page.locator("#usage")).to_have_attribute("data-unit", f"nodepool:{cluster}/{pool}")
    expect(page.locator("#usage-unit")).to_have_value(f"nodepool:{cluster}/{pool}")
    expect(page.locator("#usage-consumers th").first).to_have_text("Project")
    (total,) = _usage(api, _shown(page), filterBy=f"clusterId=={cluster},nodepool=={pool}")
    shown = _number(page.locator("#usage-totals [data-field=allocated] strong").inner_text())
    # The current hour moves on while the test reads it; older hours do not.
    assert shown == pytest.approx(total["allocatedGpuHours"], rel=0.02)
    page.go_back()
    page.locator(
        f"section.cluster[data-cluster='{cluster}'] a[data-usage='cluster:{cluster}']"
    ).click()
    expect(page.locator("#usage")).to_have_attribute("data-unit", f"cluster:{cluster}")
    expect(page.locator("#usage-unit")).to_have_value(f"cluster:{cluster}")
