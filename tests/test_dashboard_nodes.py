"""The dashboard's Nodes view and node pages in headless Chromium against a real demo server
with one more cluster reported through the ingest APIs (test_dashboard_inventory's: gpu-a
holding 6 GPUs, gpu-b cordoned holding 3 of two projects, gpu-c not ready), and GPU samples of
the pod on gpu-a: every figure is checked against what the API answers; the overview's free
GPUs are the schedulable ones, as Capacity counts them."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from urllib.parse import quote

import pytest
from playwright.sync_api import Page, expect

from tests.support.access import grant, new_service_account
from tests.support.agent_reports import node_report
from tests.test_dashboard import browser, page, screenshot, sign_in  # noqa: F401
from tests.test_dashboard_inventory import CLUSTER, UNSCHEDULABLE, demo  # noqa: F401
from tests.test_dashboard_overview import shown as overview_figure

pytestmark = pytest.mark.e2e

TELEMETRY = "/api/v1/nodes/telemetry"
GIB = 2**30
BYTE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
# The GPUs on gpu-a its pod reports on, by their index on the node, and their utilisation.
SAMPLED_GPUS = {"3": 70.0, "5": 20.0}
UNREPORTED = "\N{EN DASH}"


def shown(value: float) -> str:
    """A figure as the dashboard prints it: two decimals at most (halves rounded up, as
    toLocaleString does), thousands separated."""
    rounded = Decimal(str(value)).quantize(Decimal("0.01"), ROUND_HALF_UP).normalize()
    return f"{rounded:,f}"


def byte_size(value: float) -> str:
    """Bytes as the dashboard prints them: three significant digits (halves rounded up, as
    toPrecision does) in the largest binary unit under the value, trailing zeros cut."""
    size, unit = abs(value), 0
    while size >= 1024 and unit < len(BYTE_UNITS) - 1:
        size /= 1024
        unit += 1
    exact = Decimal(size)
    if exact:
        exact = exact.quantize(Decimal(1).scaleb(exact.adjusted() - 2), ROUND_HALF_UP)
    text = f"{exact.normalize():f}" if exact else "0"
    return f"{'-' if value < 0 else ''}{text} {BYTE_UNITS[unit]}"


def per_node(api, kind: str) -> dict[tuple[str, str], float]:
    params = {"telemetryType": kind, "groupBy": "ClusterId,Node"}
    values = api.get(TELEMETRY, params=params).json()["values"]
    return {(v["groups"][0]["value"], v["groups"][1]["value"]): float(v["value"]) for v in values}


def every_node(api) -> list[dict]:
    return api.get("/api/v1/nodes", params={"limit": 500}).json()["nodes"]


def cordoned(node: dict) -> bool:
    return any(t["key"] == UNSCHEDULABLE["key"] for t in node["taints"])


def pods_on(api, node: str, headers=None) -> list[dict]:
    params = {
        "filterBy": [f"clusterId=={CLUSTER}", f"nodeName=={node}"],
        "completed": "false",
        "verbosity": "full",
    }
    return api.get("/api/v1/workloads/pods", params=params, headers=headers).json()["pods"]


@pytest.fixture(scope="module")
def sampled(demo):  # noqa: F811
    """Ten minutes of utilisation of two of gpu-a's GPUs, reported by the pod holding them."""
    with demo.api() as api:
        (pod,) = pods_on(api, "gpu-a")
        now = datetime.now(UTC).replace(microsecond=0)
        samples = [
            {
                "workloadId": pod["workloadId"],
                "podId": pod["id"],
                "type": "GPU_UTILIZATION_PER_GPU",
                "timestamp": (now - timedelta(minutes=minute)).isoformat(),
                "value": value,
                "labels": {"gpu": gpu},
            }
            for gpu, value in SAMPLED_GPUS.items()
            for minute in range(1, 11)
        ]
        answer = api.post("/api/v1/ingest/metrics", json={"samples": samples})
        assert answer.status_code == 200, answer.text
    return demo


def fact(tab: Page, name: str):
    """The value of one of the node page's facts."""
    term = tab.locator("#node-details dt", has_text=re.compile(f"^{name}$"))
    return term.locator("xpath=following-sibling::dd[1]")


