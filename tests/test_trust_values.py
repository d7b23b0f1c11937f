"""Values the store cannot hold are a 400 naming the field, on every request body, through a
real server: non-finite numbers, times that leave the calendar in UTC, nesting deeper than the
limit, lone surrogates and NUL characters, at any depth."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.agent_reports import batch, ingest_path, report
from tests.support.server import ServerProcess

pytestmark = pytest.mark.e2e

LATE = "9999-12-31T23:59:59-14:00"
EARLY = "0001-01-01T00:00:00+14:00"


@pytest.fixture(scope="module")
def server(module_database_url: str, tmp_path_factory) -> Iterator[ServerProcess]:
    with ServerProcess(module_database_url, log_dir=tmp_path_factory.mktemp("values")) as process:
        yield process


@pytest.fixture(scope="module")
def admin(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, headers=server.auth_headers()) as client:
        yield client


def _refused(response: httpx.Response, *names: str) -> str:
    """The message of a 400 that names every one of ``names``."""
    assert response.status_code == 400, response.text
    message = response.json()["message"]
    for name in names:
        assert name in message, message
    return message


def _post_raw(client: httpx.Client, path: str, text: str) -> httpx.Response:
    """Post JSON text as is (escapes such as a lone surrogate survive)."""
    return client.post(path, content=text.encode(), headers={"Content-Type": "application/json"})


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"x": value}
    return value


@pytest.mark.parametrize("value", ["Infinity", "-Infinity", "NaN", "1e999"])
@pytest.mark.parametrize(
    ("field", "place"),
    [
        ("allocatedResources.gpu", lambda v: {"allocatedResources": {"gpu": v}}),
        (
            "workloadRequestedResources.cpu.limit",
            lambda v: {"workloadRequestedResources": {"cpu": {"limit": v}}},
        ),
        ("idleAllocatedGpus", lambda v: {"idleAllocatedGpus": v}),
    ],
)
def test_non_finite_numbers_are_refused_at_any_depth(admin, field, place, value):
    item = report(**place(value))
    _refused(admin.post(ingest_path(), json=batch(item)), "index 0", field)
    # As a bare JSON literal too, which the standard parser would read as a float.
    if value in ("Infinity", "NaN"):
        text = json.dumps(batch(item)).replace(f'"{value}"', value)
        _refused(_post_raw(admin, ingest_path(), text), field)


@pytest.mark.parametrize("moment", [LATE, EARLY])
@pytest.mark.parametrize(
    ("field", "place"),
    [
        ("createdAt", lambda t: {"createdAt": t}),
        ("observedAt", lambda t: {"observedAt": t}),
        ("phaseUpdatedAt", lambda t: {"phaseUpdatedAt": t}),
        ("conditions.0.lastTransitionTime",
         lambda t: {"conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": t}]}),
    ],
)  # fmt: skip
def test_times_outside_the_calendar_in_utc_are_refused(admin, field, place, moment):
    _refused(admin.post(ingest_path(), json=batch(report(**place(moment)))), "index 0", field)


@pytest.mark.parametrize("moment", [LATE, EARLY])
def test_metric_sample_times_at_the_edges_are_refused(admin, moment):
    workload = report()
    assert admin.post(ingest_path(), json=batch(workload)).status_code == 200
    sample = {
        "workloadId": workload["id"],
        "type": "CPU_USAGE_CORES",
        "timestamp": moment,
        "value": 1,
    }
    _refused(
        admin.post("/api/v1/ingest/metrics", json={"samples": [sample]}), "samples.0.timestamp"
    )


def _nested_text(depth: int) -> str:
    """JSON text of objects nested ``depth`` deep (the standard encoder stops short of 1,024)."""
    return '{"x": ' * (depth - 1) + '{"leaf": 1}' + "}" * (depth - 1)


@pytest.mark.parametrize("depth", [256, 300, 1024])
def test_deep_nesting_is_refused_naming_where(admin, depth):
    in_fields = report(additionalFields={"x": "DEEP"})
    in_pod = report()
    in_pod["pods"][0]["nodeAffinity"] = "DEEP"
    for item, name in ((in_fields, "additionalFields.x"), (in_pod, "pods.0.nodeAffinity")):
        text = json.dumps(batch(item)).replace('"DEEP"', _nested_text(depth))
        _refused(_post_raw(admin, ingest_path(), text), "index 0", name, "nested")
    labels = json.dumps({"name": "nn", "labels": "DEEP"}).replace('"DEEP"', _nested_text(depth))
    key = _post_raw(admin, "/api/v1/service-accounts", labels)
    _refused(key, "labels")


def _with_bad(body: Any, bad: str) -> str:
    """JSON text of ``body`` with every ``@BAD@`` replaced by the escape sequence ``bad``."""
    return json.dumps(body).replace("@BAD@", bad)


@pytest.mark.parametrize("bad", ["\\ud800", "\\udfff", "a\\u0000b"])
def test_lone_surrogates_and_nul_are_refused_in_every_body(admin, server, bad):
    problem = "NUL" if "0000" in bad else "surrogate"
    token_path = f"{server.base_url}/api/v1/token"
    for field in ("clientID", "clientSecret"):
        token = {"grantType": "client_credentials", "clientID": "c", "clientSecret": "s"}
        text = _with_bad({**token, field: "@BAD@"}, bad)
        _refused(_post_raw(httpx, token_path, text), field, problem)
    named_account = _with_bad({"name": "@BAD@"}, bad)
    _refused(_post_raw(admin, "/api/v1/service-accounts", named_account), "name")
    rule = {
        "subjectType": "service-account",
        "subjectId": "@BAD@",
        "roleId": 4,
        "scopeType": "tenant",
        "scopeId": "1",
    }
    _refused(
        _post_raw(admin, "/api/v1/authorization/access-rules", _with_bad(rule, bad)), "subjectId"
    )
    named = _with_bad(batch(report(name="@BAD@")), bad)
    _refused(_post_raw(admin, ingest_path(), named), "index 0", "name", problem)
    keyed = _with_bad(batch(report(pods=[{"@BAD@": 1}])), bad)
    _refused(_post_raw(admin, ingest_path(), keyed), "index 0", "pods.0", problem)
    sample = {
        "workloadId": "@BAD@",
        "type": "CPU_USAGE_CORES",
        "timestamp": "2025-01-01T00:00:00Z",
        "value": 1,
    }
    text = _with_bad({"samples": [sample]}, bad)
    _refused(_post_raw(admin, "/api/v1/ingest/metrics", text), "samples.0.workloadId", problem)


def test_nul_in_a_form_token_request_is_refused(server):
    response = httpx.post(
        f"{server.base_url}/api/v1/token",
        content=b"grant_type=client_credentials&client_id=a%00b&client_secret=s",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 400, response.text
    assert "client_id" in response.text


@pytest.mark.parametrize(
    ("method", "path", "parameter"),
    [
        ("DELETE", "/api/v1/service-accounts/a%00b", "serviceAccountId"),
        ("GET", "/api/v1/service-accounts/a%00b", "serviceAccountId"),
        ("POST", "/api/v1/service-accounts/a%00b/secret", "serviceAccountId"),
        ("DELETE", "/api/v1/access-keys/a%00b", "accessKeyId"),
        ("POST", "/api/v1/access-keys/a%00b/secret", "accessKeyId"),
        ("DELETE", "/api/v1/administration/access-keys/a%00b", "accessKeyId"),
    ],
)
def test_nul_in_credential_paths_is_refused(admin, method, path, parameter):
    _refused(admin.request(method, path), parameter, "NUL")


def test_nul_in_query_parameters_is_refused(admin):
    response = admin.get("/api/v1/workloads", params={"search": "a\x00b"})
    _refused(response, "search", "NUL")
    response = admin.get(f"/api/v1/workloads/{uuid.uuid4()}/history", params={"x\x00": "1"})
    assert response.status_code in (200, 400, 404), response.text


def test_the_store_still_takes_ordinary_values(admin):
    item = report(
        allocatedResources={"gpu": 1e15},  # the largest amount ingest takes
        createdAt="9999-12-31T09:59:59+14:00",
        name="名前-🚀",
    )
    item["additionalFields"] = _nested(30)
    item["pods"][0]["nodeAffinity"] = _nested(30)
    response = admin.post(ingest_path(), json=batch(item))
    assert response.status_code == 200 and response.json()["accepted"] == 1, response.text
    stored = admin.get(f"/api/v1/workloads/{item['id']}").json()
    assert stored["name"] == "名前-🚀" and stored["createdAt"] == "9999-12-30T19:59:59.000Z"
