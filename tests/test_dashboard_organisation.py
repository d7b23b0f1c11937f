"""The dashboard's project page and Departments view in headless Chromium against a real demo
server, with one more cluster reported through the ingest APIs: two node pools, a department
whose two projects are promised more H100s than it is, a project with a limit, and running and
pending workloads. Every figure shown is checked against the API's answer for it."""

from __future__ import annotations

import math
import uuid

import pytest
from playwright.sync_api import Locator, expect

from tests.support.access import bearer, grant, new_service_account, token_for
from tests.support.agent_reports import at, in_project, node_report, queue_report, report
from tests.support.demo_server import demo_server
from tests.test_dashboard import browser, page, screenshot, sign_in  # noqa: F401

pytestmark = pytest.mark.e2e

CLUSTER = "0b5c7f7e-3c61-4f0e-9d1e-5a3b2c1d0e9f"
DEPARTMENT = "org-dept"
LAB = "org-lab"
NO_FIGURE = "\N{EN DASH}"  # a figure the API does not give


def _quota(pool: str, deserved: float, limit: float = -1, weight: float = 1) -> dict:
    return {
        "nodePool": pool,
        "gpu": {"deserved": deserved, "limit": limit, "overQuotaWeight": weight},
    }


# The department is guaranteed 6 H100s and 4 A100s; its projects are promised 8 H100s and 2 A100s.
QUEUES = (
    queue_report(DEPARTMENT, cluster_id=CLUSTER, quotas=[_quota("h100", 6), _quota("a100", 4)]),
    queue_report(
        "org-train",
        department=DEPARTMENT,
        cluster_id=CLUSTER,
        quotas=[_quota("h100", 4, limit=6, weight=2), _quota("a100", 2)],
    ),
    queue_report(
        "org-serve", department=DEPARTMENT, cluster_id=CLUSTER, quotas=[_quota("h100", 4)]
    ),
    # A second department, guaranteed 2 H100s and without over-quota weight: the pool's GPUs
    # beyond the departments' quotas all go to the first department's projects.
    queue_report(LAB, cluster_id=CLUSTER, quotas=[_quota("h100", 2, weight=0)]),
    queue_report("org-lab-1", department=LAB, cluster_id=CLUSTER, quotas=[_quota("h100", 1)]),
)
DEPARTMENT_ID = QUEUES[0]["orgUnit"]["id"]
TRAIN_ID, SERVE_ID = (q["orgUnit"]["id"] for q in QUEUES[1:3])
LAB_PROJECT_ID = QUEUES[4]["orgUnit"]["id"]


def _workload(project_id: str, name: str, phase: str, gpus: float, pool: str) -> dict:
    running = phase == "Running"
    item = report(
        cluster_id=CLUSTER,
        phase=phase,
        **in_project(project_id, name, DEPARTMENT_ID, DEPARTMENT),
        allocatedResources={"gpu": gpus if running else 0.0},
        workloadRequestedResources={"gpu": {"request": gpus}},
        currentNodePools=[pool] if running else [],
        requestedNodePools=[pool],
    )
    if running:
        item["pods"][0].update(
            uid=str(uuid.uuid4()),
            nodeName=f"{pool}-0",
            nodepool=pool,
            allocatedResources={"gpu": gpus},
        )
    else:
        item["pods"] = []
    return item


WORKLOADS = (
    _workload(TRAIN_ID, "org-train", "Running", 6.0, "h100"),
    _workload(TRAIN_ID, "org-train", "Pending", 4.0, "h100"),
    _workload(SERVE_ID, "org-serve", "Running", 1.0, "a100"),
)


@pytest.fixture(scope="module")
def demo(request, tmp_path_factory):
    with demo_server(request, tmp_path_factory) as server, server.api() as api:
        base = f"/api/v1/ingest/clusters/{CLUSTER}"
        # 16 H100s on two nodes, 8 A100s on one.
        nodes = [
            node_report(name="h100-0", nodePool="h100"),
            node_report(name="h100-1", nodePool="h100"),
            node_report(name="a100-0", nodePool="a100"),
        ]
        assert api.post(f"{base}/nodes", json={"nodes": nodes}).status_code == 200
        response = api.post(f"{base}/workloads", json={"workloads": list(WORKLOADS)})
        assert response.status_code == 200 and response.json()["accepted"] == 3, response.text
        response = api.post(f"{base}/queues", json={"observedAt": at(0), "queues": list(QUEUES)})
        assert response.status_code == 200 and response.json()["refused"] == [], response.text
        yield server