def open_nodes(tab: Page, url: str) -> None:
    sign_in(tab, url)
    expect(tab.locator("#topbar")).to_be_visible()
    tab.goto(f"{url}/#/nodes")
    expect(tab.locator("#nodes-table")).to_be_visible()


def test_the_nodes_view_lists_every_node_with_the_apis_figures(page, demo):  # noqa: F811
    with demo.api() as api:
        nodes = every_node(api)
        allocated = per_node(api, "ALLOCATED_GPUS")
        free = per_node(api, "FREE_GPUS")
        idle = per_node(api, "IDLE_ALLOCATED_GPUS")
        names = {c["uuid"]: c["name"] for c in api.get("/api/v1/clusters").json()}
    open_nodes(page, demo.url)
    rows = page.locator("#nodes-table tbody tr")
    expect(rows).to_have_count(len(nodes))
    for node in nodes:
        key = (node["clusterUuid"], node["name"])
        row = page.locator(f"#nodes-table tr[data-cluster='{key[0]}'][data-node='{key[1]}']")
        cell = lambda column, row=row: row.locator(f"td[data-column={column}]")  # noqa: E731
        expect(cell("cluster")).to_have_text(names[key[0]])
        expect(cell("pool")).to_have_text(node["nodePool"])
        expect(cell("gpus")).to_have_text(shown(node["gpuInfo"]["gpuCount"]))
        expect(cell("allocated")).to_have_text(shown(allocated[key]))
        expect(cell("free")).to_have_text(shown(free[key]))
        expect(cell("idle")).to_have_text(shown(idle[key]))
        expect(cell("status").locator("[data-status]")).to_have_text(node["status"])
        expect(cell("status").locator("[data-cordoned]")).to_have_count(int(cordoned(node)))

    # This cluster's three nodes, as reported: 6 of gpu-a's GPUs held, gpu-b cordoned
    # holding 3, gpu-c not ready.
    row = page.locator(f"#nodes-table tr[data-cluster='{CLUSTER}'][data-node=gpu-a]")
    expect(row.locator("td[data-column=allocated]")).to_have_text("6")
    expect(row.locator("td[data-column=free]")).to_have_text("2")
    expect(row.locator("td[data-column=gpuType]")).to_have_text("NVIDIA-A100-SXM4-80GB")
    gpu_b = page.locator(f"#nodes-table tr[data-cluster='{CLUSTER}'][data-node=gpu-b]")
    expect(gpu_b.locator("td[data-column=status]")).to_have_text("ReadyCordoned")
    gpu_c = page.locator(f"#nodes-table tr[data-cluster='{CLUSTER}'][data-node=gpu-c]")
    expect(gpu_c.locator("td[data-column=status]")).to_have_text("NotReady")

    # The figures above the table add up the rows; schedulable free leaves out cordoned and
    # not-ready nodes.
    summary = page.locator("#nodes-summary")
    gpus = sum(n["gpuInfo"]["gpuCount"] for n in nodes if n["gpuInfo"])
    schedulable = sum(
        free[(n["clusterUuid"], n["name"])]
        for n in nodes
        if n["status"] == "Ready" and not cordoned(n)
    )
    expect(summary.locator("[data-field=gpus] strong")).to_have_text(shown(gpus))
    expect(summary.locator("[data-field=free] strong")).to_have_text(shown(sum(free.values())))
    expect(summary.locator("[data-field=schedulable] strong")).to_have_text(shown(schedulable))
    assert schedulable < sum(free.values())
    screenshot(page, "nodes")


