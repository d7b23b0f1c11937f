"""The Reports API: requests, status, the worker and the files it writes from the usage ledger."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import timedelta

import pytest

from gpufleet.core.times import format_rfc3339
from gpufleet.metrics.report_tasks import run_pending_reports
from gpufleet.schemas.usage import FIGURE_FIELDS
from tests.support.access import key_with_role
from tests.support.agent_reports import T0, batch, ingest_path, report
from tests.support.reference import ReferenceValidators, load_reference

URL = "/api/v1/org-unit/reports"
HOUR = 3600
FIGURES = list(FIGURE_FIELDS)


@pytest.fixture
def settings(settings):
    """The test drives the worker itself: the app's own periodic run would race it."""
    return settings.model_copy(update={"report_interval_seconds": 0})


def _at(seconds: float) -> str:
    return format_rfc3339(T0 + timedelta(seconds=seconds))


def _request(**overrides) -> dict:
    body = {"name": "March GPUs", "start": _at(0), "end": _at(2 * 24 * HOUR)}
    body.update(overrides)
    return body


def _create(client, **overrides) -> dict:
    response = client.post(URL, json=_request(**overrides))
    assert response.status_code == 202, response.text
    return response.json()


def _seed(client) -> None:
    """vision (project 10): 2 GPUs 08:00-10:00 on day one and 1 GPU 23:00-01:00 across
    midnight; speech (11, another department): 4 GPUs 08:00-08:30."""
    plans = [
        ({}, 0, 2 * HOUR, 2.0),
        ({}, 15 * HOUR, 17 * HOUR, 1.0),
        (
            {"projectId": "11", "projectName": "speech", "departmentId": "3"},
            0,
            1800,
            4.0,
        ),
    ]
    for extra, start, end, gpus in plans:
        workload_id = str(uuid.uuid4())
        held = {**extra, "allocatedResources": {"gpu": gpus}}
        for observed, phase in ((start, "Running"), (end, "Completed")):
            item = report(workload_id, observed=observed, phase=phase, **held)
            response = client.post(ingest_path(), json=batch(item))
            assert response.status_code == 200, response.text


def _file(client, report_id: str) -> list[dict]:
    response = client.get(f"{URL}/{report_id}/file")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.text)))


def test_a_report_goes_from_pending_to_ready_with_one_row_per_group_and_day(client, engine):
    _seed(client)
    created = _create(client, groupBy="Project", description="per project")
    assert created["status"] == "Pending"
    assert created["createdBy"] == "test-admin"
    assert created["groupBy"] == "Project" and created["filterBy"] == []
    not_yet = client.get(f"{URL}/{created['id']}/file")
    assert not_yet.status_code == 400
    assert run_pending_reports(engine, "worker", 60_000) == 1
    ready = client.get(f"{URL}/{created['id']}").json()
    assert ready["status"] == "Ready"
    rows = _file(client, created["id"])
    assert list(rows[0]) == ["date", "projectId", "projectName", *FIGURES]
    table = {(r["date"], r["projectName"]): float(r["allocatedGpuHours"]) for r in rows}
    # T0 is 2025-03-01 08:00 UTC: vision's second workload runs 23:00-01:00.
    assert table == {
        ("2025-03-01", "vision"): pytest.approx(2 * 2 + 1),
        ("2025-03-01", "speech"): pytest.approx(2),
        ("2025-03-02", "vision"): pytest.approx(1),
    }
    assert run_pending_reports(engine, "worker", 60_000) == 0


def test_filters_and_no_grouping(client, engine):
    _seed(client)
    filtered = _create(client, filterBy=["projectName==vision"])
    everything = _create(client)
    run_pending_reports(engine, "worker", 60_000)
    rows = _file(client, filtered["id"])
    assert list(rows[0]) == ["date", *FIGURES]
    assert [(r["date"], float(r["allocatedGpuHours"])) for r in rows] == [
        ("2025-03-01", pytest.approx(5)),
        ("2025-03-02", pytest.approx(1)),
    ]
    rows = _file(client, everything["id"])
    assert sum(float(r["allocatedGpuHours"]) for r in rows) == pytest.approx(8)