def gpus(value: float | None) -> str:
    """A figure as the views print it: rounded half up to two decimals, as Math.round does."""
    if value is None:
        return NO_FIGURE
    rounded = math.floor(value * 100 + 0.5) / 100
    return str(int(rounded)) if rounded.is_integer() else repr(rounded)


def waiting(requested: float, allocated: float) -> str:
    """What waits, as the views print it: requested beyond allocated, never below 0."""
    return gpus(max(0.0, requested - allocated))


def expect_fields(scope: Locator, fields: dict[str, str], inside: str = "") -> None:
    """Each ``[data-field=NAME]`` in ``scope`` (its ``inside`` element) reads its text."""
    for name, text in fields.items():
        expect(scope.locator(f"[data-field={name}] {inside}".strip())).to_have_text(text)


def test_a_projects_page_shows_its_quota_and_use_per_node_pool(page, demo):  # noqa: F811
    with demo.api() as api:
        project = api.get(f"/api/v1/org-unit/projects/{TRAIN_ID}").json()
        mine = f"projectId=={TRAIN_ID}"
        counts = {
            name: api.get("/api/v1/workloads/count", params={"filterBy": filters}).json()["count"]
            for name, filters in (("workloads", [mine]), ("pending", [mine, "phase==Pending"]))
        }
    quotas = {r["nodePool"]["name"]: r["gpu"] for r in project["resources"]}
    statuses = {s["nodePoolName"]: s for s in project["status"]["nodePoolQuotaStatuses"]}
    # What the fixture reported, as the API answers it: a pending request counts in its pool.
    assert quotas["h100"] == {"deserved": 4.0, "limit": 6.0, "overQuotaWeight": 2.0}
    assert statuses["h100"]["allocated"]["gpu"] == 6.0
    assert statuses["h100"]["requested"]["gpu"] == 10.0
    assert counts == {"workloads": 2, "pending": 1}

    sign_in(page, demo.url)
    expect(page.locator("#topbar")).to_be_visible()
    page.click("[data-nav=projects]")
    page.click(f"tr[data-project='{TRAIN_ID}'] td:first-child a")
    expect(page.locator("h1")).to_have_text("org-train")
    pools = page.locator("#project-pools tbody tr")
    expect(pools).to_have_count(len(set(quotas) | set(statuses)))
    for name, quota in quotas.items():
        row = page.locator(f"#project-pools tr[data-pool={name}]")
        status = statuses.get(name, {})
        allocated = status.get("allocated", {}).get("gpu", 0.0)
        requested = status.get("requested", {}).get("gpu", 0.0)
        expect_fields(
            row,
            {
                "deserved": gpus(quota["deserved"]),
                "limit": "none" if quota["limit"] is None else gpus(quota["limit"]),
                "weight": gpus(quota["overQuotaWeight"]),
                "allocated": gpus(allocated),
                "requested": gpus(requested),
                "waiting": waiting(requested, allocated),
            },
        )
    # 16 H100s: its department takes its 6 and all 8 no department reserves (the other one's
    # weight is 0), 14. Of those its projects reserve 8; by weight 2 of 3 its part of the other
    # 6 would take it to 8, past its limit of 6. Alone in the A100 pool, it may take all 8.
    expect(page.locator("#project-pools tr[data-pool=h100] [data-field=fair-share]")).to_have_text(
        "6"
    )
    expect(page.locator("#project-pools tr[data-pool=a100] [data-field=fair-share]")).to_have_text(
        "8"
    )

    figures = page.locator("#project-figures")
    total = project["status"]["quotaStatus"]
    expected = {
        "quota": gpus(project["totalResources"]["gpuQuota"]),
        "allocated": gpus(total["allocated"]["gpu"]),
        "requested": gpus(total["requested"]["gpu"]),
        "waiting": waiting(total["requested"]["gpu"], total["allocated"]["gpu"]),
        "fair-share": "14",
        "workloads": str(counts["workloads"]),
        "pending": str(counts["pending"]),
    }
    expect_fields(figures, expected, "strong")
    screenshot(page, "project")

    page.click("#project-figures [data-field=pending] a")
    expect(page.locator(f".chip[data-filter='{mine}']")).to_be_visible()
    expect(page.locator(".chip[data-filter='phase==Pending']")).to_be_visible()
    rows = page.locator("#workloads-table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first.locator(".badge")).to_have_text("Pending")
    expect(rows.first.locator("td").first).to_have_text(WORKLOADS[1]["name"])


def test_the_fair_share_of_the_other_project_takes_what_the_limit_leaves(page, demo):  # noqa: F811
    sign_in(page, demo.url)
    expect(page.locator("#topbar")).to_be_visible()
    page.goto(f"{demo.url}/#/projects/{SERVE_ID}")
    # Its weighted part of its department's 6 spare H100s, 2, and the 2 the limited project
    # cannot take: 4 + 4. Over the pool's projects alone, without the departments first, it
    # would share the lab's project's part too (6.5).
    expect(page.locator("#project-pools tr[data-pool=h100] [data-field=fair-share]")).to_have_text(
        "8"
    )
    # It holds an A100 without a quota there: the pool is shown, with no quota and no fair share.
    a100 = page.locator("#project-pools tr[data-pool=a100]")
    expect_fields(a100, {"deserved": NO_FIGURE, "allocated": "1", "fair-share": NO_FIGURE})
    # The allocation in a pool links to the project's workloads running there.
    a100.locator("[data-field=allocated] a").click()
    expect(page.locator("#workloads-table tbody tr")).to_have_count(1)
    expect(page.locator("#workloads-table tbody tr td").first).to_have_text(WORKLOADS[2]["name"])
    page.click("[data-nav=projects]")
    expect(page.locator(f"tr[data-project='{SERVE_ID}'] [data-field=fair-share]")).to_have_text("8")
    # The lab's department has its quota and no part of the rest: its project, 1 of its 2.
    lab = page.locator(f"tr[data-project='{LAB_PROJECT_ID}']")
    expect(lab.locator("[data-field=fair-share]")).to_have_text("2")


def _over_subscribed(department: dict) -> list[str]:
    """The pools where the API's projectsAggregatedResources exceed the department's quota."""
    own = {r["nodePool"]["name"]: r["gpu"]["deserved"] for r in department["resources"]}
    if not own:
        return []
    return sorted(
        a["nodePool"]["name"]
        for a in department["projectsAggregatedResources"]
        if a["gpu"]["deserved"] > own.get(a["nodePool"]["name"], 0)
    )


def test_the_departments_view_compares_each_department_with_its_projects(page, demo):  # noqa: F811
    with demo.api() as api:
        listed = api.get("/api/v1/org-unit/departments").json()["departments"]
        details = {
            d["id"]: api.get(f"/api/v1/org-unit/departments/{d['id']}").json() for d in listed
        }
        projects = api.get("/api/v1/org-unit/projects", params={"limit": 500}).json()["projects"]
    flagged = {i for i, d in details.items() if _over_subscribed(d)}
    assert flagged == {DEPARTMENT_ID}  # the demo's departments fit their projects
    assert _over_subscribed(details[DEPARTMENT_ID]) == ["h100"]

    sign_in(page, demo.url)
    expect(page.locator("#topbar")).to_be_visible()
    page.click("[data-nav=departments]")
    panels = page.locator("section.department")
    expect(panels).to_have_count(len(listed))
    expect(page.locator("section.department.over")).to_have_count(len(flagged))
    expect(page.locator("#over-subscribed h2")).to_have_text(
        "Projects over their department's quota (1)"
    )
    expect(page.locator("#over-subscribed p")).to_have_text(f"{DEPARTMENT}: h100 8 of 6")

    for department in listed:
        detail = details[department["id"]]
        panel = page.locator(f"section.department[data-department='{department['id']}']")
        status = department["status"]["quotaStatus"]
        aggregated = sum(a["gpu"]["deserved"] for a in detail["projectsAggregatedResources"])
        mine = [p for p in projects if p["parentId"] == department["id"]]
        expected = {
            "quota": gpus(department["totalResources"]["gpuQuota"]),
            "projects-quota": gpus(aggregated),
            "allocated": gpus(status["allocated"]["gpu"]),
            "requested": gpus(status["requested"]["gpu"]),
            "waiting": waiting(status["requested"]["gpu"], status["allocated"]["gpu"]),
            "projects": str(len(mine)),
        }
        expect_fields(panel.locator(".figures"), expected, "strong")
        for pool in detail["status"]["nodePoolQuotaStatuses"]:
            row = panel.locator(f"table.pools tr[data-pool='{pool['nodePoolName']}']")
            shown = {kind: gpus(pool[kind]["gpu"]) for kind in ("allocated", "requested")}
            expect_fields(row, shown)
        for aggregate in detail["projectsAggregatedResources"]:
            row = panel.locator(f"table.pools tr[data-pool='{aggregate['nodePool']['name']}']")
            expect_fields(row, {"projects-quota": gpus(aggregate["gpu"]["deserved"])})
        expect(panel.locator("table.department-projects tbody tr")).to_have_count(len(mine))

    ours = page.locator(f"section.department[data-department='{DEPARTMENT_ID}']")
    expect(ours.locator(".over-badge")).to_have_text("Projects over quota")
    h100 = ours.locator("table.pools tr[data-pool=h100]")
    expect(h100).to_have_class("over")
    expect_fields(h100, {"quota": "6", "projects-quota": "8", "waiting": "4"})
    expect(ours.locator("table.pools tr[data-pool=a100]")).not_to_have_class("over")
    train = ours.locator(f"table.department-projects tr[data-project='{TRAIN_ID}']")
    expect_fields(train, {"requested": "10", "waiting": "4"})
    screenshot(page, "departments")

    train.locator("a").click()
    expect(page.locator("h1")).to_have_text("org-train")
    page.click(f"a[href='#/departments/{DEPARTMENT_ID}']")
    expect(page.locator("h1")).to_have_text(DEPARTMENT)
    expect(page.locator("section.department")).to_have_count(1)
    expect(page.locator("section.department table.department-projects tbody tr")).to_have_count(2)


def test_a_project_viewer_sees_its_project_and_no_refusals(page, demo):  # noqa: F811
    with demo.api() as api:
        account = new_service_account(api, "organisation-project-viewer")
        rule = grant(api, account["clientId"], "viewer", "project", SERVE_ID)
        assert rule.status_code == 201, rule.text
        token = token_for(api, account["clientId"], account["clientSecret"])
        project = api.get(f"/api/v1/org-unit/projects/{SERVE_ID}", headers=bearer(token)).json()
        seen = api.get("/api/v1/org-unit/departments", headers=bearer(token)).json()
    assert seen["departments"] == []  # a project's reader does not read its department
    refused: list[str] = []
    # 404 is also what /demo/status answers on a server without the living simulator.
    page.on(
        "response",
        lambda r: r.status in (401, 403, 404) and "/demo/" not in r.url and refused.append(r.url),
    )
    page.goto(demo.url + "/")
    page.fill("input[name=clientId]", account["clientId"])
    page.fill("input[name=clientSecret]", account["clientSecret"])
    page.click("#signin button[type=submit]")
    expect(page.locator("#topbar")).to_be_visible()
    page.click("[data-nav=projects]")
    expect(page.locator("table.projects tbody tr")).to_have_count(1)
    # A fair share takes every project of the pool; over its own alone it read the pool's all.
    row = page.locator(f"tr[data-project='{SERVE_ID}']")
    expect(row.locator("[data-field=fair-share]")).to_have_text(NO_FIGURE)
    row.locator("td:first-child a").click()
    expect(page.locator("h1")).to_have_text("org-serve")
    # Its department's page would answer 404: the department is named as its workloads name
    # it, not linked.
    department = page.locator("dl.details dd").first
    expect(department).to_have_text(DEPARTMENT)
    expect(department.locator("a")).to_have_count(0)
    status = project["status"]["quotaStatus"]
    expect_fields(
        page.locator("#project-figures"),
        {
            "quota": "4",
            "allocated": gpus(status["allocated"]["gpu"]),
            "pending": "0",
            "fair-share": NO_FIGURE,
        },
        "strong",
    )
    pool = page.locator("#project-pools tr[data-pool=h100] [data-field=fair-share]")
    expect(pool).to_have_text(NO_FIGURE)
    page.click("[data-nav=departments]")
    expect(page.locator("main")).to_contain_text("No departments: this key's rules cover none.")
    # Nothing is said of departments it cannot see (every one's projects fit, or not).
    expect(page.locator("#over-subscribed")).to_have_count(0)
    page.click("[data-nav=usage]")
    expect(page.locator("#usage-unit option").first).to_have_text("All this key may see")
    assert refused == []
