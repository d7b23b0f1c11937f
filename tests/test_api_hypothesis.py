"""Arbitrary query parameters never crash the workloads API: a page, a count, or a 4xx Error."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpufleet.core.workload_fields import Operator
from gpufleet.query.fields import WORKLOAD_FIELDS
from tests.support import factories
from tests.support.shared_app import admin_client, shared_app

URL = "/api/v1/workloads"
FIELDS = list(WORKLOAD_FIELDS)
OPERATORS = [op.value for op in Operator]
NASTY = [
    "'",
    '"',
    ";",
    "--",
    "%",
    "_",
    "\\",
    "\x00",
    "' OR '1'='1",
    "'); DROP TABLE workloads; --",
    "%%",
    "\\%",
    "NULL",
    "1e999",
    "-0",
    "NaN",
    "Infinity",
    "99999999999999999999999999999999",
    "2024-01-01T00:00:00Z",
    "2024-01-01T00:00:00+14:00",
    "0001-01-01",
    "9999-12-31T23:59:59",
    "日本語",
    "🚀",
    "ǅ",
    ",",
    "==",
    " ",
]
PARAMETERS = {
    "max_examples": 80,
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow],
}

# Surrogates cannot travel in a URL; everything else may.
text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
values = st.one_of(
    text,
    st.sampled_from(NASTY),
    st.integers().map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.datetimes().map(lambda d: d.isoformat()),
)
terms = st.one_of(
    st.builds(
        lambda f, o, v: f + o + v, st.sampled_from(FIELDS), st.sampled_from(OPERATORS), values
    ),
    st.builds(lambda f, o, v: f + o + v, text, st.sampled_from(OPERATORS), values),
    text,
)
filter_params = st.lists(
    st.one_of(terms, st.lists(terms, min_size=1, max_size=4).map(",".join)), max_size=3
)
numbers = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.integers(min_value=0, max_value=600).map(str),
    st.sampled_from(NASTY),
    text,
)


@pytest.fixture(scope="module")
def reader(request, tmp_path_factory):
    with shared_app(request, tmp_path_factory) as app:
        factories.insert(
            app.state.gpufleet.engine,
            [
                factories.workload(name="50%_x'--", submittedBy=None, currentNodePools=[]),
                factories.workload(name="日本語", phase="Pending", currentNodePools=["a", "b"]),
                factories.workload(deletedAt=factories.BASE_TIME, priority=None),
            ],
        )
        with admin_client(app) as client:
            yield client


def _check(response) -> dict:
    assert response.status_code < 500, response.text
    body = response.json()
    if response.status_code != 200:
        assert 400 <= response.status_code < 500
        assert set(body) <= {"code", "message", "details"}
        assert body["code"] == response.status_code
        assert isinstance(body["message"], str)
        assert body["message"]
    return body


@settings(**PARAMETERS)
@given(
    filter_by=filter_params,
    sort_by=st.one_of(st.none(), st.sampled_from(FIELDS), text),
    sort_order=st.one_of(st.none(), st.sampled_from(["asc", "desc"]), text),
    search=st.one_of(st.none(), text, st.sampled_from(NASTY)),
    offset=st.one_of(st.none(), numbers),
    limit=st.one_of(st.none(), numbers),
    deleted=st.one_of(st.none(), st.sampled_from(["true", "false", "1", "yes", "maybe"]), text),
)
def test_list_never_fails_on_any_parameters(
    reader, filter_by, sort_by, sort_order, search, offset, limit, deleted
):
    params: list[tuple[str, str]] = [("filterBy", f) for f in filter_by]
    for name, value in (
        ("sortBy", sort_by),
        ("sortOrder", sort_order),
        ("search", search),
        ("offset", offset),
        ("limit", limit),
        ("deleted", deleted),
    ):
        if value is not None:
            params.append((name, value))
    response = reader.get(URL, params=params)
    body = _check(response)
    if response.status_code == 200:
        assert set(body) <= {"next", "workloads"}
        assert len(body["workloads"]) <= int(limit if limit is not None else 50)
    else:
        assert response.status_code == 400


@settings(**{**PARAMETERS, "max_examples": 50})
@given(filter_by=filter_params, search=st.one_of(st.none(), text))
def test_count_and_list_agree_on_any_filter(reader, filter_by, search):
    params: list[tuple[str, str]] = [("filterBy", f) for f in filter_by]
    if search is not None:
        params.append(("search", search))
    counted = reader.get(f"{URL}/count", params=params)
    listed = reader.get(URL, params=[*params, ("limit", "500")])
    count_body, list_body = _check(counted), _check(listed)
    assert counted.status_code == listed.status_code
    if counted.status_code == 200:
        assert count_body["count"] == len(list_body["workloads"])


@settings(**{**PARAMETERS, "max_examples": 50})
@given(workload_id=st.one_of(text.filter(bool), st.uuids().map(str)))
def test_get_never_fails_on_any_id(reader, workload_id):
    response = reader.get(f"{URL}/{quote(workload_id, safe='')}", follow_redirects=False)
    if response.status_code in (307, 308):
        return
    _check(response)