def test_the_nodes_view_filters_and_sorts(page, demo):  # noqa: F811
    with demo.api() as api:
        nodes = every_node(api)
        allocated = per_node(api, "ALLOCATED_GPUS")
    open_nodes(page, demo.url)
    rows = page.locator("#nodes-table tbody tr")

    # By state: cordoned nodes, then those not ready, then those that take work, then all.
    for state, count in (
        ("cordoned", sum(cordoned(n) for n in nodes)),
        ("not-ready", sum(n["status"] != "Ready" for n in nodes)),
        ("schedulable", sum(n["status"] == "Ready" and not cordoned(n) for n in nodes)),
        ("", len(nodes)),
    ):
        page.select_option("select[name=status]", state)
        expect(rows).to_have_count(count)
        assert ("status=" in page.url) == bool(state), page.url

    # By cluster, then by one of its pools, then by name.
    (demo_cluster, pool) = next(
        (n["clusterUuid"], n["nodePool"]) for n in nodes if n["clusterUuid"] != CLUSTER
    )
    page.select_option("select[name=cluster]", demo_cluster)
    expect(page).to_have_url(re.compile(f"cluster={demo_cluster}"))
    expect(rows).to_have_count(sum(n["clusterUuid"] == demo_cluster for n in nodes))
    page.select_option("select[name=pool]", pool)
    expect(page).to_have_url(re.compile(f"pool={pool}"))
    in_pool = sorted(
        n["name"] for n in nodes if n["clusterUuid"] == demo_cluster and n["nodePool"] == pool
    )
    expect(rows).to_have_count(len(in_pool))
    assert sorted(r.get_attribute("data-node") for r in rows.all()) == in_pool
    page.goto(f"{demo.url}/#/nodes?cluster={CLUSTER}")
    expect(rows).to_have_count(3)
    page.fill("input[name=search]", "GPU-B")
    page.press("input[name=search]", "Enter")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-node", "gpu-b")

    # Sorting by allocation: the largest first on the first click, the smallest on the next.
    page.goto(f"{demo.url}/#/nodes")
    header = page.locator("th[data-sort=allocated]")
    header.click()
    expect(header).to_have_class("sortable sorted-desc num")
    cells = page.locator("#nodes-table td[data-column=allocated]")
    expect(cells).to_have_count(len(nodes))
    largest_first = sorted(allocated.values(), reverse=True)
    assert cells.all_text_contents() == [shown(value) for value in largest_first]
    header.click()
    expect(header).to_have_class("sortable sorted-asc num")
    expect(cells.first).to_have_text(shown(min(allocated.values())))
    expect(cells.last).to_have_text(shown(max(allocated.values())))


def test_a_node_page_shows_its_figures_gpus_pods_and_charts(page, sampled):  # noqa: F811
    with sampled.api() as api:
        nodes = every_node(api)
        (node,) = [n for n in nodes if (n["clusterUuid"], n["name"]) == (CLUSTER, "gpu-b")]
        pods = pods_on(api, "gpu-b")
        workloads = {p["workloadId"]: p["workloadName"] for p in pods}
    open_nodes(page, sampled.url)
    page.click(f"#nodes-table tr[data-cluster='{CLUSTER}'][data-node=gpu-b] a")
    expect(page.locator("#node-name")).to_contain_text("gpu-b")
    expect(page.locator("#node-name [data-cordoned]")).to_be_visible()
    expect(fact(page, "GPUs allocated")).to_have_text("3")
    expect(fact(page, "GPUs free")).to_have_text("5")
    expect(fact(page, "Takes new work")).to_have_text("no")
    expect(fact(page, "GPU memory")).to_have_text("640 GiB")
    expect(page.locator("#node-taints")).to_contain_text(UNSCHEDULABLE["key"])
    expect(page.locator("#node-gpus tbody tr")).to_have_count(node["gpuInfo"]["gpuCount"])

    # Its pods, each linking to its workload's page.
    rows = page.locator("#node-pods tbody tr")
    expect(rows).to_have_count(len(pods))
    links = page.locator("#node-pods a[data-workload]")
    assert {a.get_attribute("data-workload") for a in links.all()} == set(workloads)
    links.first.click()
    expect(page.locator("#workload-name")).to_contain_text(workloads[page.url.rsplit("/", 1)[1]])
    # The workload's pods name the node, and lead back to its page.
    page.locator("#pods a[data-node=gpu-b]").first.click()
    expect(page.locator("#node-name")).to_contain_text("gpu-b")
    screenshot(page, "node-cordoned")

    # gpu-a: two of its GPUs report utilisation now, and its charts draw them by node index.
    page.goto(f"{sampled.url}/#/nodes/{CLUSTER}/gpu-a")
    gpus = page.locator("#node-gpus tbody tr")
    expect(gpus).to_have_count(8)
    for index in range(8):
        value = SAMPLED_GPUS.get(str(index))
        expected = UNREPORTED if value is None else f"{shown(value)}%"
        expect(gpus.nth(index).locator("td").nth(2)).to_have_text(expected)
    chart = page.locator("[data-metric=GPU_UTILIZATION_PER_GPU]")
    expect(chart.locator("canvas")).to_be_visible()
    expect(chart).to_have_attribute("data-series", str(len(SAMPLED_GPUS)))
    expect(chart.locator(".u-legend")).to_contain_text("GPU 3")
    page.click("button[data-range='1h']")
    expect(page.locator("#metric-charts")).to_have_attribute("data-range", "1h")
    screenshot(page, "node")


