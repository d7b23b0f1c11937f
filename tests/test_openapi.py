"""The served OpenAPI document and docs page, checked against the reference document."""

from __future__ import annotations

import json

import pytest

from tests.support.reference import load_reference
from tests.support.shared_app import shared_app

OPERATIONS = [
    ("/api/v1/workloads", "get"),
    ("/api/v1/workloads/count", "get"),
    ("/api/v1/workloads/{workloadId}", "get"),
    ("/api/v1/token", "post"),
]


@pytest.fixture(scope="module")
def served(request, tmp_path_factory):
    from fastapi.testclient import TestClient

    with shared_app(request, tmp_path_factory) as app, TestClient(app) as client:
        response = client.get("/openapi.json")
        assert response.status_code == 200
        yield client, response.json()


@pytest.fixture(scope="module")
def reference() -> dict:
    return load_reference("workloads-openapi.json")


def _resolve(document: dict, node: dict) -> dict:
    while "$ref" in node:
        target = document
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def _enum(document: dict, schema: dict) -> list | None:
    schema = _resolve(document, schema)
    if "enum" in schema:
        return schema["enum"]
    for option in schema.get("anyOf", []):
        found = _enum(document, option)
        if found is not None:
            return found
    return None


def _parameters(document: dict, path: str, method: str) -> dict[str, dict]:
    operation = document["paths"][path][method]
    resolved = (_resolve(document, p) for p in operation.get("parameters", []))
    return {p["name"]: p for p in resolved}


def test_document_and_docs_page_are_served(served):
    client, document = served
    assert document["openapi"].startswith("3.")
    for path, method in OPERATIONS:
        assert method in document["paths"][path]
    page = client.get("/api/docs")
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert "/api/docs/init.js" in page.text
    assert "/openapi.json" in client.get("/api/docs/init.js").text


def test_no_422_is_documented(served):
    _, document = served
    text = json.dumps(document)
    assert '"422"' not in text
    assert "HTTPValidationError" not in text
    for path, method in OPERATIONS[:3]:
        assert "400" in document["paths"][path][method]["responses"]


def test_error_schema_is_the_reference_shape(served):
    _, document = served
    error = document["components"]["schemas"]["Error"]
    assert set(error["properties"]) == {"code", "message", "details"}
    assert sorted(error["required"]) == ["code", "message"]


@pytest.mark.parametrize(("path", "method"), OPERATIONS)
def test_parameters_match_the_reference(served, reference, path, method):
    _, document = served
    ours = _parameters(document, path, method)
    theirs = _parameters(reference, path, method)
    assert list(ours) == list(theirs)
    for name, parameter in theirs.items():
        assert ours[name]["in"] == parameter["in"], name
        assert ours[name].get("required", False) == parameter.get("required", False), name
        assert _enum(document, ours[name]["schema"]) == _enum(reference, parameter["schema"]), name


@pytest.mark.parametrize(("path", "method"), OPERATIONS)
def test_every_reference_status_is_documented(served, reference, path, method):
    _, document = served
    ours = document["paths"][path][method]["responses"]
    assert set(reference["paths"][path][method]["responses"]) <= set(ours)


def test_limit_bounds_and_defaults_match(served, reference):
    _, document = served
    ours = _parameters(document, "/api/v1/workloads", "get")
    theirs = _parameters(reference, "/api/v1/workloads", "get")
    for key in ("minimum", "maximum", "default"):
        assert ours["limit"]["schema"][key] == theirs["limit"]["schema"][key]
    assert ours["sortOrder"]["schema"]["default"] == theirs["sortOrder"]["schema"]["default"]
    array = next(o for o in ours["filterBy"]["schema"]["anyOf"] if o.get("type") == "array")
    assert array["items"]["type"] == theirs["filterBy"]["schema"]["items"]["type"] == "string"


def test_workload_id_is_documented_as_a_uuid(served, reference):
    _, document = served
    ours = _parameters(document, "/api/v1/workloads/{workloadId}", "get")["workloadId"]
    theirs = _parameters(reference, "/api/v1/workloads/{workloadId}", "get")["workloadId"]
    assert ours["schema"]["format"] == theirs["schema"]["format"] == "uuid"


def _response_properties(document: dict, path: str) -> set[str]:
    schema = document["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]
    return set(_resolve(document, schema["schema"])["properties"])


def test_response_envelopes_match(served, reference):
    _, document = served
    for path in ("/api/v1/workloads", "/api/v1/workloads/count"):
        assert _response_properties(document, path) == _response_properties(reference, path)


def test_token_request_fields_match(served, reference):
    _, document = served

    def fields(doc):
        body = doc["paths"]["/api/v1/token"]["post"]["requestBody"]["content"]
        return set(_resolve(doc, body["application/json"]["schema"])["properties"])

    assert fields(reference) <= fields(document)
