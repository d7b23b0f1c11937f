"""The web dashboard in headless Chromium (Debian's, driven by Playwright) against a real
``gpufleet serve --demo`` process: sign in, overview, filter the table, a workload's charts,
its pods and a pod's GPU charts, its history with events inline; the administrators' Access
view.

Screenshots are written to ``test-artifacts/dashboard/`` at the repository root.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from gpufleet.dashboard import STATIC_DIR
from tests.support.access import grant, new_service_account
from tests.support.databases import ADMIN_ID, ADMIN_SECRET
from tests.support.demo_server import PENDING_MESSAGE, demo_server

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "dashboard"
TIMEOUT_MS = 30_000
# Assertions wait as long as actions do: a loaded machine renders the API docs slowly.
expect.set_options(timeout=TIMEOUT_MS)
DASH = "\N{EN DASH}"  # between the first and last row numbers of the pager


# Served in-process: the page, its assets and the API paths it must not shadow.


def test_the_page_and_its_assets_leave_the_api_paths_alone(anonymous_client):
    page = anonymous_client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert '<script type="module" src="/dashboard/js/app.js">' in page.text

    script = anonymous_client.get("/dashboard/js/app.js")
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert anonymous_client.get("/dashboard/vendor/uPlot.esm.js").status_code == 200
    assert "MIT" in anonymous_client.get("/dashboard/vendor/uPlot.LICENSE").text

    for path in ("/dashboard/missing.js", "/dashboard/../../settings.py", "/dashboard/%2e%2e/x"):
        missing = anonymous_client.get(path)
        assert missing.status_code == 404, path
        assert missing.json()["code"] == 404

    assert anonymous_client.get("/openapi.json").json()["paths"]
    assert anonymous_client.get("/api/docs").status_code == 200
    assert anonymous_client.get("/healthz").json() == {"status": "ok"}
    unauthenticated = anonymous_client.get("/api/v1/workloads")
    assert unauthenticated.status_code == 401
    assert unauthenticated.json()["code"] == 401
    assert anonymous_client.post("/").json()["code"] == 405


def test_the_dashboard_loads_nothing_from_other_origins():
    own = [p for p in STATIC_DIR.rglob("*") if p.suffix in (".html", ".js", ".css")]
    own = [p for p in own if "vendor" not in p.parts]
    assert len(own) >= 8
    for path in own:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"https?://", text), path
        for target in re.findall(r'^import .* from "([^"]+)";$', text, re.M):
            assert target.startswith(("./", "../")), (path, target)


# In the browser.


@pytest.fixture(scope="module")
def demo(request, tmp_path_factory):
    with demo_server(request, tmp_path_factory) as server:
        yield server


@pytest.fixture(scope="module")
def api(demo):
    with demo.api() as client:
        yield client


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, request):
    """A fresh tab (empty sessionStorage) that fails the test on script errors or CSP refusals."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    tab = context.new_page()
    tab.set_default_timeout(TIMEOUT_MS)
    problems: list[str] = []
    tab.on("pageerror", lambda error: problems.append(f"uncaught: {error}"))
    tab.on(
        "console",
        lambda message: (
            problems.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    yield tab
    context.close()
    assert problems == []


def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def sign_in(page: Page, url: str, secret: str = ADMIN_SECRET, client_id: str = ADMIN_ID) -> None:
    page.goto(url + "/")
    page.fill("input[name=clientId]", client_id)
    page.fill("input[name=clientSecret]", secret)
    page.click("#signin button[type=submit]")


def test_a_wrong_secret_shows_the_servers_message(page, demo):
    sign_in(page, demo.url, secret="not-the-secret")
    expect(page.locator("#signin-error")).to_contain_text("Invalid client credentials")
    assert page.locator("#topbar").is_hidden()
    assert page.evaluate("sessionStorage.getItem('gpufleet.token')") is None
    screenshot(page, "sign-in-refused")


def test_signing_in_shows_the_overview_from_the_api(page, demo, api):
    sign_in(page, demo.url)
    expect(page.locator("#topbar")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('gpufleet.token')")
    phases = page.locator("#by-phase[data-bars]")
    expect(phases).to_be_visible()
    telemetry = api.get(
        "/api/v1/workloads/telemetry",
        params={"telemetryType": "WORKLOADS_COUNT", "groupBy": "Phase"},
    ).json()
    assert int(phases.get_attribute("data-bars")) == len(telemetry["values"])
    total = api.get("/api/v1/workloads/count").json()["count"]
    expect(page.locator("#workloads-total")).to_have_text(f"{total:,}")
    for chart in ("#top-allocated", "#pending-time"):
        expect(page.locator(f"{chart}[data-bars]")).to_be_visible()
        assert int(page.locator(chart).get_attribute("data-bars")) > 0
    screenshot(page, "overview")


def test_the_table_filters_sorts_and_pages(page, demo, api):
    sign_in(page, demo.url)
    page.click("a[data-nav=workloads]")
    expect(page.locator("#workloads-table")).to_be_visible()

    page.select_option("select[name=field]", "phase")
    page.select_option("select[name=operator]", "==")
    page.fill("input[name=value]", "Pending")
    page.click("#filter-builder button[type=submit]")
    expect(page.locator(".chip[data-filter='phase==Pending']")).to_be_visible()
    count = api.get("/api/v1/workloads/count", params={"filterBy": "phase==Pending"}).json()
    assert count["count"] > 25  # more than one page
    expect(page.locator("#range")).to_have_text(f"1{DASH}25 of {count['count']}")
    phases = page.locator("#workloads-table tbody .badge").evaluate_all(
        "badges => badges.map(b => b.dataset.phase)"
    )
    assert phases == ["Pending"] * 25

    page.click("th[data-sort=name]")
    expect(page.locator("th[data-sort=name].sorted-asc")).to_be_visible()
    expected = api.get(
        "/api/v1/workloads",
        params={"filterBy": "phase==Pending", "sortBy": "name", "limit": 50},
    ).json()["workloads"]
    names = page.locator("#workloads-table tbody tr td:first-child")
    expect(names).to_have_text([w["name"] for w in expected[:25]])
    screenshot(page, "workloads-filtered")

    page.click("#next-page")
    expect(page.locator("#range")).to_have_text(
        f"26{DASH}{min(50, count['count'])} of {count['count']}"
    )
    expect(names.first).to_have_text(expected[25]["name"])

    page.click(".chip[data-filter='phase==Pending'] button")
    total = api.get("/api/v1/workloads/count").json()["count"]
    expect(page.locator("#range")).to_have_text(f"1{DASH}25 of {total}")


IDLE_FILTER = "idleAllocatedGpus>=0.01"


def idle_cell(workload: dict) -> str:
    """A workload's idle GPUs as the table shows them: two decimals at most, a dash when it
    holds GPUs the idle rule has not measured, nothing when it holds none."""
    idle = workload.get("idleAllocatedGpus")
    if idle is None:
        return DASH if (workload["allocatedResources"] or {}).get("gpu") else ""
    return f"{Decimal(str(idle)).quantize(Decimal('0.01'), ROUND_HALF_UP).normalize():f}"


def listed(page: Page, action) -> list[dict]:
    """The page of workloads the table was answered after ``action``, as the API sent them
    (the overview's lists, which may still be arriving, ask other limits)."""
    table = re.compile(r".*/api/v1/workloads\?(.*&)?limit=25(&.*)?$")
    with page.expect_response(lambda response: table.match(response.url)) as answer:
        action()
    return answer.value.json()["workloads"]


def test_the_table_shows_which_workloads_hold_idle_gpus(page, demo, api):
    sign_in(page, demo.url)
    expect(page.locator("#topbar")).to_be_visible()
    workloads = listed(page, lambda: page.click("a[data-nav=workloads]"))
    cells = page.locator("#workloads-table td[data-column=idle]")
    expect(cells).to_have_text([idle_cell(w) for w in workloads])

    # Only those holding idle GPUs, most first: the overview's idle figures list the same.
    idle = listed(page, lambda: page.check("#idle-only"))
    expect(page.locator(f".chip[data-filter='{IDLE_FILTER}']")).to_be_visible()
    expect(page.locator("th[data-sort=idleAllocatedGpus]")).to_have_class(
        "sortable sorted-desc num"
    )
    figures = [w["idleAllocatedGpus"] for w in idle]
    assert figures and min(figures) >= 0.01 and figures == sorted(figures, reverse=True)
    expect(cells).to_have_text([idle_cell(w) for w in idle])
    expect(cells.first.locator("span.error")).to_be_visible()
    count = api.get("/api/v1/workloads/count", params={"filterBy": IDLE_FILTER}).json()["count"]
    expect(page.locator("#range")).to_contain_text(f"of {count}")
    screenshot(page, "workloads-idle")

    page.uncheck("#idle-only")
    expect(page.locator(".chip")).to_have_count(0)
    expect(page.locator("#idle-only")).not_to_be_checked()


def test_a_bad_filter_shows_the_api_error_not_a_blank_page(page, demo):
    sign_in(page, demo.url)
    page.goto(demo.url + "/#/workloads?f=" + "colour%3D%3Dblue")
    expect(page.locator("#workloads-body [role=alert]")).to_contain_text("filterBy")
    expect(page.locator(".chip[data-filter='colour==blue']")).to_be_visible()


def test_a_workload_page_shows_details_and_draws_its_charts(page, demo, api):
    sign_in(page, demo.url)
    page.click("a[data-nav=workloads]")
    page.select_option("select[name=field]", "name")
    page.fill("input[name=value]", demo.charted_name)
    page.click("#filter-builder button[type=submit]")
    page.click(f"#workloads-table a:text-is('{demo.charted_name}')")

    expect(page.locator("#workload-name")).to_contain_text(demo.charted_name)
    expect(page.locator("#workload-details")).to_contain_text(demo.charted_id)
    gpu = page.locator("[data-metric=GPU_UTILIZATION]")
    expect(gpu.locator("canvas")).to_be_visible()
    assert gpu.get_attribute("data-series") == "2"
    assert int(gpu.get_attribute("data-points")) > 0
    cpu = page.locator("[data-metric=CPU_USAGE_CORES]")
    expect(cpu.locator("canvas")).to_be_visible()
    assert cpu.get_attribute("data-series") == "1"
    # Pixels were really painted: count non-transparent pixels of the plot canvas.
    painted = gpu.locator("canvas").evaluate(
        """canvas => {
            const context = canvas.getContext('2d');
            const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
            let count = 0;
            for (let i = 3; i < data.length; i += 4) if (data[i] > 0) count++;
            return count;
        }"""
    )
    assert painted > 500
    history = page.locator("#history tbody tr")
    expect(history).to_have_count(2)  # newest first
    expect(history.nth(0)).to_contain_text("Running")
    expect(history.nth(1)).to_contain_text("Pending")
    expect(history.nth(1)).to_contain_text(PENDING_MESSAGE)
    expect(page.locator("#pods")).to_contain_text(f"{demo.charted_name}-0")
    screenshot(page, "workload")

    page.click("button[data-range='1h']")
    expect(page.locator("[data-metric=GPU_UTILIZATION] canvas")).to_be_visible()
    points = int(page.locator("[data-metric=GPU_UTILIZATION]").get_attribute("data-points"))
    assert points > 0


def test_an_unknown_workload_and_signing_out(page, demo):
    sign_in(page, demo.url)
    expect(page.locator("#topbar")).to_be_visible()
    page.goto(demo.url + "/#/workloads/00000000-0000-4000-8000-000000000000")
    expect(page.locator("[role=alert]")).to_contain_text("not found")
    page.click("#sign-out")
    expect(page.locator("#signin")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('gpufleet.token')") is None


def test_a_pending_workload_shows_its_scheduling_messages(page, demo, api):
    pending = api.get(
        "/api/v1/workloads", params={"filterBy": "phase==Pending", "limit": 50}
    ).json()["workloads"]
    detailed = (api.get(f"/api/v1/workloads/{w['id']}").json() for w in pending)
    workload = next(w for w in detailed if w.get("pendingSchedulingMessages"))
    sign_in(page, demo.url)
    expect(page.locator("#topbar")).to_be_visible()
    page.goto(f"{demo.url}/#/workloads/{workload['id']}")
    table = page.locator("#scheduling-messages")
    expect(table).to_contain_text(workload["pendingSchedulingMessages"][0]["reason"])
    expect(page.locator("#workload-name [data-phase=Pending]")).to_be_visible()
    # Nothing ran, so nothing was sampled: one line instead of a frame per chart.
    expect(page.locator("#metric-charts .no-samples")).to_contain_text("GPU utilisation (%)")
    expect(page.locator("#metric-charts [data-metric]")).to_have_count(0)


def test_deleted_workloads_are_listed_on_request_and_say_so(page, demo, api):
    deleted = api.get(
        "/api/v1/workloads", params={"deleted": "true", "sortBy": "deletedAt", "sortOrder": "desc"}
    ).json()["workloads"]
    assert deleted, "the demo deletes some workloads"
    count = api.get("/api/v1/workloads/count", params={"deleted": "true"}).json()["count"]
    sign_in(page, demo.url)
    page.click("a[data-nav=workloads]")
    expect(page.locator("#workloads-table")).to_be_visible()
    page.check("#show-deleted")
    expect(page.locator("#range")).to_contain_text(f"of {count:,}")
    expect(page.locator("th[data-sort=deletedAt].sorted-desc")).to_be_visible()
    first = page.locator("#workloads-table tbody tr").first
    expect(first).to_have_attribute("data-id", deleted[0]["id"])
    expect(first).to_contain_text(" ago")
    assert "deleted=true" in page.url
    screenshot(page, "workloads-deleted")

    first.locator("a").first.click()
    expect(page.locator("#workload-name #deleted-badge")).to_have_text("Deleted")
    expect(page.locator("#deleted-notice")).to_contain_text("was deleted on")
    details = page.locator("#workload-details")
    expect(details.locator("dt").first).to_have_text("Deleted")
    expect(details.locator("dd").first).not_to_be_empty()
    page.click("main a[href^='#/workloads?deleted']")
    expect(page.locator("#show-deleted")).to_be_checked()


def test_api_docs_render_with_nothing_from_another_origin(page, demo):
    requested: list[str] = []
    failed: list[str] = []
    errors: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.on("requestfailed", lambda request: failed.append(request.url))
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(demo.url + "/api/docs")
    # The document grows with every resource; rendering it on a loaded machine takes a while.
    expect(page.locator(".opblock-summary-path", has_text="/api/v1/workloads").first).to_be_visible(
        timeout=TIMEOUT_MS
    )
    assert any(url.endswith("/openapi.json") for url in requested)
    assert [url for url in requested if not url.startswith(demo.url + "/")] == []
    # Not even the browser's own request for an icon fails.
    page.wait_for_load_state("networkidle")
    assert failed == []
    assert errors == []
    screenshot(page, "api-docs")


def test_the_pods_table_and_a_pods_gpu_charts(page, demo, api):
    (pod,) = api.get(f"/api/v1/workloads/{demo.charted_id}/pods").json()["pods"]
    now = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    samples = [
        {
            "workloadId": demo.charted_id,
            "podId": pod["id"],
            "type": metric_type,
            "timestamp": (now - timedelta(minutes=minute)).isoformat().replace("+00:00", "Z"),
            "value": value + minute % 5,
            "labels": {"gpu": str(gpu)},
        }
        for minute in range(60)
        for metric_type, gpus, value in (
            ("GPU_UTILIZATION_PER_GPU", (0, 1), 60),
            ("GPU_MEMORY_USAGE_BYTES_PER_GPU", (0,), 2**34),
        )
        for gpu in gpus
    ]
    assert api.post("/api/v1/ingest/metrics", json={"samples": samples}).status_code == 200
    sign_in(page, demo.url)
    expect(page.locator("#topbar")).to_be_visible()
    page.goto(f"{demo.url}/#/workloads/{demo.charted_id}")
    header = page.locator("#pods thead th")
    expect(header).to_have_text(["Pod", "Phase", "Node", "GPUs", "Age"])
    row = page.locator("#pods tbody tr")
    expect(row).to_have_count(1)
    expect(row.locator("td")).to_have_text(
        [pod["name"], "Running", "gpu-node-3", "0", re.compile(r"^\d+h")]
    )
    expect(page.locator("#pod-charts")).to_contain_text("Choose a pod")

    page.click(f"button[data-pod='{pod['id']}']")
    expect(page.locator("#pod-gpus h2")).to_have_text(f"Pod GPUs: {pod['name']}")
    utilisation = page.locator("[data-pod-metric=GPU_UTILIZATION_PER_GPU]")
    expect(utilisation.locator("canvas")).to_be_visible()
    assert utilisation.get_attribute("data-series") == "2"
    assert int(utilisation.get_attribute("data-points")) > 0
    memory = page.locator("[data-pod-metric=GPU_MEMORY_USAGE_BYTES_PER_GPU]")
    expect(memory.locator("canvas")).to_be_visible()
    assert memory.get_attribute("data-series") == "1"
    # A type without samples gets no empty frame: one line names it.
    expect(page.locator("#pod-charts .no-samples")).to_contain_text("SM activity (%)")
    expect(page.locator("[data-pod-metric=GPU_SM_ACTIVITY_PER_GPU]")).to_have_count(0)
    screenshot(page, "pod-gpus")

    page.click("button[data-range='1h']")
    expect(utilisation.locator("canvas")).to_be_visible()
    assert int(utilisation.get_attribute("data-points")) > 0


def test_the_history_shows_events_inline_with_phase_changes(page, demo, api):
    candidates = api.get(
        "/api/v1/workloads", params={"filterBy": "phase==Pending", "limit": 50}
    ).json()["workloads"]
    workload, records = next(
        (w, records)
        for w, records in (
            (w, api.get(f"/api/v1/workloads/{w['id']}/history", params={"limit": 20}).json())
            for w in candidates
        )
        if any(r["meta"]["type"] == "Event" for r in records["records"])
    )
    records = records["records"]
    sign_in(page, demo.url)
    expect(page.locator("#topbar")).to_be_visible()
    page.goto(f"{demo.url}/#/workloads/{workload['id']}")
    rows = page.locator("#history tbody tr")
    expect(rows).to_have_count(len(records))
    kinds = rows.evaluate_all("rows => rows.map(r => r.dataset.kind)")
    assert kinds == [r["meta"]["type"] for r in records]  # the API's order: newest first
    first_event = next(r["spec"]["event"] for r in records if r["meta"]["type"] == "Event")
    event_row = page.locator("#history tbody tr[data-kind=Event]").first
    expect(event_row).to_contain_text(first_event["reason"])
    expect(event_row).to_contain_text(first_event["message"])
    expect(
        page.locator("#history tbody tr[data-kind=PhaseUpdate] [data-phase=Pending]").first
    ).to_be_visible()
    screenshot(page, "history-with-events")


def test_administrators_manage_access_in_the_access_view(page, demo, api):
    reader = new_service_account(api, "dashboard-reader")
    rule = grant(api, reader["clientId"], "viewer", "tenant")
    assert rule.status_code == 201, rule.text
    sign_in(page, demo.url)
    page.click("#nav-access")
    accounts = page.locator("#service-account-table")
    expect(accounts).to_contain_text(reader["name"])
    expect(accounts).to_contain_text(ADMIN_ID)

    page.fill("input[name=accountName]", "made-in-the-browser")
    page.click("#create-account button[type=submit]")
    expect(page.locator("#new-secret")).to_contain_text("shown once")
    created = next(
        a for a in api.get("/api/v1/service-accounts").json() if a["name"] == "made-in-the-browser"
    )
    row = page.locator(f"#service-account-table tr[data-id='{created['id']}']")
    # Disabling asks first; cancelling changes nothing.
    row.get_by_role("button", name="Disable").click()
    expect(row).to_contain_text(f"Disable {created['name']}?")
    row.locator("[data-confirm=cancel]").click()
    assert api.get(f"/api/v1/service-accounts/{created['id']}").json()["enabled"] is True
    row.get_by_role("button", name="Disable").click()
    row.locator("[data-confirm=yes]").click()
    expect(row).to_contain_text("Enable")
    assert api.get(f"/api/v1/service-accounts/{created['id']}").json()["enabled"] is False

    page.fill("input[name=ruleSubject]", reader["clientId"])
    page.click("#rule-filter button[type=submit]")
    expect(page.locator("#rule-count")).to_have_text("1 rules")
    expect(page.locator("#access-rule-table")).to_contain_text("Viewer")
    # Subjects read by name, their client id beside them.
    expect(page.locator("#access-rule-table tbody td").first).to_contain_text(reader["name"])
    page.locator("#access-rule-table").get_by_role("button", name="Revoke").click()
    expect(page.locator("#access-rule-table")).to_contain_text("Revoke Viewer on tenant")
    page.locator("#access-rule-table [data-confirm=yes]").click()
    expect(page.locator("#rule-count")).to_have_text("0 rules")
    revoked = api.get(f"/api/v1/authorization/access-rules/{rule.json()['id']}").json()
    assert revoked["deletedAt"] is not None

    audit = page.locator("#audit-table")
    expect(audit).to_contain_text("made-in-the-browser")
    expect(audit).to_contain_text("access-rule")
    screenshot(page, "access")


def test_the_access_view_asks_before_revoking_and_shows_refusals(page, demo, api):
    reader = new_service_account(api, "dashboard-doomed")
    rule = grant(api, reader["clientId"], "viewer", "tenant").json()
    sign_in(page, demo.url)
    page.click("#nav-access")
    page.fill("input[name=ruleSubject]", reader["clientId"])
    page.click("#rule-filter button[type=submit]")
    expect(page.locator("#rule-count")).to_have_text("1 rules")
    page.locator("#access-rule-table").get_by_role("button", name="Revoke").click()
    # Revoked elsewhere meanwhile: the refusal shows where the button was.
    assert api.delete(f"/api/v1/authorization/access-rules/{rule['id']}").status_code in (200, 204)
    page.locator("#access-rule-table [data-confirm=yes]").click()
    expect(page.locator("#access-rule-table [role=alert]")).to_be_visible()


def test_the_audit_log_pages_beyond_its_first_hundred_entries(page, demo, api):
    for number in range(105 - _audit_entries(api)):
        new_service_account(api, f"audited-{number}")
    total = _audit_entries(api)
    assert total > 100
    sign_in(page, demo.url)
    page.click("#nav-access")
    rows = page.locator("#audit-table tbody tr")
    expect(rows).to_have_count(100)
    expect(page.locator("#audit-shown")).to_have_text("100 entries shown")
    page.click("#audit-more")
    # Signing in above added an entry or two.
    expect(page.locator("#audit-more")).to_be_hidden()
    assert rows.count() >= total
    expect(rows.first).to_contain_text("sign-in")


def _audit_entries(client) -> int:
    end = datetime.now(UTC) + timedelta(minutes=1)
    params = {
        "start": (end - timedelta(hours=24)).isoformat(),
        "end": end.isoformat(),
        "numberOfSamples": 1,
    }
    return client.get("/api/v1/audit/log", params=params).json()["total"]


def test_the_access_view_is_offered_to_administrators_only(page, demo, api):
    reader = new_service_account(api, "dashboard-viewer")
    assert grant(api, reader["clientId"], "viewer", "tenant").status_code == 201
    page.goto(demo.url + "/")
    page.fill("input[name=clientId]", reader["clientId"])
    page.fill("input[name=clientSecret]", reader["clientSecret"])
    page.click("#signin button[type=submit]")
    expect(page.locator(".stat").first).not_to_have_text("…")
    expect(page.locator("#nav-access")).to_be_hidden()
    refused = _refusals(page)
    page.goto(demo.url + "/#/access")
    expect(page.locator("#access-scope")).to_contain_text("You administer no access")
    expect(page.locator("#service-accounts, #access-rules, #audit-log")).to_have_count(0)
    assert refused == []


def _refusals(page: Page) -> list[str]:
    """The API requests of the page answered 401, 403 or 404, as they come (but the 404 of
    /demo/status, which a server without the living simulator answers)."""
    refused: list[str] = []
    page.on(
        "response",
        lambda r: (
            r.status in (401, 403, 404)
            and "/api/" in r.url
            and "/demo/" not in r.url
            and refused.append(r.url)
        ),
    )
    return refused


def test_a_department_administrator_sees_its_rules_and_only_what_it_may_do(page, demo, api):
    department = api.get("/api/v1/org-unit/departments").json()["departments"][0]
    admin = new_service_account(api, "dashboard-department-admin")
    own = grant(api, admin["clientId"], "department-administrator", "department", department["id"])
    assert own.status_code == 201, own.text
    viewer = grant(api, "dana", "viewer", "department", department["id"], subject_type="user")
    assert viewer.status_code == 201, viewer.text
    refused = _refusals(page)
    sign_in(page, demo.url, admin["clientSecret"], admin["clientId"])
    expect(page.locator("#nav-access")).to_be_visible()
    page.click("#nav-access")
    rules = page.locator("#access-rule-table")
    own_row = rules.locator(f"tr[data-id='{own.json()['id']}']")
    viewer_row = rules.locator(f"tr[data-id='{viewer.json()['id']}']")
    expect(own_row).to_contain_text("Department administrator")
    expect(own_row.get_by_role("button", name="Revoke")).to_have_count(0)
    expect(page.locator("#access-scope")).to_contain_text("for system administrators")
    # No section it could not read, nor the service-account form.
    expect(page.locator("#service-accounts, #access-keys, #audit-log")).to_have_count(0)
    expect(page.locator("#create-account")).to_have_count(0)
    viewer_row.get_by_role("button", name="Revoke").click()
    viewer_row.locator("[data-confirm=yes]").click()
    expect(viewer_row).to_have_count(0)
    revoked = api.get(f"/api/v1/authorization/access-rules/{viewer.json()['id']}").json()
    assert revoked["deletedAt"] is not None
    screenshot(page, "access-department-administrator")
    assert refused == []


def test_the_filter_builder_offers_what_the_server_lists_and_no_order_of_a_phase(page, demo, api):
    fields = api.get("/api/v1/workload-fields").json()["fields"]
    sign_in(page, demo.url)
    page.click("a[data-nav=workloads]")
    expect(page.locator("#filter-builder")).to_be_visible()
    operators = page.locator("select[name=operator] option")
    choices = page.locator("#filter-builder datalist option")

    def offered(name: str) -> list[str]:
        page.select_option("select[name=field]", name)
        return operators.evaluate_all("options => options.map(o => o.value)")

    # The server compares a phase with <= and >= as text; the order of its names means nothing.
    assert offered("phase") == ["==", "!=", "=@", "!@", "=^", "=$"]
    assert offered("createdAt") == ["==", "!=", "<=", ">="]
    for field in fields:
        fixed = field.get("values")
        expected = [op for op in field["operators"] if not (fixed and op in ("<=", ">="))]
        assert offered(field["name"]) == expected, field["name"]
        assert choices.evaluate_all("options => options.map(o => o.value)") == (fixed or [])