def test_a_node_page_lists_only_the_pods_a_project_viewer_may_see(page, demo):  # noqa: F811
    with demo.api() as api:
        account = new_service_account(api, "nodes-project-viewer")
        assert grant(api, account["clientId"], "viewer", "project", "cap-2").status_code == 201
    sign_in(page, demo.url, account["clientSecret"], account["clientId"])
    expect(page.locator("#topbar")).to_be_visible()
    page.goto(f"{demo.url}/#/nodes/{CLUSTER}/gpu-b")
    rows = page.locator("#node-pods tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("cap-modest")
    # The node's figures are the whole node's: nodes are shared capacity.
    expect(fact(page, "GPUs allocated")).to_have_text("3")


def test_capacity_links_to_nodes(page, demo):  # noqa: F811
    sign_in(page, demo.url)
    expect(page.locator("#topbar")).to_be_visible()
    page.click("[data-nav=capacity]")
    section = page.locator(f"section.cluster[data-cluster='{CLUSTER}']")
    section.locator("td[data-type=CORDONED] a").click()
    rows = page.locator("#nodes-table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-node", "gpu-b")
    page.go_back()
    page.locator(f"section.cluster[data-cluster='{CLUSTER}'] .node[data-node=gpu-c]").click()
    expect(page.locator("#node-name")).to_contain_text("gpu-c")
    expect(page.locator("#node-name [data-status]")).to_have_text("NotReady")


def test_the_overviews_free_gpus_are_the_schedulable_ones(page, demo):  # noqa: F811
    with demo.api() as api:
        nodes = every_node(api)
        free = per_node(api, "FREE_GPUS")
    schedulable = {}
    for n in nodes:
        if n["status"] == "Ready" and not cordoned(n):
            key = n["clusterUuid"]
            schedulable[key] = schedulable.get(key, 0) + free[(key, n["name"])]
    sign_in(page, demo.url)
    expect(page.locator("#updated")).not_to_have_attribute("data-refreshes", "0")
    expect(page.locator("#gpus-free")).to_have_text(overview_figure(sum(schedulable.values())))
    expect(page.locator("#gpus-free-all")).to_have_text(overview_figure(sum(free.values())))
    row = page.locator(f"#clusters-table tr[data-cluster='{CLUSTER}']")
    # Of this cluster's 15 free GPUs, gpu-a's 2 can take work.
    expect(row.locator("a[href*='status=schedulable']")).to_have_text("2")
    row.locator("a[href*='status=schedulable']").click()
    expect(page.locator("#nodes-table tbody tr")).to_have_count(1)


def test_a_node_page_keeps_a_long_name_within_a_phones_width_and_reported_markup_as_text(
    page,  # noqa: F811
    demo,  # noqa: F811
):
    # Kubernetes allows names of 253 characters; one without a break point widened the heading
    # (a flex box) past the screen, and the whole page with it. Node names cannot carry markup
    # (ingest takes only what Kubernetes takes), but the GPU model, a taint's value and the
    # node pool are free text the page must show as text.
    markup = "<img src=x onerror=alert(1)>"
    other = "7a7a7a7a-0000-4000-8000-00000000c0de"
    taint = {"key": "example.com/note", "value": markup, "effect": "NoSchedule"}
    nodes = [
        node_report(name="n" * 253, nodePool="p'q\"r", gpuType=markup, taints=[taint]),
        node_report(name="1.node-b.example", nodePool="p'q\"r", gpuType=markup),
    ]
    with demo.api() as api:
        answer = api.post(f"/api/v1/ingest/clusters/{other}/nodes", json={"nodes": nodes})
        assert answer.status_code == 200, answer.text
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, demo.url)
    for node in nodes:
        page.goto(f"{demo.url}/#/nodes/{other}/{quote(node['name'], safe='')}")
        expect(page.locator("#node-name")).to_contain_text(node["name"])
        expect(page.locator("#node-details")).to_contain_text("p'q\"r")
        expect(page.locator("#node-details")).to_contain_text(markup)
        if node.get("taints"):
            expect(page.locator("#node-taints")).to_contain_text(f"example.com/note={markup}")
        assert page.locator("#node-name img, #node-details img, #node-taints img").count() == 0
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert dialogs == []


