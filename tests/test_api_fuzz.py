"""Every operation of the OpenAPI document, fuzzed: never a 5xx, every error in the Error shape.

The operations are walked from the app's own document, so a new endpoint is fuzzed as soon as
it exists. Each gets path and query parameters drawn from their schemas (and outside them; a
parameter's documented examples too, and their filter terms with any value) and, where it takes
one, a JSON body drawn from its schema with wrong types, extra keys, nasty strings and lone
surrogates mixed in, or arbitrary bytes. Every request goes out as an administrator, as a viewer
or anonymously.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.access import key_with_role
from tests.support.shared_app import admin_client, shared_app

EXAMPLES_PER_OPERATION = 25
NASTY = [
    "",
    " ",
    "'",
    "\x00",
    "\ud800",
    "' OR '1'='1",
    "%",
    "../../etc/passwd",
    "NaN",
    "Infinity",
    "-1",
    "1e999",
    "99999999999999999999999",
    "9999-12-31T23:59:59-14:00",
    "0001-01-01T00:00:00+14:00",
    "00000000-0000-0000-0000-000000000000",
    "test-admin",
    "日本語",
    "a" * 5000,
]
strings = st.one_of(st.text(max_size=30), st.sampled_from(NASTY))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    strings,
)
any_json = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(strings, inner, max_size=4)
    ),
    max_leaves=12,
)
# What can travel in a URL: no lone surrogates.
url_text = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=30),
    st.sampled_from([n for n in NASTY if "\ud800" not in n]),
)


def resolve(schema: dict, document: dict) -> dict:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = document["components"]["schemas"][name]
    return schema


def from_schema(schema: dict, document: dict, depth: int = 0) -> st.SearchStrategy[Any]:
    """Values shaped by a JSON schema most of the time, and anything at all some of the time."""
    schema = resolve(schema, document)
    if depth > 4:
        return scalars
    if "enum" in schema:
        shaped = st.sampled_from(schema["enum"])
    elif "anyOf" in schema or "oneOf" in schema:
        options = schema.get("anyOf") or schema.get("oneOf")
        shaped = st.one_of([from_schema(option, document, depth + 1) for option in options])
    else:
        shaped = _typed(schema, document, depth)
    return st.one_of(shaped, shaped, shaped, any_json)


def _typed(schema: dict, document: dict, depth: int) -> st.SearchStrategy[Any]:
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties", {})
        required = set(schema.get("required", []))
        return st.fixed_dictionaries(
            {
                k: from_schema(v, document, depth + 1)
                for k, v in properties.items()
                if k in required
            },
            optional={
                **{
                    k: from_schema(v, document, depth + 1)
                    for k, v in properties.items()
                    if k not in required
                },
                "unexpectedKey": any_json,
            },
        )
    if kind == "array":
        return st.lists(from_schema(schema.get("items", {}), document, depth + 1), max_size=3)
    if kind == "integer":
        return st.one_of(st.integers(), st.integers(min_value=-2, max_value=600))
    if kind == "number":
        return st.one_of(st.integers(), st.floats(allow_nan=False, allow_infinity=False))
    if kind == "boolean":
        return st.booleans()
    if kind == "string":
        formats = {"uuid": st.uuids().map(str), "date-time": st.datetimes().map(str)}
        return st.one_of(formats.get(schema.get("format", ""), strings), strings)
    return any_json


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value) if isinstance(value, list | dict) else str(value)


# A filterBy term: a field, an operator and the rest.
EXAMPLE_TERM = re.compile(r"^([A-Za-z][A-Za-z0-9_]*)(==|!=|<=|>=|=@|!@|=\^|=\$)(.*)$")


def example_terms(examples: list[str]) -> st.SearchStrategy[str]:
    """A documented example, or up to three of its terms each with any value: a field and an
    operator the parameter takes carry the value past the grammar into its own checks."""
    terms = sorted(
        {m.group(1, 2) for e in examples for t in e.split(",") if (m := EXAMPLE_TERM.match(t))}
    )
    documented = st.sampled_from(examples)
    if not terms:
        return documented
    term = st.tuples(st.sampled_from(terms), url_text).map(lambda d: f"{d[0][0]}{d[0][1]}{d[1]}")
    return st.one_of(documented, st.lists(term, min_size=1, max_size=3).map(",".join))


def parameter_values(schema: dict, document: dict) -> st.SearchStrategy[str]:
    """A query or path value: schema-shaped (as text), built from its examples, or any text."""
    schema = resolve(schema, document)
    shaped = from_schema(schema, document).map(
        lambda v: (
            v if isinstance(v, str) else json.dumps(v) if isinstance(v, list | dict) else str(v)
        )
    )
    examples = [e for e in schema.get("examples", []) if isinstance(e, str)]
    drawn = [shaped.filter(lambda v: "\ud800" not in v and "\x00" not in v), url_text]
    if examples:
        drawn.append(example_terms(examples))
    return st.one_of(drawn)


@pytest.fixture(scope="module")
def fuzz_app(request, tmp_path_factory):
    with shared_app(request, tmp_path_factory) as app:
        yield app


@pytest.fixture(scope="module")
def client(fuzz_app):
    with TestClient(fuzz_app, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture(scope="module")
def callers(fuzz_app, client) -> dict[str, dict[str, str]]:
    """Headers of each kind of caller."""
    admin = admin_client(fuzz_app)
    admin_headers = {"Authorization": admin.headers["Authorization"]}
    client.headers.update(admin_headers)
    try:
        viewer_headers = key_with_role(client, "viewer", "tenant")
    finally:
        client.headers.pop("Authorization")
    return {"admin": admin_headers, "viewer": viewer_headers, "anonymous": {}}


def operations(document: dict) -> list[tuple[str, str, dict]]:
    found = []
    for template, methods in document["paths"].items():
        for method, operation in methods.items():
            found.append((method.upper(), template, operation))
    return found


def request_strategy(template: str, operation: dict, document: dict):
    parameters = operation.get("parameters", [])
    path_params = {
        p["name"]: parameter_values(p.get("schema", {}), document)
        for p in parameters
        if p["in"] == "path"
    }
    query_params = {
        p["name"]: st.lists(parameter_values(p.get("schema", {}), document), max_size=2)
        for p in parameters
        if p["in"] == "query"
    }
    body_schema = (
        operation.get("requestBody", {})
        .get("content", {})
        .get("application/json", {})
        .get("schema")
    )
    bodies = (
        st.none()
        if body_schema is None
        else st.one_of(
            from_schema(body_schema, document).map(lambda v: json.dumps(v).encode()),
            st.binary(max_size=64),
        )
    )
    return st.tuples(
        st.sampled_from(["admin", "viewer", "anonymous"]),
        st.fixed_dictionaries(path_params),
        st.fixed_dictionaries({}, optional=query_params),
        bodies,
    )


def check(response, method: str, template: str) -> None:
    where = f"{method} {template}: {response.status_code} {response.text[:300]}"
    assert response.status_code < 500, where
    if response.status_code >= 400 and "json" in response.headers.get("content-type", ""):
        body = response.json()
        assert body["code"] == response.status_code, where
        assert body["message"], where


def fuzzer(
    client: TestClient, method: str, template: str, requests: st.SearchStrategy, callers: dict
):
    """A hypothesis test of one operation, with a budget small enough for every CI run."""

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        database=None,
    )
    @given(requests)
    def fuzz(drawn) -> None:
        caller, path_values, query, body = drawn
        path = re.sub(
            r"\{(\w+)\}", lambda m: quote(path_values[m.group(1)], safe="") or "x", template
        )
        headers = dict(callers[caller])
        if body is not None:
            headers["content-type"] = "application/json"
        response = client.request(method, path, params=query, content=body, headers=headers)
        check(response, method, template)

    return fuzz


def test_no_operation_answers_5xx(fuzz_app, client, callers):
    document = fuzz_app.openapi()
    walked = operations(document)
    assert len(walked) >= 20
    for method, template, operation in walked:
        requests = request_strategy(template, operation, document)
        fuzzer(client, method, template, requests, callers)()
