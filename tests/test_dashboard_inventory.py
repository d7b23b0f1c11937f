"""The dashboard's Capacity and Projects views in headless Chromium against a real demo server,
with one more cluster reported through the ingest APIs: nodes (one cordoned, one not ready),
workloads whose pods hold GPUs on them, and queues giving two projects their quotas."""

from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import expect

from tests.support.agent_reports import at, in_project, node_report, report
from tests.support.demo_server import demo_server
from tests.test_dashboard import browser, page, screenshot, sign_in  # noqa: F401

pytestmark = pytest.mark.e2e

CLUSTER = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
NODES = ("gpu-a", "gpu-b", "gpu-c")
UNSCHEDULABLE = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}


def _workload(project_id: str, name: str, gpus: float, node: str) -> dict:
    item = report(
        cluster_id=CLUSTER,
        phase="Running",
        **in_project(project_id, name, "cap-research", "cap-research"),
        allocatedResources={"gpu": gpus},
        currentNodePools=["h100"],
    )
    item["pods"][0].update(
        uid=str(uuid.uuid4()), nodeName=node, nodepool="h100", allocatedResources={"gpu": gpus}
    )
    return item


def _queue(project_id: str, name: str, deserved: float) -> dict:
    unit = {
        "type": "project",
        "id": project_id,
        "name": name,
        "departmentId": "cap-research",
        "departmentName": "cap-research",
        "namespace": f"runai-{name}",
    }
    quotas = [{"nodePool": "h100", "gpu": {"deserved": deserved, "overQuotaWeight": 1}}]
    return {"source": "kai", "name": name, "orgUnit": unit, "quotas": quotas}


@pytest.fixture(scope="module")
def demo(request, tmp_path_factory):
    with demo_server(request, tmp_path_factory) as server, server.api() as api:
        base = f"/api/v1/ingest/clusters/{CLUSTER}"
        nodes = [node_report(name=name, nodePool="h100") for name in NODES]
        # Cordoned as Kubernetes marks it: spec.unschedulable and the taint; it keeps its pods.
        nodes[1].update(unschedulable=True, taints=[UNSCHEDULABLE])
        nodes[2]["status"] = "NotReady"
        assert api.post(f"{base}/nodes", json={"nodes": nodes}).status_code == 200
        workloads = [
            _workload("cap-1", "cap-borrower", 6.0, "gpu-a"),
            _workload("cap-1", "cap-borrower", 2.0, "gpu-b"),
            _workload("cap-2", "cap-modest", 1.0, "gpu-b"),
        ]
        response = api.post(f"{base}/workloads", json={"workloads": workloads})
        assert response.status_code == 200 and response.json()["accepted"] == 3, response.text
        queues = [_queue("cap-1", "cap-borrower", 4.0), _queue("cap-2", "cap-modest", 8.0)]
        response = api.post(f"{base}/queues", json={"observedAt": at(0), "queues": queues})
        assert response.status_code == 200 and response.json()["refused"] == [], response.text
        yield server


def test_the_capacity_view_shows_pools_and_a_node_grid(page, demo):  # noqa: F811
    with demo.api() as api:
        figures = {
            kind: api.get(
                "/api/v1/nodes/telemetry",
                params={"telemetryType": kind, "clusterId": CLUSTER},
            ).json()["values"][0]["value"]
            for kind in ("TOTAL_GPUS", "ALLOCATED_GPUS", "FREE_GPUS")
        }
    sign_in(page, demo.url)
    expect(page.locator("#topbar")).to_be_visible()
    page.click("[data-nav=capacity]")
    section = page.locator(f"section.cluster[data-cluster='{CLUSTER}']")
    expect(section).to_be_visible()
    row = section.locator("tr[data-pool=h100]")
    for kind, value in figures.items():
        expect(row.locator(f"td[data-type={kind}]")).to_have_text(value)
    expect(row.locator("td[data-type=NOT_READY]")).to_have_text("1")
    expect(row.locator("td[data-type=CORDONED]")).to_have_text("1")
    # 15 GPUs are free, but only gpu-a's 2 can take work: gpu-b is cordoned, gpu-c not ready.
    assert figures["FREE_GPUS"] == "15"
    expect(row.locator("td[data-type=SCHEDULABLE_FREE_GPUS]")).to_have_text("2")
    grid = section.locator(".node-grid[data-pool=h100] .node")
    expect(grid).to_have_count(3)
    expect(section.locator(".node[data-node=gpu-a]")).to_have_attribute("data-allocated", "6")
    expect(section.locator(".node[data-node=gpu-b]")).to_have_attribute("data-allocated", "3")
    expect(section.locator(".node.not-ready")).to_have_count(1)
    expect(section.locator(".node.cordoned")).to_have_count(1)
    cordoned = section.locator(".node.cordoned")
    expect(cordoned).to_have_attribute("data-node", "gpu-b")
    expect(cordoned).to_have_attribute("title", "gpu-b (Ready, cordoned): 3 of 8 GPUs allocated")
    assert "level-2" in cordoned.get_attribute("class")  # its allocation still shows
    assert "level-3" in section.locator(".node[data-node=gpu-a]").get_attribute("class")
    screenshot(page, "capacity")


def test_the_capacity_view_marks_the_demos_cordoned_nodes(page, demo):  # noqa: F811
    with demo.api() as api:
        nodes = api.get("/api/v1/nodes", params={"limit": 500}).json()["nodes"]
    cordoned = {
        n["name"] for n in nodes if any(t["key"] == UNSCHEDULABLE["key"] for t in n["taints"])
    }
    assert len(cordoned) > 1  # the demo's and gpu-b
    sign_in(page, demo.url)
    expect(page.locator("#topbar")).to_be_visible()
    page.click("[data-nav=capacity]")
    expect(page.locator("section.cluster").first).to_be_visible()
    marked = page.locator(".node.cordoned")
    expect(marked).to_have_count(len(cordoned))
    assert {n.get_attribute("data-node") for n in marked.all()} == cordoned
    for node in marked.all():
        assert "cordoned" in node.get_attribute("title")
    shown = sum(int(c) for c in page.locator("td[data-type=CORDONED]").all_text_contents())
    assert shown == len(cordoned)


def test_the_projects_view_shows_quota_fair_share_and_borrowers(page, demo):  # noqa: F811
    sign_in(page, demo.url)
    expect(page.locator("#topbar")).to_be_visible()
    page.click("[data-nav=projects]")
    borrower = page.locator("tr[data-project=cap-1]")
    expect(borrower).to_have_class("borrowing")
    expect(borrower.locator("td[data-field=quota]")).to_have_text("4")
    expect(borrower.locator("td[data-field=allocated]")).to_have_text("8")
    expect(borrower.locator("td[data-field=borrowing]")).to_have_text("+4")
    # 24 GPUs in the pool, 12 reserved by quotas, the other 12 shared by equal weights.
    expect(borrower.locator("td[data-field=fair-share]")).to_have_text("10")
    modest = page.locator("tr[data-project=cap-2]")
    expect(modest.locator("td[data-field=fair-share]")).to_have_text("14")
    expect(modest.locator("td[data-field=borrowing]")).to_have_text("")
    expect(page.locator("#borrowers")).to_contain_text("cap-borrower +4")
    screenshot(page, "projects")
