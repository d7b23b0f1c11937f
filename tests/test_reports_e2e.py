"""Reports end to end: the official SDK against real servers, and a replicated pair of servers
on one database building each report exactly once."""

from __future__ import annotations

import csv
import io
import re
import time
import uuid
from collections import Counter

import httpx
import pytest
from runai.api_client import ApiClient
from runai.configuration import Configuration
from runai.models.report_request_fields import ReportRequestFields
from runai.runai_client import RunaiClient

from tests.support.agent_reports import at, batch, ingest_path, report
from tests.support.databases import ADMIN_ID, ADMIN_SECRET

pytestmark = pytest.mark.e2e
FAST = {"GPUFLEET_REPORT_INTERVAL_SECONDS": "1"}


def _seed(server) -> None:
    workload_id = str(uuid.uuid4())
    held = {"allocatedResources": {"gpu": 2.0}}
    with httpx.Client(base_url=server.base_url, headers=server.auth_headers()) as http:
        for observed, phase in ((0, "Running"), (5400, "Completed")):
            item = report(workload_id, observed=observed, phase=phase, **held)
            assert http.post(ingest_path(), json=batch(item)).status_code == 200


def _wait_ready(get, report_id: str) -> dict:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        body = get(report_id)
        if body["status"] in ("Ready", "Failed"):
            return body
        time.sleep(0.2)
    raise AssertionError(f"report {report_id} is still {body['status']}")


def test_the_sdk_creates_polls_and_downloads_a_report(start_server):
    server = start_server(extra_env=FAST)
    _seed(server)
    config = Configuration(
        client_id=ADMIN_ID, client_secret=ADMIN_SECRET, runai_base_url=server.base_url
    )
    with RunaiClient(ApiClient(config)) as client:
        reports = client.organizations.reports
        request = ReportRequestFields(
            name="sdk report", start=at(0), end=at(2 * 3600), group_by="Project"
        )
        created = reports.create_report(request).data
        assert created["status"] in ("Pending", "Processing", "Ready")
        ready = _wait_ready(lambda i: reports.get_report_by_id(i).data, created["id"])
        assert ready["status"] == "Ready"
        text = reports.download_report_by_id(created["id"]).data
        listed = reports.list_reports(sort_by="name").data["reports"]
        assert [r["id"] for r in listed] == [created["id"]]
        assert reports.count_reports().data == {"count": 1}
        assert reports.are_reports_available().data == {"isAvailable": True}
    (row,) = list(csv.DictReader(io.StringIO(text)))
    assert row["projectName"] == "vision"
    assert float(row["allocatedGpuHours"]) == pytest.approx(3.0)


def test_a_replicated_pair_builds_each_report_once(start_server):
    first = start_server(extra_env=FAST)
    second = start_server(extra_env=FAST)
    _seed(first)
    ids = []
    for index in range(6):
        server = (first, second)[index % 2]
        response = httpx.post(
            server.base_url + "/api/v1/org-unit/reports",
            json={"name": f"r{index}", "start": at(0), "end": at(7200), "groupBy": "Cluster"},
            headers=server.auth_headers(),
        )
        assert response.status_code == 202, response.text
        ids.append(response.json()["id"])

    def get(report_id: str) -> dict:
        url = f"{second.base_url}/api/v1/org-unit/reports/{report_id}"
        return httpx.get(url, headers=second.auth_headers()).json()

    for report_id in ids:
        assert _wait_ready(get, report_id)["status"] == "Ready"
    logs = first.log_path.read_text() + second.log_path.read_text()
    built = Counter(re.findall(r"report ([0-9a-f-]{36}) Ready", logs))
    assert built == dict.fromkeys(ids, 1)