# GPU memory the workloads on this cluster's nodes report using now, per GPU they hold, by
# project: gpu-a's six GPUs 30 GiB each, gpu-b's three (two of cap-borrower, one of cap-modest)
# 20 and 10 GiB.
MEMORY_PER_GPU = {"cap-borrower": 30 * GIB, "cap-modest": 10 * GIB}
ON_GPU_B = {"cap-borrower": 20 * GIB}
# Nodes of another cluster: one without GPUs, one whose GPUs' memory was not reported.
ELSEWHERE = "5a5a5a5a-0000-4000-8000-00000000c0de"


def report_memory_use(api) -> None:
    """Half a minute ago, each workload on gpu-a and gpu-b reports its GPUs' memory in use."""
    stamp = (datetime.now(UTC) - timedelta(seconds=30)).replace(microsecond=0).isoformat()
    samples = []
    for node in ("gpu-a", "gpu-b"):
        for pod in pods_on(api, node):
            per_gpu = {**MEMORY_PER_GPU, **(ON_GPU_B if node == "gpu-b" else {})}
            samples += [
                {
                    "workloadId": pod["workloadId"],
                    "type": "GPU_MEMORY_USAGE_BYTES",
                    "timestamp": stamp,
                    "value": per_gpu[pod["projectName"]],
                    "labels": {"gpu": str(gpu)},
                }
                for gpu in range(int(pod["allocatedResources"]["gpu"]))
            ]
    answer = api.post("/api/v1/ingest/metrics", json={"samples": samples})
    assert answer.status_code == 200, answer.text


def memory_cells(tab: Page, cluster: str, node: str):
    row = tab.locator(f"#nodes-table tr[data-cluster='{cluster}'][data-node='{node}']")
    return row.locator("td[data-column=memory]"), row.locator("td[data-column=memoryUsed]")


