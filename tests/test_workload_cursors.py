"""The ``cursor`` extension of ``GET /api/v1/workloads``: keyset pages through the sort's index.

Walking by cursor yields what walking by offset yields, rows added meanwhile neither repeat nor
skip a row, and a cursor is refused for other parameters than it was issued for.
"""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import pytest

from tests.support.factories import BASE_TIME, insert, workload

HEADER = "Gpufleet-Next-Cursor"
COMPUTED = ("totalRunningTimeSeconds", "totalPendingTimeSeconds")
WORKLOADS = "/api/v1/workloads"


@pytest.fixture
def stored(engine) -> list[dict[str, Any]]:
    rng = random.Random(7)
    items = [
        workload(
            createdAt=BASE_TIME + timedelta(minutes=rng.randrange(40)),
            phase=rng.choice(["Running", "Pending", "Completed"]),
            gpus=float(rng.randrange(3)),
            priority=rng.choice([None, 50, 100]),
            completedAt=rng.choice([None, BASE_TIME + timedelta(hours=rng.randrange(5))]),
            submittedBy=rng.choice([None, "alice", "bob"]),
        )
        for _ in range(37)
    ]
    return insert(engine, items)


def _walk(client, params: dict[str, Any], by_cursor: bool) -> list[str]:
    ids, cursor, offset = [], None, 0
    for _ in range(100):
        query = {**params, "limit": 5}
        if by_cursor and cursor:
            query["cursor"] = cursor
        elif not by_cursor:
            query["offset"] = offset
        response = client.get(WORKLOADS, params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        ids += [item["id"] for item in body["workloads"]]
        cursor = response.headers.get(HEADER)
        if "cursor" in query and params.get("sortBy") not in COMPUTED:
            # Keyset pages know no offset: the reference's "next" is left out.
            assert "next" not in body
        if cursor is None:
            assert "next" not in body
            return ids
        offset += 5
    raise AssertionError("the walk did not end")


SORTS = [
    {},
    {"sortBy": "createdAt", "sortOrder": "desc"},
    {"sortBy": "allocatedGPU", "sortOrder": "desc", "filterBy": "phase!=Pending"},
    {"sortBy": "priority"},
    {"sortBy": "priority", "sortOrder": "desc"},
    {"sortBy": "completedAt"},
    {"sortBy": "completedAt", "sortOrder": "desc"},
    {"sortBy": "submittedBy", "filterBy": "phase==Running"},
    {"sortBy": "name", "sortOrder": "desc"},
    # Computed per request: the cursor carries an offset.
    {"sortBy": "totalRunningTimeSeconds", "sortOrder": "desc"},
]


@pytest.mark.parametrize("params", SORTS, ids=lambda p: ",".join(map(str, p.values())) or "default")
def test_walking_by_cursor_yields_what_walking_by_offset_yields(client, stored, params):
    by_offset = _walk(client, params, by_cursor=False)
    assert _walk(client, params, by_cursor=True) == by_offset
    assert len(set(by_offset)) == len(by_offset) > 5


def test_rows_added_before_the_cursor_neither_repeat_nor_skip_a_row(client, engine, stored):
    params = {"sortBy": "createdAt", "limit": 10}
    first = client.get(WORKLOADS, params=params)
    seen = [item["id"] for item in first.json()["workloads"]]
    # Ten new workloads sort before everything listed so far: an offset would repeat rows.
    insert(engine, [workload(createdAt=BASE_TIME - timedelta(days=1)) for _ in range(10)])
    cursor = first.headers[HEADER]
    while cursor:
        response = client.get(WORKLOADS, params={**params, "cursor": cursor})
        seen += [item["id"] for item in response.json()["workloads"]]
        cursor = response.headers.get(HEADER)
    assert sorted(seen) == sorted(item["id"] for item in stored)


@pytest.mark.parametrize(
    "changed",
    [
        {"filterBy": "phase==Running"},
        {"sortOrder": "desc"},
        {"sortBy": "name"},
        {"deleted": "true"},
        {"search": "x"},
    ],
)
def test_a_cursor_is_refused_for_other_parameters(client, stored, changed):
    cursor = client.get(WORKLOADS, params={"limit": 5}).headers[HEADER]
    response = client.get(WORKLOADS, params={"limit": 5, "cursor": cursor, **changed})
    assert response.status_code == 400
    assert "cursor" in response.json()["message"]


@pytest.mark.parametrize("cursor", ["", "not-base64!", "bnVsbA", "eyJ2IjoxfQ", "A" * 3000])
def test_a_cursor_the_server_did_not_issue_is_a_400(client, stored, cursor):
    response = client.get(WORKLOADS, params={"cursor": cursor})
    assert response.status_code == 400
    assert "cursor" in response.json()["message"]


def test_a_cursor_and_an_offset_together_are_a_400(client, stored):
    cursor = client.get(WORKLOADS, params={"limit": 5}).headers[HEADER]
    response = client.get(WORKLOADS, params={"limit": 5, "cursor": cursor, "offset": 5})
    assert response.status_code == 400
    assert "offset" in response.json()["message"]


def test_the_last_page_has_no_cursor(client, stored):
    response = client.get(WORKLOADS, params={"limit": 500})
    assert HEADER not in response.headers
