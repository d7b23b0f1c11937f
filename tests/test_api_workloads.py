"""The workloads API through the app: every parameter, filter semantics, sorting, paging.

Expected results are computed independently in Python from the documents the test inserted,
never read back from the server under test. The request's "now" is pinned so the
time-dependent totals are exact.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gpufleet.api.deps import get_now
from gpufleet.query.fields import WORKLOAD_FIELDS
from gpufleet.schemas.workloads import Workload, WorkloadDetailed
from gpufleet.store.workload_documents import SecondsBefore
from tests.support import factories
from tests.support.factories import workload
from tests.support.shared_app import admin_client, shared_app

NOW = datetime(2024, 6, 1, 0, 0, 0, tzinfo=UTC)
URL = "/api/v1/workloads"
NULLABLE_TEXT = ("submittedBy", "distributedFramework", "aiApplicationId", "aiApplicationName")


@pytest.fixture
def fixed_now(app):
    app.dependency_overrides[get_now] = lambda: NOW
    yield NOW
    app.dependency_overrides.pop(get_now, None)


def _dataset(
    seed: int = 2, count: int = 40
) -> tuple[list[dict[str, Any]], dict[str, SecondsBefore]]:
    """Workloads with ties, NULLs, mixed case, unicode and wildcard characters in text, and
    the seconds each spent pending and running before its current phase."""
    rng = random.Random(seed)
    names = ["alpha", "Alpha", "beta", "b_eta", "50%_x", "500x", "日本語", "zeta", "Ωmega", "x\\y"]
    items, before = [], {}
    for i in range(count):
        phase = rng.choice(["Running", "Pending", "Completed", "Failed", "Stopped"])
        created = NOW - timedelta(days=rng.randint(1, 20), milliseconds=rng.randint(0, 3) * 250)
        phase_updated = created + timedelta(seconds=rng.choice([10, 10, 500, 3600]))
        pools = rng.choice([[], ["default"], ["pool-a", "pool-b"], ["pool-b"], ["Default"]])
        maybe = rng.random
        items.append(
            workload(
                name=f"{rng.choice(names)}-{i % 5}",
                type=rng.choice(["Training", "Workspace", "Inference"]),
                category=rng.choice(["Train", "Build", "Deploy"]),
                projectId=rng.choice(["1", "10", "2"]),
                projectName=rng.choice(["vision", "Vision", "nlp"]),
                departmentId=rng.choice(["1", "2"]),
                departmentName=rng.choice(["research", "prod"]),
                clusterId=rng.choice([factories.CLUSTER_ID, str(uuid.UUID(int=7))]),
                submittedBy=None if maybe() < 0.3 else rng.choice(["alice", "bob", "Carol"]),
                phase=phase,
                createdAt=created,
                phaseUpdatedAt=phase_updated,
                completedAt=None if maybe() < 0.5 else phase_updated,
                currentNodePools=pools,
                distributedFramework=None if maybe() < 0.5 else rng.choice(["PyTorch", "MPI"]),
                gpus=rng.choice([0.0, 0.5, 1.0, 2.0, 8.0]),
                idleGpus=None if maybe() < 0.3 else rng.randint(0, 3),
                idleAllocatedGpus=None if maybe() < 0.3 else rng.choice([0.0, 0.5, 1.5]),
                priority=None if maybe() < 0.2 else rng.choice([0, 50, 100]),
                priorityClassName=rng.choice(["train", "build", "inference"]),
                guaranteedRuntimeEndsAt=None if maybe() < 0.6 else created + timedelta(hours=2),
                aiApplicationId=None if maybe() < 0.6 else rng.choice(["app-1", "app-2"]),
                aiApplicationName=None if maybe() < 0.6 else rng.choice(["chat", "Chat"]),
                deletedAt=None if maybe() < 0.8 else created + timedelta(days=1),
            )
        )
        pending, running = rng.choice([0, 5, 120]), rng.choice([0, 60, 7200])
        before[items[-1]["id"]] = SecondsBefore(pending, running)
    # A known completion time, so that completedAt!= has something to exclude.
    items[0].update(completedAt=datetime(2024, 5, 20, tzinfo=UTC), deletedAt=None)
    return items, before


# By workload id, the seconds spent pending and running before the current phase.
History = Mapping[str, SecondsBefore]
EMPTY: History = {}


def expected_value(item: dict[str, Any], field: str, history: History) -> Any:
    """The value a filter or sort on ``field`` should see, computed from the inserted document."""
    if field == "nodepool":
        return (item["currentNodePools"] or [None])[0]
    if field == "allocatedGPU":
        return item["allocatedResources"]["gpu"]
    if field in ("totalPendingTimeSeconds", "totalRunningTimeSeconds"):
        pending = field == "totalPendingTimeSeconds"
        before = history.get(item["id"], SecondsBefore())
        total = before.pending if pending else before.running
        if item["phase"] == ("Pending" if pending else "Running"):
            # Whole seconds of the clock, from the phase's second to now's.
            stretch = int(NOW.timestamp()) - int(item["phaseUpdatedAt"].timestamp())
            total += max(0, stretch)
        return total
    return item.get(field)


def sorted_ids(
    items: list[dict[str, Any]], field: str, descending: bool, history: History = EMPTY
) -> list[str]:
    """The documented order: NULL sorts as the largest value, the id breaks ties."""

    def key(item):
        value = expected_value(item, field, history)
        return (value is None, value if value is not None else 0, item["id"])

    ordered = [item["id"] for item in sorted(items, key=key)]
    return ordered[::-1] if descending else ordered


@pytest.fixture(scope="module")
def shared(request, tmp_path_factory):
    """One database holding the dataset for the read-only tests of this module."""
    with shared_app(request, tmp_path_factory) as app:
        app.dependency_overrides[get_now] = lambda: NOW
        items, history = _dataset()
        factories.insert(app.state.gpufleet.engine, items, history)
        with admin_client(app) as client:
            yield client, items, history


@pytest.fixture
def reader(shared):
    return shared[0]


@pytest.fixture
def dataset(shared) -> list[dict[str, Any]]:
    return shared[1]


@pytest.fixture
def history(shared) -> History:
    return shared[2]


def _live(items):
    return [i for i in items if i["deletedAt"] is None]


def _list(client, **params) -> dict[str, Any]:
    response = client.get(URL, params={"limit": 500, **params})
    assert response.status_code == 200, response.text
    return response.json()


def _ids(client, **params) -> list[str]:
    return [w["id"] for w in _list(client, **params)["workloads"]]


def _count(client, **params) -> int:
    response = client.get(f"{URL}/count", params=params)
    assert response.status_code == 200, response.text
    return response.json()["count"]


def test_default_list_is_live_workloads_by_creation_time(reader, dataset):
    body = _list(reader)
    assert set(body) == {"workloads"}
    assert [w["id"] for w in body["workloads"]] == sorted_ids(_live(dataset), "createdAt", False)
    for item in body["workloads"]:
        Workload.model_validate(item)
        assert item["deletedAt"] is None


@pytest.mark.parametrize("field", list(WORKLOAD_FIELDS))
@pytest.mark.parametrize("order", ["asc", "desc"])
def test_sorting_on_every_field(reader, dataset, history, field, order):
    deleted = field == "deletedAt"
    items = [i for i in dataset if (i["deletedAt"] is not None) == deleted]
    params = {"sortBy": field, "sortOrder": order, "deleted": str(deleted).lower()}
    assert _ids(reader, **params) == sorted_ids(items, field, order == "desc", history)


def test_sort_order_defaults_to_ascending(reader, dataset):
    assert _ids(reader, sortBy="name") == sorted_ids(_live(dataset), "name", False)


FILTER_CASES = [
    "name==alpha-0",
    "name!=alpha-0",
    "name=@lpha",
    "name=@ALPHA",
    "name!@a",
    "name=^Alpha",
    "name=$-3",
    "name=@50%_x",
    "name=^b_",
    "name=@x\\y",
    "name=^日本",
    "projectName==Vision",
    "projectName!=vision",
    "submittedBy==alice",
    "submittedBy!=alice",
    "submittedBy!@o",
    "submittedBy=@o",
    "distributedFramework!=PyTorch",
    "aiApplicationName=$hat",
    "type==Workspace",
    "category!=Train",
    "phase==Running",
    "phase!=Running",
    "phase=@ing",
    "clusterId==00000000-0000-0000-0000-000000000007",
    "projectId>=10",
    "departmentId<=1",
    "priorityClassName=^tr",
    "allocatedGPU>=1",
    "allocatedGPU<=0.5",
    "allocatedGPU==0.5",
    "allocatedGPU!=0",
    "idleGpus==0",
    "idleGpus!=0",
    "idleGpus>=1",
    "idleAllocatedGpus>=0.5",
    "idleAllocatedGpus!=1.5",
    "priority<=50",
    "priority>=49.5",
    "priority!=100",
    "priority>=99999999999999999999",
    "totalPendingTimeSeconds>=100",
    "totalRunningTimeSeconds<=60",
    "totalRunningTimeSeconds!=0",
    "createdAt>=2024-05-20T00:00:00Z",
    "createdAt<=2024-05-20T02:00:00+02:00",
    "createdAt<=2024-05-20",
    "completedAt!=2024-05-20T00:00:00Z",
    "completedAt>=2024-05-01T00:00:00",
    "phaseUpdatedAt<=2024-05-25T00:00:00Z",
    "guaranteedRuntimeEndsAt>=2024-05-15T00:00:00Z",
    "aiApplicationId==app-1",
    "nodepool==pool-b",
    "nodepool==pool-a",
    "nodepool!=pool-b",
    "nodepool=@pool",
    "nodepool!@pool",
    "nodepool=^Def",
    "nodepool>=pool-b",
]


# Cases that check that nothing matches (case sensitivity, out-of-range bounds).
CASES_WITHOUT_HITS = {"name=@ALPHA", "priority>=99999999999999999999"}


def _text_match(value: str | None, operator: str, wanted: str) -> bool:
    if value is None:
        return operator in ("!=", "!@")
    return {
        "==": value == wanted,
        "!=": value != wanted,
        "<=": value <= wanted,
        ">=": value >= wanted,
        "=@": wanted in value,
        "!@": wanted not in value,
        "=^": value.startswith(wanted),
        "=$": value.endswith(wanted),
    }[operator]


def _ordered_match(value: Any, operator: str, wanted: Any) -> bool:
    if value is None:
        return operator == "!="
    return {
        "==": value == wanted,
        "!=": value != wanted,
        "<=": value <= wanted,
        ">=": value >= wanted,
    }[operator]


def predicate(term: str, history: History) -> Callable[[dict[str, Any]], bool]:
    """An independent reading of one filter term, following docs/filtering.md."""
    for operator in ("==", "!=", "<=", ">=", "=@", "!@", "=^", "=$"):
        name, found, text = term.partition(operator)
        if found and name.isidentifier():
            break
    kind = WORKLOAD_FIELDS[name].kind.value
    if name == "nodepool":
        positive = {"!=": "==", "!@": "=@"}.get(operator, operator)

        def any_pool(item):
            hit = any(_text_match(p, positive, text) for p in item["currentNodePools"])
            return not hit if positive != operator else hit

        return any_pool
    if kind == "text":
        return lambda item: _text_match(expected_value(item, name, history), operator, text)
    if kind == "date":
        wanted = datetime.fromisoformat(text.replace("Z", "+00:00"))
        wanted = wanted if wanted.tzinfo else wanted.replace(tzinfo=UTC)
        return lambda item: _ordered_match(expected_value(item, name, history), operator, wanted)
    return lambda item: _ordered_match(expected_value(item, name, history), operator, float(text))


@pytest.mark.parametrize("term", FILTER_CASES)
def test_filters_match_an_independent_evaluation(reader, dataset, history, term):
    live = _live(dataset)
    expected = [i for i in live if predicate(term, history)(i)]
    got = _ids(reader, filterBy=term)
    assert got == sorted_ids(expected, "createdAt", False)
    assert _count(reader, filterBy=term) == len(expected)


def test_the_dataset_makes_the_filter_cases_meaningful(dataset, history):
    # Guard against a dataset in which the cases above cannot tell right from wrong.
    live = _live(dataset)
    for term in FILTER_CASES:
        hits = sum(predicate(term, history)(i) for i in live)
        assert 0 < hits < len(live) or term in CASES_WITHOUT_HITS, term


def test_wildcards_are_literal(client, engine, fixed_now):
    items = factories.insert(
        engine,
        [workload(name=n) for n in ("50%_x", "50abx", "500x", "a_b", "axb", "c\\d", "cd")],
    )
    by_name = {i["name"]: i["id"] for i in items}
    assert _ids(client, filterBy="name=@50%_x") == [by_name["50%_x"]]
    assert _ids(client, filterBy="name=^a_") == [by_name["a_b"]]
    assert _ids(client, filterBy="name=$\\d") == [by_name["c\\d"]]
    assert _ids(client, filterBy="name=@%") == [by_name["50%_x"]]
    assert _count(client, filterBy="name!@_") == 5


def test_text_comparisons_are_case_sensitive_and_search_is_not(client, engine, fixed_now):
    upper, lower = factories.insert(
        engine, [workload(name="Résumé-Job"), workload(name="résumé-job")]
    )
    assert _ids(client, filterBy="name==Résumé-Job") == [upper["id"]]
    assert _ids(client, filterBy="name=@RÉSUMÉ") == []
    assert _ids(client, filterBy="name=^r") == [lower["id"]]
    assert set(_ids(client, search="RÉSUMÉ")) == {upper["id"], lower["id"]}


def test_several_terms_are_anded_whether_comma_joined_or_repeated(reader, dataset):
    live = _live(dataset)
    expected = sorted_ids(
        [i for i in live if i["phase"] == "Running" and i["allocatedResources"]["gpu"] >= 1],
        "createdAt",
        False,
    )
    assert _ids(reader, filterBy="phase==Running,allocatedGPU>=1") == expected
    response = reader.get(
        URL, params=[("filterBy", "phase==Running"), ("filterBy", "allocatedGPU>=1")]
    )
    assert [w["id"] for w in response.json()["workloads"]] == expected
    assert _count(reader, filterBy="phase==Running,allocatedGPU>=1") == len(expected)


def test_a_value_may_contain_commas(client, engine, fixed_now):
    (item,) = factories.insert(engine, [workload(name="a,b,c")])
    factories.insert(engine, [workload(name="a")])
    assert _ids(client, filterBy="name==a,b,c") == [item["id"]]


def test_date_equality_round_trips_at_millisecond_precision(client, engine, fixed_now):
    created = datetime(2024, 5, 3, 4, 5, 6, 789000, tzinfo=UTC)
    target, _neighbour = factories.insert(
        engine,
        [
            workload(createdAt=created),
            workload(createdAt=created + timedelta(milliseconds=1)),
        ],
    )
    listed = next(w for w in _list(client)["workloads"] if w["id"] == target["id"])
    assert listed["createdAt"] == "2024-05-03T04:05:06.789Z"
    assert _ids(client, filterBy=f"createdAt=={listed['createdAt']}") == [target["id"]]
    assert _ids(client, filterBy="createdAt==2024-05-03T06:05:06.789+02:00") == [target["id"]]
    assert _ids(client, filterBy="createdAt==2024-05-03T04:05:06.789") == [target["id"]]
    assert _count(client, filterBy="createdAt!=2024-05-03T04:05:06.789Z") == 1


def test_sub_millisecond_input_is_stored_truncated(client, engine, fixed_now):
    (item,) = factories.insert(
        engine, [workload(createdAt=datetime(2024, 5, 3, 4, 5, 6, 789999, tzinfo=UTC))]
    )
    assert client.get(f"{URL}/{item['id']}").json()["createdAt"] == "2024-05-03T04:05:06.789Z"


def test_time_dependent_totals_use_the_request_time(client, engine, fixed_now):
    updated = NOW - timedelta(seconds=100)
    pending, running, finished = (
        workload(phase=phase, phaseUpdatedAt=updated)
        for phase in ("Pending", "Running", "Completed")
    )
    history = {
        pending["id"]: SecondsBefore(pending=20),
        running["id"]: SecondsBefore(pending=110, running=5),
        finished["id"]: SecondsBefore(pending=119, running=3000),
    }
    factories.insert(engine, [pending, running, finished], history)
    detail = client.get(f"{URL}/{pending['id']}").json()
    assert (detail["totalPendingTimeSeconds"], detail["totalRunningTimeSeconds"]) == (120, 0)
    listed = {w["id"]: w for w in _list(client)["workloads"]}
    assert listed[running["id"]]["totalRunningTimeSeconds"] == 105
    assert listed[running["id"]]["totalPendingTimeSeconds"] == 110
    assert listed[finished["id"]]["totalPendingTimeSeconds"] == 119
    assert _ids(client, filterBy="totalPendingTimeSeconds==120") == [pending["id"]]
    assert _ids(client, filterBy="totalPendingTimeSeconds>=120") == [pending["id"]]
    assert _ids(client, filterBy="totalRunningTimeSeconds<=105") == [pending["id"], running["id"]]
    assert _ids(client, sortBy="totalPendingTimeSeconds", sortOrder="desc") == [
        pending["id"],
        finished["id"],
        running["id"],
    ]


def test_totals_follow_the_clock(client, engine, app, fixed_now):
    (item,) = factories.insert(
        engine, [workload(phase="Running", phaseUpdatedAt=NOW - timedelta(seconds=10))]
    )
    # One statement serves every get (built once): each request binds its own time.
    assert client.get(f"{URL}/{item['id']}").json()["totalRunningTimeSeconds"] == 10
    app.dependency_overrides[get_now] = lambda: NOW + timedelta(seconds=50)
    assert client.get(f"{URL}/{item['id']}").json()["totalRunningTimeSeconds"] == 60
    assert _count(client, filterBy="totalRunningTimeSeconds==60") == 1
    app.dependency_overrides[get_now] = lambda: NOW - timedelta(seconds=30)
    assert client.get(f"{URL}/{item['id']}").json()["totalRunningTimeSeconds"] == 0


def test_a_count_built_once_counts_the_rows_of_each_request(client, engine, app, fixed_now):
    """A count without a bound on a total reuses its statement; never its answer."""
    params = {"filterBy": "phase==Running", "search": "count-reuse"}
    assert _count(client, **params) == 0
    factories.insert(engine, [workload(phase="Running", name="count-reuse-1")])
    assert _count(client, **params) == 1
    app.dependency_overrides[get_now] = lambda: NOW + timedelta(days=1)
    factories.insert(engine, [workload(phase="Running", name="count-reuse-2")])
    assert _count(client, **params) == 2
    assert _count(client, filterBy="phase==Pending", search="count-reuse") == 0


PAGING_CASES = [
    {},
    {"sortBy": "name"},
    {"sortBy": "priority", "sortOrder": "desc"},
    {"sortBy": "nodepool"},
    {"sortBy": "submittedBy", "sortOrder": "desc", "filterBy": "allocatedGPU>=0.5"},
    {"sortBy": "totalPendingTimeSeconds", "search": "a"},
    {"sortBy": "phase", "filterBy": "nodepool!=pool-b"},
    {"deleted": "true", "sortBy": "deletedAt"},
]


@pytest.mark.parametrize("params", PAGING_CASES)
@pytest.mark.parametrize("limit", [3, 10])
def test_paging_walks_every_workload_exactly_once(reader, dataset, params, limit):
    full = _ids(reader, **params)
    assert full, "the case should select something"
    walked: list[str] = []
    offset = 0
    while True:
        body = _list(reader, **params, offset=offset, limit=limit)
        walked.extend(w["id"] for w in body["workloads"])
        if "next" not in body:
            break
        assert body["next"] == offset + limit
        assert len(body["workloads"]) == limit
        offset = body["next"]
    assert walked == full
    assert len(set(walked)) == len(walked)
    count_params = {k: v for k, v in params.items() if k not in ("sortBy", "sortOrder")}
    assert _count(reader, **count_params) == len(full)


def test_next_is_absent_when_the_last_page_is_exactly_full(client, engine, fixed_now):
    factories.insert(engine, [workload() for _ in range(4)])
    assert _list(client, limit=2)["next"] == 2
    assert "next" not in _list(client, limit=2, offset=2)
    assert _list(client, limit=2, offset=4) == {"workloads": []}
    assert _list(client, offset=1000) == {"workloads": []}


def test_default_limit_is_50(client, engine, fixed_now):
    factories.insert(engine, [workload() for _ in range(51)])
    body = client.get(URL).json()
    assert (len(body["workloads"]), body["next"]) == (50, 50)


def test_deleted_semantics(reader, dataset):
    live = _live(dataset)
    deleted = [i for i in dataset if i["deletedAt"] is not None]
    assert deleted
    assert set(_ids(reader)) == {i["id"] for i in live}
    assert set(_ids(reader, deleted="false")) == {i["id"] for i in live}
    assert set(_ids(reader, deleted="true")) == {i["id"] for i in deleted}
    assert _count(reader) == len(live)
    assert _count(reader, deleted="true") == len(deleted)
    assert _count(reader, deleted="false") == len(live)
    detail = reader.get(f"{URL}/{deleted[0]['id']}").json()
    assert detail["deletedAt"] is not None


@pytest.mark.parametrize(
    ("search", "fields"),
    [
        ("ALPHA", ("name",)),
        ("Vis", ("projectName",)),
        ("RESEARCH", ("departmentName",)),
        ("workspace", ("type",)),
        ("pend", ("phase",)),
        ("carol", ("submittedBy",)),
        ("a", ("name", "projectName", "departmentName", "type", "phase", "submittedBy")),
        ("runai-vision", ()),
        ("pool-a", ()),
    ],
)
def test_search(reader, dataset, search, fields):
    live = _live(dataset)
    expected = {
        i["id"] for i in live if any(search.lower() in (i.get(f) or "").lower() for f in fields)
    }
    assert set(_ids(reader, search=search)) == expected
    assert _count(reader, search=search) == len(expected)


def test_search_and_filters_combine(reader, dataset):
    live = _live(dataset)
    expected = {
        i["id"] for i in live if "vis" in i["projectName"].lower() and i["phase"] == "Failed"
    }
    assert set(_ids(reader, search="vis", filterBy="phase==Failed")) == expected


def test_get_returns_the_detailed_document(client, engine, fixed_now):
    messages = [
        {
            "nodePool": "default",
            "phaseReason": "OverLimit",
            "reason": "Not enough GPUs",
            "orgType": "PROJECT",
        }
    ]
    (item,) = factories.insert(
        engine, [workload(phase="Pending", pendingSchedulingMessages=messages, namespace="ns-1")]
    )
    response = client.get(f"{URL}/{item['id']}")
    assert response.status_code == 200
    body = response.json()
    WorkloadDetailed.model_validate(body)
    assert body["id"] == item["id"]
    assert body["namespace"] == "ns-1"
    assert body["pendingSchedulingMessages"][0]["reason"] == "Not enough GPUs"
    assert body["currentNodePools"] == ["default"]
    listed = _list(client)["workloads"][0]
    assert "pendingSchedulingMessages" not in listed
    assert client.get(f"{URL}/{item['id'].upper()}").json()["id"] == item["id"]


def test_get_unknown_and_malformed_ids(reader):
    unknown = str(uuid.uuid4())
    response = reader.get(f"{URL}/{unknown}")
    assert response.status_code == 404
    assert response.json()["code"] == 404
    assert unknown in response.json()["message"]
    for bad in ("not-a-uuid", "1234", "' OR 1=1 --", "%00", "ü" * 40):
        response = reader.get(f"{URL}/{bad}")
        assert response.status_code == 400, bad
        assert response.json()["code"] == 400
        assert "workloadId" in response.json()["message"]


BAD_PARAMETERS = [
    ("limit", "0"),
    ("limit", "501"),
    ("limit", "-1"),
    ("limit", "ten"),
    ("limit", "1.5"),
    ("limit", "99999999999999999999999999"),
    ("offset", "-1"),
    ("offset", "x"),
    ("offset", "99999999999999999999999999"),
    ("sortBy", "bogus"),
    ("sortBy", "createdat"),
    ("sortBy", "id"),
    ("sortOrder", "ASC"),
    ("sortOrder", "up"),
    ("deleted", "maybe"),
    ("filterBy", "bogus==1"),
    ("filterBy", "allocatedGPU=@1"),
    ("filterBy", "createdAt>=soon"),
    ("filterBy", "name"),
    ("search", "x" * 300),
    ("search", "a\x00b"),
]


@pytest.mark.parametrize(("name", "value"), BAD_PARAMETERS)
def test_bad_parameters_are_400_naming_the_parameter(reader, name, value):
    response = reader.get(URL, params={name: value})
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == 400
    assert set(body) <= {"code", "message", "details"}
    assert f"'{name}'" in body["message"]
    if name in ("filterBy", "search", "deleted"):
        count = reader.get(f"{URL}/count", params={name: value})
        assert count.status_code == 400
        assert f"'{name}'" in count.json()["message"]


def test_ugly_but_valid_values_are_answered(client, engine, fixed_now):
    factories.insert(engine, [workload(name='o\'brien "quoted"; DROP TABLE x;')])
    for term in (
        'name==o\'brien "quoted"; DROP TABLE x;',
        "name=@'; DROP TABLE workloads; --",
        "name=@\\",
        "projectName=@🚀",
        "name==" + "x" * 1000,
        "priority<=-99999999999999999999",
    ):
        response = client.get(URL, params={"filterBy": term})
        assert response.status_code == 200, (term, response.text)
    assert _count(client, filterBy="name=@'brien \"q") == 1
    assert _count(client, search="DROP TABLE") == 1
    assert _count(client) == 1
