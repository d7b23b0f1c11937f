"""The dashboard's Events view in headless Chromium against one real ``gpufleet serve --demo``
per module: the fleet's events newest first as the API lists them, each linking to its
workload and project, filtered by type, cluster and project and paged, with the counts the API
gives; a project viewer's view holds its project's events only."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from playwright.sync_api import Page, expect

from tests.support.access import grant, new_service_account
from tests.test_dashboard import api, browser, demo, page, screenshot, sign_in  # noqa: F401

pytestmark = pytest.mark.e2e

DASH = "\N{EN DASH}"
PAGE = 50


def open_events(tab: Page, url: str, route: str = "#/events", **credentials) -> None:
    sign_in(tab, url, **credentials)
    expect(tab.locator("#topbar")).to_be_visible()
    tab.goto(f"{url}/{route}")
    expect(tab.locator("#events-table")).to_be_visible()


def listed(client, headers=None, **params) -> tuple[list[dict], int]:
    """The first page of events for ``params`` and how many there are, from the API."""
    events = client.get("/api/v1/events", params={**params, "limit": PAGE}, headers=headers)
    count = client.get("/api/v1/events/count", params=params, headers=headers)
    assert events.status_code == 200 and count.status_code == 200, (events.text, count.text)
    return events.json()["events"], count.json()["count"]


def shown_rows(tab: Page) -> list[dict]:
    return tab.locator("#events-table tbody tr").evaluate_all(
        "rows => rows.map(r => ({id: r.dataset.id, type: r.dataset.type,"
        " workload: r.dataset.workload,"
        " workloadLink: r.querySelector('[data-column=workload] a').getAttribute('href'),"
        " workloadName: r.querySelector('[data-column=workload]').textContent,"
        " projectLink: r.querySelector('[data-column=project] a').getAttribute('href'),"
        " project: r.querySelector('[data-column=project]').textContent,"
        " cluster: r.querySelector('[data-column=cluster]').textContent}))"
    )


def expect_page_of(tab: Page, events: list[dict], total: int) -> list[dict]:
    """The table shows exactly ``events``, in order, and the pager ``total``."""
    expect(tab.locator("#events-range")).to_have_text(f"1{DASH}{len(events)} of {total:,}")
    rows = shown_rows(tab)
    assert [r["id"] for r in rows] == [e["id"] for e in events]
    for row, event in zip(rows, events, strict=True):
        assert row["workloadLink"] == f"#/workloads/{quote(event['workloadId'], safe='')}"
        assert row["workloadName"] == event["workloadName"]
        assert row["projectLink"] == f"#/projects/{quote(event['projectId'], safe='')}"
        assert row["project"] == event["projectName"]
        assert row["type"] == event["type"]
    return rows


def test_the_demo_has_events_of_many_workloads(api):  # noqa: F811
    _, total = listed(api)
    assert total > PAGE
    every = api.get("/api/v1/events", params={"limit": 500}).json()["events"]
    assert len({e["workloadId"] for e in every}) >= 20
    assert {e["type"] for e in every} == {"Normal", "Warning"}
    # Every event names a workload the workload API knows, with the same name and project.
    for event in every[:20]:
        workload = api.get(f"/api/v1/workloads/{event['workloadId']}").json()
        assert (workload["name"], workload["projectId"]) == (
            event["workloadName"],
            event["projectId"],
        )
        assert workload["projectName"] == event["projectName"]


def test_the_events_view_lists_the_fleets_events_newest_first(page, demo, api):  # noqa: F811
    sign_in(page, demo.url)
    expect(page.locator("#topbar")).to_be_visible()
    page.click("a[data-nav=events]")
    expect(page.locator("a[data-nav=events].active")).to_be_visible()
    expect(page.locator("#events-table")).to_be_visible()
    events, total = listed(api)
    names = {c["uuid"]: c["name"] for c in api.get("/api/v1/clusters").json()}
    rows = expect_page_of(page, events, total)
    assert [r["cluster"] for r in rows] == [names[e["clusterId"]] for e in events]
    warnings = page.locator("#events-table tr[data-type=Warning] .event-Warning")
    expect(warnings).to_have_count(sum(e["type"] == "Warning" for e in events))
    screenshot(page, "events")

    page.click("#events-next")
    expect(page.locator("#events-range")).to_have_text(
        f"{PAGE + 1}{DASH}{min(2 * PAGE, total)} of {total:,}"
    )
    older = api.get("/api/v1/events", params={"offset": PAGE, "limit": PAGE}).json()["events"]
    expect(page.locator("#events-table tbody tr").first).to_have_attribute(
        "data-id", older[0]["id"]
    )

    # An event opens its workload's page.
    page.click("#events-table tbody tr:first-child [data-column=workload] a")
    expect(page.locator("#workload-details")).to_contain_text(older[0]["workloadId"])


def test_the_filters_narrow_the_view_as_the_api_does(page, demo, api):  # noqa: F811
    open_events(page, demo.url)
    page.select_option("select[name=type]", "Warning")
    expect(page).to_have_url(f"{demo.url}/#/events?type=Warning")
    expect_page_of(page, *listed(api, type="Warning"))

    # A cluster of the events, and a project of its events: each narrows what is shown.
    cluster = next(iter(api.get("/api/v1/clusters").json()))
    page.select_option("select[name=cluster]", cluster["uuid"])
    events, total = listed(api, type="Warning", clusterId=cluster["uuid"])
    rows = expect_page_of(page, events, total)
    assert {r["cluster"] for r in rows} == {cluster["name"]}
    project = events[0]["projectId"]
    page.select_option("select[name=project]", project)
    events, total = listed(api, type="Warning", clusterId=cluster["uuid"], projectId=project)
    assert total > 0
    rows = expect_page_of(page, events, total)
    assert {r["project"] for r in rows} == {events[0]["projectName"]}
    screenshot(page, "events-filtered")

    # The filters are in the address bar: the same view opens from a link.
    route = page.url.split("/", 3)[3]
    page.goto(f"{demo.url}/")
    page.goto(f"{demo.url}/{route}")
    expect_page_of(page, events, total)
    expect(page.locator("select[name=project]")).to_have_value(project)

    page.select_option("select[name=type]", "")
    expect_page_of(page, *listed(api, clusterId=cluster["uuid"], projectId=project))


def test_a_project_viewer_sees_its_projects_events_only(page, demo, api):  # noqa: F811
    project = api.get("/api/v1/events", params={"limit": 1}).json()["events"][0]["projectId"]
    viewer = new_service_account(api, "events-viewer")
    assert grant(api, viewer["clientId"], "viewer", "project", project).status_code == 201
    open_events(page, demo.url, client_id=viewer["clientId"], secret=viewer["clientSecret"])
    events, total = listed(api, projectId=project)
    rows = expect_page_of(page, events, total)
    assert {r["projectLink"] for r in rows} == {f"#/projects/{quote(project, safe='')}"}
