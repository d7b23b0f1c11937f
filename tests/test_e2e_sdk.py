"""The official Run:ai SDK (``runapy``) against a real ``gpufleet serve --demo`` process.

Expectations are computed independently from one complete listing of the demo (collected by
paging), so every filtered, sorted or counted answer is checked against the data, not against
constants.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import pytest
from runai.api_client import ApiClient
from runai.configuration import Configuration
from runai.exceptions import ApiException
from runai.runai_client import RunaiClient

from tests.support.databases import ADMIN_ID, ADMIN_SECRET
from tests.support.server import ServerProcess

pytestmark = pytest.mark.e2e

PAGE = 173  # not a divisor of the demo size, so the last page is a partial one


def sdk_client(base_url: str, **options: Any) -> RunaiClient:
    """A client built exactly as the SDK's documentation shows; fetches its own token."""
    config = Configuration(
        client_id=ADMIN_ID, client_secret=ADMIN_SECRET, runai_base_url=base_url, **options
    )
    return RunaiClient(ApiClient(config))


def token_expiry(token: str) -> int:
    return json.loads(base64.b64decode(token.split(".")[1] + "=="))["exp"]


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@pytest.fixture(scope="module")
def demo_server(module_database_url: str, tmp_path_factory) -> Iterator[ServerProcess]:
    with ServerProcess(
        module_database_url,
        demo=True,
        demo_workloads=2000,
        log_dir=tmp_path_factory.mktemp("server"),
    ) as server:
        yield server


@pytest.fixture(scope="module")
def sdk(demo_server: ServerProcess) -> Iterator[RunaiClient]:
    with sdk_client(demo_server.base_url) as client:
        yield client


@pytest.fixture(scope="module")
def api(sdk: RunaiClient):
    return sdk.workloads.workloads


def collect(api, page: int = PAGE, **params: Any) -> list[dict]:
    """Every workload the query matches, paging by offset/limit until ``next`` is absent."""
    items: list[dict] = []
    offset = 0
    while True:
        body = api.get_workloads(offset=offset, limit=page, **params).data
        items.extend(body["workloads"])
        if "next" not in body:
            assert len(body["workloads"]) <= page
            return items
        assert body["next"] == offset + page
        assert len(body["workloads"]) == page
        offset = body["next"]


@pytest.fixture(scope="module")
def everything(api) -> list[dict]:
    return collect(api)


def test_paging_returns_every_workload_exactly_once(api, everything):
    ids = [w["id"] for w in everything]
    assert len(ids) == len(set(ids))
    assert len(ids) > PAGE * 2
    assert api.count_workloads().data == {"count": len(ids)}
    assert all(w["deletedAt"] is None for w in everything)
    # The default order is createdAt ascending.
    created = [parse_time(w["createdAt"]) for w in everything]
    assert created == sorted(created)


def test_deleted_workloads_are_listed_only_when_asked(api, everything):
    deleted = collect(api, deleted=True)
    assert deleted, "the demo organisation includes deleted workloads"
    assert all(w["deletedAt"] is not None for w in deleted)
    assert not {w["id"] for w in deleted} & {w["id"] for w in everything}
    assert api.count_workloads(deleted=True).data == {"count": len(deleted)}