def test_the_nodes_view_shows_gpu_memory_in_use_as_the_node_page_does(page, demo):  # noqa: F811
    nodes = [
        node_report(name="zz-cpu-only", gpuType=None, gpuCount=0, allocatableGpus=0),
        node_report(name="zz-gpu-memory-unreported", gpuMemoryBytes=None),
    ]
    with demo.api() as api:
        answer = api.post(f"/api/v1/ingest/clusters/{ELSEWHERE}/nodes", json={"nodes": nodes})
        assert answer.status_code == 200, answer.text
        report_memory_use(api)
        every = every_node(api)
        total = per_node(api, "TOTAL_GPU_MEMORY_BYTES")
        used_before = per_node(api, "USED_GPU_MEMORY_BYTES")
    open_nodes(page, demo.url)
    expect(page.locator("#nodes-table tbody tr")).to_have_count(len(every))
    # The demo's own samples end when it was seeded, and age out of "now" after five minutes:
    # a figure may change between the API's answer above and the page's, but not after this one.
    with demo.api() as api:
        used_after = per_node(api, "USED_GPU_MEMORY_BYTES")

    # This cluster's nodes, as their workloads report: 8 GPUs of 80 GiB each.
    for node, used in (("gpu-a", "180 GiB"), ("gpu-b", "50 GiB"), ("gpu-c", "0 B")):
        memory, memory_used = memory_cells(page, CLUSTER, node)
        expect(memory).to_have_text("640 GiB")
        expect(memory_used).to_have_text(used)
    # No GPUs: no GPU memory either; GPUs of unreported memory: use without a total.
    memory, memory_used = memory_cells(page, ELSEWHERE, "zz-cpu-only")
    expect(memory).to_have_text(UNREPORTED)
    expect(memory_used).to_have_text(UNREPORTED)
    memory, memory_used = memory_cells(page, ELSEWHERE, "zz-gpu-memory-unreported")
    expect(memory).to_have_text(UNREPORTED)
    expect(memory_used).to_have_text("0 B")

    # Every node's figures are the API's, in use never more than the node has.
    for node in every:
        key = (node["clusterUuid"], node["name"])
        assert used_before[key] <= total[key] and used_after[key] <= total[key], key
        if not node["gpuInfo"] or not total[key]:
            continue
        memory, memory_used = memory_cells(page, *key)
        expect(memory).to_have_text(byte_size(total[key]))
        assert memory_used.inner_text() in {byte_size(used_before[key]), byte_size(used_after[key])}
    shown_sum = page.locator("#nodes-summary [data-field=memoryUsed] strong").inner_text()
    assert shown_sum in {
        f"{byte_size(sum(used.values()))} of {byte_size(sum(total.values()))}"
        for used in (used_before, used_after)
    }

    # Sorted by memory in use, the largest first; nodes without GPUs last.
    page.locator("th[data-sort=memoryUsed]").click()
    expect(page.locator("th[data-sort=memoryUsed]")).to_have_class("sortable sorted-desc num")
    expect(page.locator("#nodes-table tbody tr").last).to_have_attribute("data-node", "zz-cpu-only")

    # The node's page says the same.
    memory_cells(page, CLUSTER, "gpu-a")[0].locator("xpath=..").locator("a").click()
    expect(page.locator("#node-name")).to_contain_text("gpu-a")
    expect(fact(page, "GPU memory")).to_have_text("640 GiB")
    expect(fact(page, "GPU memory used")).to_have_text("180 GiB")
    page.goto(f"{demo.url}/#/nodes/{ELSEWHERE}/zz-cpu-only")
    expect(page.locator("#node-details")).to_be_visible()
    expect(page.locator("#node-details dt", has_text="GPU memory")).to_have_count(0)
    screenshot(page, "nodes-memory")


def test_a_project_viewer_sees_its_nodes_gpu_memory(page, demo):  # noqa: F811
    with demo.api() as api:
        report_memory_use(api)
        account = new_service_account(api, "nodes-memory-viewer")
        assert grant(api, account["clientId"], "viewer", "project", "cap-2").status_code == 201
    sign_in(page, demo.url, account["clientSecret"], account["clientId"])
    expect(page.locator("#topbar")).to_be_visible()
    page.goto(f"{demo.url}/#/nodes")
    # Nodes are shared capacity: the viewer reads the whole node's figures, its cluster's only.
    expect(page.locator("#nodes-table tbody tr")).to_have_count(3)
    expect(memory_cells(page, CLUSTER, "gpu-b")[1]).to_have_text("50 GiB")
    expect(page.locator("#nodes-memory-error")).to_have_count(0)


def test_the_nodes_view_without_gpu_memory_still_shows_the_rest(page, demo):  # noqa: F811
    message = "The request was cancelled: a database statement ran too long."

    def refuse(route):
        route.fulfill(status=503, json={"code": 503, "message": message})

    page.route(
        re.compile(r".*/api/v1/nodes/telemetry\?.*telemetryType=USED_GPU_MEMORY_BYTES.*"), refuse
    )
    open_nodes(page, demo.url)
    expect(page.locator("#nodes-memory-error")).to_contain_text(message)
    row = page.locator(f"#nodes-table tr[data-cluster='{CLUSTER}'][data-node=gpu-a]")
    expect(row.locator("td[data-column=allocated]")).to_have_text("6")
    expect(row.locator("td[data-column=memoryUsed]")).to_have_text(UNREPORTED)
    expect(row.locator("td[data-column=memory]")).to_have_text(UNREPORTED)
    expect(page.locator("#nodes-summary [data-field=memoryUsed] strong")).to_have_text(UNREPORTED)