def test_a_report_shows_what_its_creator_could_see(client, engine):
    _seed(client)
    viewer = key_with_role(client, "viewer", "project", "11")
    response = client.post(URL, json=_request(groupBy="Project"), headers=viewer)
    assert response.status_code == 202
    mine = response.json()
    run_pending_reports(engine, "worker", 60_000)
    rows = list(csv.DictReader(io.StringIO(client.get(f"{URL}/{mine['id']}/file").text)))
    assert {r["projectName"] for r in rows} == {"speech"}
    # The viewer sees its own reports only; the administrator sees every report.
    _create(client, name="admin's")
    assert client.get(f"{URL}/count", headers=viewer).json() == {"count": 1}
    assert client.get(f"{URL}/count").json() == {"count": 2}
    theirs = client.get(URL).json()["reports"][1]["id"]
    assert client.get(f"{URL}/{theirs}", headers=viewer).status_code == 404
    assert client.delete(f"{URL}/{theirs}", headers=viewer).status_code == 404


def test_list_filters_sorts_pages_and_searches(client):
    for name in ("gamma", "alpha", "beta"):
        _create(client, name=name)
    names = lambda **p: [r["name"] for r in client.get(URL, params=p).json()["reports"]]  # noqa: E731
    assert names() == ["gamma", "alpha", "beta"]
    assert names(sortBy="name") == ["alpha", "beta", "gamma"]
    assert names(sortBy="name", sortOrder="desc", limit=2) == ["gamma", "beta"]
    assert names(sortBy="name", offset=2) == ["gamma"]
    assert names(filterBy="name=^b") == ["beta"]
    assert names(filterBy="status==Pending", search="amm") == ["gamma"]
    count = client.get(f"{URL}/count", params={"filterBy": "name!=alpha"}).json()
    assert count == {"count": 2}


def test_delete_and_unknown_ids(client):
    created = _create(client)
    assert client.delete(f"{URL}/{created['id']}").status_code == 204
    assert client.get(f"{URL}/{created['id']}").status_code == 404
    assert client.delete(f"{URL}/{created['id']}").status_code == 404
    assert client.get(f"{URL}/not-a-uuid").status_code == 400
    # This server runs no worker (the tests drive it): reports are not available here.
    assert client.get(f"{URL}/availability").json() == {"isAvailable": False}


def test_times_without_an_offset_are_read_as_utc(client):
    naive = (T0 + timedelta(hours=3)).replace(tzinfo=None).isoformat(sep=" ")
    created = _create(client, start=naive)
    assert created["start"] == _at(3 * HOUR)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": ""}, "name"),
        ({"end": _at(-10)}, "end"),
        ({"groupBy": "Submitter"}, "groupBy"),
        ({"filterBy": ["phase==Running"]}, "filterBy"),
        ({"start": "soon"}, "start"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_bad_requests_are_400_naming_the_field(client, overrides, field):
    response = client.post(URL, json=_request(**overrides))
    assert response.status_code == 400
    assert field in response.json()["message"]


def test_answers_validate_against_the_reference(client, engine):
    validators = ReferenceValidators(load_reference("runai-adjacent-openapi.json"))
    created = client.post(URL, json=_request(groupBy="Nodepool", filterBy=["clusterId==x"]))
    validators.response(URL, "post", "202").validate(created.json())
    run_pending_reports(engine, "worker", 60_000)
    report_id = created.json()["id"]
    validators.response(f"{URL}/{{reportId}}").validate(client.get(f"{URL}/{report_id}").json())
    validators.response(URL).validate(client.get(URL).json())
    validators.response(f"{URL}/count").validate(client.get(f"{URL}/count").json())
    validators.response(f"{URL}/availability").validate(client.get(f"{URL}/availability").json())