def _filters(everything: list[dict]) -> list[tuple[list[str], Callable[[dict], bool]]]:
    project = max(
        {w["projectName"] for w in everything},
        key=lambda p: sum(w["projectName"] == p for w in everything),
    )
    fragment = project[1:4]
    median = sorted(w["createdAt"] for w in everything)[len(everything) // 2]
    prefix = everything[0]["name"][:3]
    return [
        (["phase==Running"], lambda w: w["phase"] == "Running"),
        (
            ["phase==Running", "allocatedGPU>=1"],
            lambda w: (
                w["phase"] == "Running" and (w.get("allocatedResources") or {}).get("gpu", 0) >= 1
            ),
        ),
        (
            [f"projectName=@{fragment}", "type!=Training"],
            lambda w: fragment in w["projectName"] and w["type"] != "Training",
        ),
        (
            [f"createdAt>={median}", f"projectName=={project}"],
            lambda w: (
                parse_time(w["createdAt"]) >= parse_time(median) and w["projectName"] == project
            ),
        ),
        ([f"name=^{prefix}"], lambda w: w["name"].startswith(prefix)),
        (["phase!=Running", "phase!=Pending"], lambda w: w["phase"] not in ("Running", "Pending")),
    ]


def test_filters_match_an_independent_evaluation(api, everything):
    for filter_by, matches in _filters(everything):
        expected = sorted(w["id"] for w in everything if matches(w))
        # The SDK sends the list comma-joined in one filterBy parameter.
        got = sorted(w["id"] for w in collect(api, filter_by=filter_by))
        assert got == expected, filter_by
        assert api.count_workloads(filter_by=filter_by).data == {"count": len(expected)}
    assert any(matches(w) for _, matches in _filters(everything) for w in everything)


@pytest.mark.parametrize(
    ("sort_by", "key"),
    [
        ("name", lambda w: w["name"]),
        ("createdAt", lambda w: parse_time(w["createdAt"])),
        ("allocatedGPU", lambda w: (w.get("allocatedResources") or {}).get("gpu") or 0),
        ("priority", lambda w: w.get("priority") or 0),
    ],
)
@pytest.mark.parametrize("sort_order", ["asc", "desc"])
def test_sorting_orders_every_page(api, everything, sort_by, key, sort_order):
    ordered = collect(
        api, 500, sort_by=sort_by, sort_order=sort_order, filter_by=["phase!=Unknown"]
    )
    values = [key(w) for w in ordered]
    assert values == sorted(values, reverse=sort_order == "desc")
    assert len({w["id"] for w in ordered}) == len(ordered)
    assert len(ordered) == sum(w["phase"] != "Unknown" for w in everything)


def test_search_finds_the_text_in_the_searched_fields(api, everything):
    term = everything[len(everything) // 3]["projectName"]
    found = {w["id"] for w in collect(api, search=term)}
    fields = ("name", "projectName", "departmentName", "type", "phase", "submittedBy")
    expected = {
        w["id"]
        for w in everything
        if any(term.lower() in str(w.get(f, "")).lower() for f in fields)
    }
    assert found == expected
    assert found
    assert api.count_workloads(search=term).data == {"count": len(expected)}


def test_get_returns_the_listed_workload_with_details(api, everything):
    for listed in everything[:: len(everything) // 7]:
        detailed = api.get_workload(listed["id"]).data
        for field in ("id", "name", "phase", "projectName", "createdAt", "type", "clusterId"):
            assert detailed[field] == listed[field]


def test_sdk_sees_errors_in_the_reference_shape(api):
    cases = [
        (lambda: api.get_workloads(filter_by=["nosuchfield==1"]), 400),
        (lambda: api.get_workloads(sort_by="bogus"), 400),
        (lambda: api.get_workloads(limit=100_000), 400),
        (lambda: api.get_workload("not-a-uuid"), 400),
        (lambda: api.get_workload("00000000-0000-4000-8000-000000000000"), 404),
    ]
    for call, status in cases:
        with pytest.raises(ApiException) as caught:
            call()
        assert caught.value.status == status
        body = json.loads(caught.value.body)
        assert body["code"] == status
        assert body["message"]


def test_thirty_clients_each_with_their_own_token(demo_server, everything):
    def one_client(_: int) -> tuple[str, int]:
        with sdk_client(demo_server.base_url, pool_maxsize=1) as client:
            count = client.workloads.workloads.count_workloads().data["count"]
            return client.api_client._token, count

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(one_client, range(30)))
    assert [count for _, count in results] == [len(everything)] * 30
    assert all(token_expiry(token) > time.time() for token, _ in results)


def test_short_lived_tokens_are_refreshed_by_the_sdk(start_server):
    # 61 s tokens and the SDK's 60 s margin: a token is due for refresh after a second.
    server = start_server(extra_env={"GPUFLEET_TOKEN_TTL_SECONDS": "61"})
    with sdk_client(server.base_url) as client:
        tokens = [client.api_client._token]
        assert token_expiry(tokens[0]) - time.time() <= 61
        for _ in range(3):
            time.sleep(1.2)
            assert client.workloads.workloads.count_workloads().data == {"count": 0}
            tokens.append(client.api_client._token)
    assert len(set(tokens)) == len(tokens), "every call after the margin used a new token"
    assert [token_expiry(t) for t in tokens] == sorted(token_expiry(t) for t in tokens)
