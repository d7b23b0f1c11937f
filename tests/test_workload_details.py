"""A workload's history, events and pods: shapes, ordering, paging, trust on ingest, scope."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from gpufleet.metrics.tasks import enforce_event_retention
from tests.support.access import key_with_role
from tests.support.agent_reports import CLUSTER_ID, T0, at, batch, ingest_path, report
from tests.support.reference import ReferenceValidators, load_reference, resolved

OTHER_CLUSTER = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
ADJACENT = "runai-adjacent-openapi.json"


def _post(client, *items, cluster_id=CLUSTER_ID):
    response = client.post(ingest_path(cluster_id), json=batch(*items))
    assert response.status_code == 200, response.text
    return response.json()


def event(workload_id, seconds, *, reason="Scheduled", uid=None, count=1, **overrides):
    """An ingest event of a pod of ``workload_id``, ``seconds`` after T0."""
    item = {
        "id": uid or str(uuid.uuid4()),
        "workloadId": workload_id,
        "createdAt": at(seconds),
        "type": "Normal",
        "reason": reason,
        "message": f"{reason} at {seconds}",
        "source": "default-scheduler",
        "count": count,
        "involvedObject": {
            "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, workload_id)),
            "kind": "Pod",
            "name": "job-0",
            "namespace": "runai-vision",
        },
    }
    item.update(overrides)
    return item


def _post_events(client, *events, cluster_id=CLUSTER_ID, headers=None):
    response = client.post(
        f"/api/v1/ingest/clusters/{cluster_id}/events",
        json={"events": list(events)},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    return response.json()


def _collect(client, path, key, **params):
    items, offset = [], 0
    while offset is not None:
        body = client.get(path, params={**params, "offset": offset}).json()
        items += body[key]
        offset = body.get("next")
    return items


def test_history_interleaves_phase_changes_and_events_newest_first(client):
    workload_id = str(uuid.uuid4())
    for seconds, phase in [(0, "Pending"), (20, "Running"), (40, "Completed")]:
        _post(client, report(workload_id, observed=seconds, phase=phase))
    _post_events(
        client,
        event(workload_id, 5, reason="FailedScheduling"),
        event(workload_id, 15, reason="Scheduled"),
        event(workload_id, 30, reason="Started"),
    )
    path = f"/api/v1/workloads/{workload_id}/history"
    first = client.get(path, params={"limit": 4}).json()
    assert first["next"] == 4
    records = first["records"] + client.get(path, params={"offset": 4}).json()["records"]
    described = [
        (r["meta"]["type"], r["meta"]["creationTimestamp"])
        + (
            (r["spec"]["phaseUpdate"]["phase"],)
            if "phaseUpdate" in r["spec"]
            else (r["spec"]["event"]["reason"],)
        )
        for r in records
    ]
    assert described == [
        ("PhaseUpdate", at(40), "Completed"),
        ("Event", at(30), "Started"),
        ("PhaseUpdate", at(20), "Running"),
        ("Event", at(15), "Scheduled"),
        ("Event", at(5), "FailedScheduling"),
        ("PhaseUpdate", at(0), "Pending"),
    ]
    assert records[-1]["spec"]["phaseUpdate"]["phaseMessage"] == ""


def test_events_are_sorted_paged_and_coalesced_by_their_latest_report(client):
    workload_id = str(uuid.uuid4())
    _post(client, report(workload_id, observed=0))
    repeated = str(uuid.uuid4())
    sent = [event(workload_id, s) for s in (1, 2, 3, 4)]
    result = _post_events(
        client, *sent, event(workload_id, 10, uid=repeated, count=3, reason="BackOff")
    )
    assert result == {"accepted": 5, "ignored": 0}
    # A newer report of the repeat moves it; an older one (a replay) changes nothing.
    newer = event(workload_id, 50, uid=repeated, count=7, reason="BackOff")
    assert _post_events(client, newer) == {"accepted": 1, "ignored": 0}
    assert _post_events(client, event(workload_id, 20, uid=repeated, count=5)) == {
        "accepted": 0,
        "ignored": 1,
    }
    path = f"/api/v1/workloads/{workload_id}/events"
    newest_first = _collect(client, path, "events", limit=2)
    assert [e["createdAt"] for e in newest_first] == [at(s) for s in (50, 4, 3, 2, 1)]
    assert newest_first[0]["id"] == repeated
    assert newest_first[0]["message"] == "BackOff at 50"
    oldest_first = _collect(client, path, "events", limit=3, sortOrder="asc")
    assert oldest_first == newest_first[::-1]
    assert newest_first[0]["clusterId"] == CLUSTER_ID
    assert newest_first[0]["involvedObject"]["kind"] == "Pod"
    assert client.get(path, params={"sortOrder": "sideways"}).status_code == 400


def test_an_agent_writes_events_only_under_its_own_clusters_workloads(client, anonymous_client):
    mine, theirs = str(uuid.uuid4()), str(uuid.uuid4())
    _post(client, report(mine))
    _post(client, report(theirs, cluster_id=OTHER_CLUSTER), cluster_id=OTHER_CLUSTER)
    agent = key_with_role(client, "cluster-agent", "cluster", CLUSTER_ID)
    shared_uid = str(uuid.uuid4())
    # The other cluster's event under its own workload.
    _post_events(client, event(theirs, 5, uid=shared_uid), cluster_id=OTHER_CLUSTER)
    result = _post_events(
        anonymous_client,
        event(mine, 1),
        event(theirs, 2),  # another cluster's workload
        event(str(uuid.uuid4()), 3),  # unknown workload
        event(mine, 9, uid=shared_uid),  # another cluster's event id
        headers=agent,
    )
    assert result == {"accepted": 1, "ignored": 3}
    refused = anonymous_client.post(
        f"/api/v1/ingest/clusters/{OTHER_CLUSTER}/events",
        json={"events": [event(theirs, 3)]},
        headers=agent,
    )
    assert refused.status_code == 403
    theirs_events = client.get(f"/api/v1/workloads/{theirs}/events").json()["events"]
    assert [(e["id"], e["createdAt"]) for e in theirs_events] == [(shared_uid, at(5))]
    assert len(client.get(f"/api/v1/workloads/{mine}/events").json()["events"]) == 1


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"id": "not-a-uuid"}, "id"),
        ({"createdAt": "2025-03-01T08:00:00"}, "createdAt"),
        ({"type": ""}, "type"),
        ({"count": 0}, "count"),
        ({"createdAt": "2999-01-01T00:00:00Z"}, "future"),
    ],
)
def test_malformed_events_are_refused_naming_the_field(client, change, named):
    workload_id = str(uuid.uuid4())
    response = client.post(
        f"/api/v1/ingest/clusters/{CLUSTER_ID}/events",
        json={"events": [event(workload_id, 1, **change)]},
    )
    assert response.status_code == 400
    assert named in response.json()["message"]


def test_retention_deletes_events_last_seen_before_it(client, engine):
    workload_id = str(uuid.uuid4())
    _post(client, report(workload_id))
    _post_events(client, event(workload_id, 0), event(workload_id, 3 * 86_400))
    deleted = enforce_event_retention(engine, 2, T0 + timedelta(days=4))
    assert deleted == 1
    left = client.get(f"/api/v1/workloads/{workload_id}/events").json()["events"]
    assert [e["createdAt"] for e in left] == [at(3 * 86_400)]


def _pod(name, *, phase="Running", node="node-a", **extra):
    return {
        "name": name,
        "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, name)),
        "phase": phase,
        "nodeName": node,
        **extra,
    }


def test_pods_no_longer_reported_are_soft_deleted_and_listed_when_asked(client):
    workload_id = str(uuid.uuid4())
    pods = [_pod("w-0", containers=[{"name": "main", "image": "pytorch:2"}]), _pod("w-1")]
    _post(client, report(workload_id, observed=10, phase="Running", pods=pods))
    _post(client, report(workload_id, observed=5, phase="Pending", pods=[_pod("stale")]))
    path = f"/api/v1/workloads/{workload_id}/pods"
    listed = client.get(path).json()["pods"]
    assert sorted((p["name"], p["nodeName"], p["k8sPhase"]) for p in listed) == [
        ("w-0", "node-a", "Running"),
        ("w-1", "node-a", "Running"),
    ]
    main = next(p for p in listed if p["name"] == "w-0")
    assert main["containers"] == [{"name": "main", "image": "pytorch:2", "startedAt": None}]
    assert (main["workloadId"], main["clusterId"], main["tenantId"]) == (workload_id, CLUSTER_ID, 1)
    _post(client, report(workload_id, observed=20, phase="Running", pods=[pods[1]]))
    assert [p["name"] for p in client.get(path).json()["pods"]] == ["w-1"]
    gone = client.get(path, params={"deleted": "true"}).json()["pods"]
    assert [(p["name"], p["deletedAt"]) for p in gone] == [("w-0", at(20))]


def test_pods_dropped_from_several_workloads_of_one_batch_go_at_each_ones_observation(client):
    first, second, steady = (str(uuid.uuid4()) for _ in range(3))
    pods = {w: [_pod(f"{w[:8]}-0"), _pod(f"{w[:8]}-1")] for w in (first, second, steady)}
    _post(client, *(report(w, observed=10, phase="Running", pods=pods[w]) for w in pods))
    _post(
        client,
        report(first, observed=30, phase="Running", pods=pods[first][1:]),
        report(second, observed=40, phase="Running", pods=[]),
        report(steady, observed=50, phase="Running", pods=pods[steady]),
    )
    gone = {}
    for w in pods:
        listed = client.get(f"/api/v1/workloads/{w}/pods", params={"deleted": "true"}).json()
        gone[w] = sorted((p["name"], p["deletedAt"]) for p in listed["pods"])
    assert gone == {
        first: [(f"{first[:8]}-0", at(30))],
        second: sorted([(f"{second[:8]}-0", at(40)), (f"{second[:8]}-1", at(40))]),
        steady: [],
    }


def test_a_pod_of_another_cluster_is_never_taken_over(client):
    theirs, mine = str(uuid.uuid4()), str(uuid.uuid4())
    pod = _pod("shared")
    _post(client, report(theirs, cluster_id=OTHER_CLUSTER, pods=[pod]), cluster_id=OTHER_CLUSTER)
    _post(client, report(mine, observed=10, pods=[{**pod, "nodeName": "mine"}]))
    assert client.get(f"/api/v1/workloads/{mine}/pods").json() == {"pods": []}
    kept = client.get(f"/api/v1/workloads/{theirs}/pods").json()["pods"]
    assert [(p["name"], p["nodeName"]) for p in kept] == [("shared", "node-a")]


def test_details_of_unknown_malformed_or_hidden_workloads(client, anonymous_client):
    unknown = str(uuid.uuid4())
    for suffix in ("history", "pods", "events"):
        missing = client.get(f"/api/v1/workloads/{unknown}/{suffix}")
        assert missing.status_code == 404
        assert set(missing.json()) >= {"code", "message"}
        malformed = client.get(f"/api/v1/workloads/not-a-uuid'--/{suffix}")
        assert malformed.status_code == 400
        assert "workloadId" in malformed.json()["message"]
    assert client.get(f"/api/v1/workloads/{unknown}/history?limit=many").status_code == 400
    mine = report(observed=0, phase="Running", projectId="10")
    theirs = report(observed=0, phase="Running", projectId="20", cluster_id=OTHER_CLUSTER)
    _post(client, mine)
    _post(client, theirs, cluster_id=OTHER_CLUSTER)
    viewer = key_with_role(client, "viewer", "project", "10")
    for suffix in ("history", "pods", "events"):
        visible = anonymous_client.get(f"/api/v1/workloads/{mine['id']}/{suffix}", headers=viewer)
        assert visible.status_code == 200, visible.text
        # Outside the scope looks exactly like an unknown workload.
        hidden = anonymous_client.get(f"/api/v1/workloads/{theirs['id']}/{suffix}", headers=viewer)
        assert hidden.status_code == 404
        assert anonymous_client.get(f"/api/v1/workloads/{mine['id']}/{suffix}").status_code == 401


def test_every_response_validates_against_the_reference(client):
    validators = ReferenceValidators(load_reference(ADJACENT))
    workload_id = str(uuid.uuid4())
    pods = [
        _pod(
            "v-0",
            ip="10.0.0.7",
            nodepool="default",
            createdAt=at(1),
            containers=[{"name": "main", "image": "img:1", "startedAt": at(2)}],
            requestedResources={"gpu": {"request": 1.0}, "cpuMemory": {"request": "2Gi"}},
            allocatedResources={"gpu": 1.0, "cpuMemory": "2Gi"},
            priorityClassName="train",
        ),
        _pod("v-1", phase="Succeeded", node=None),
    ]
    _post(client, report(workload_id, observed=0, phase="Pending", phaseMessage=None, pods=pods))
    _post(client, report(workload_id, observed=9, phase="Running", pods=pods[:1]))
    _post_events(client, event(workload_id, 3), event(workload_id, 4, type="Warning"))
    base = f"/api/v1/workloads/{workload_id}"
    answers = [
        ("/api/v1/workloads/{workloadId}/history", f"{base}/history", {}),
        ("/api/v1/workloads/{workloadId}/events", f"{base}/events", {"limit": 1}),
        ("/api/v1/workloads/{workloadId}/pods", f"{base}/pods", {}),
        ("/api/v1/workloads/{workloadId}/pods", f"{base}/pods", {"deleted": "true"}),
        ("/api/v1/workloads/pods", "/api/v1/workloads/pods", {"verbosity": "full"}),
        ("/api/v1/workloads/pods", "/api/v1/workloads/pods", {"limit": 1}),
        ("/api/v1/workloads/pods/count", "/api/v1/workloads/pods/count", {}),
    ]
    for reference_path, path, params in answers:
        response = client.get(path, params=params)
        assert response.status_code == 200, response.text
        validators.response(reference_path).validate(response.json())
    errors = validators.schema("Error")
    errors.validate(client.get("/api/v1/workloads/pods", params={"sortBy": "nope"}).json())


# The cluster-wide pods list against an independent evaluation


def _seed_pods(client):
    """Pods of workloads in two projects of one cluster and one of another cluster."""
    expected = []
    layouts = [
        (CLUSTER_ID, "10", ["node-a", "node-b", None]),
        (CLUSTER_ID, "11", ["node-b", "node-c"]),
        (OTHER_CLUSTER, "20", ["node-a", "node-z"]),
    ]
    for index, (cluster, project, nodes) in enumerate(layouts):
        workload_id = str(uuid.uuid4())
        pods = [
            _pod(
                f"p{index}-{n}",
                node=node,
                phase="Succeeded" if n == 1 else "Running",
                nodepool=["gpu", "cpu"][n % 2],
                createdAt=at(100 * n + index),
            )
            for n, node in enumerate(nodes)
        ]
        _post(
            client,
            report(workload_id, cluster_id=cluster, projectId=project, pods=pods),
            cluster_id=cluster,
        )
        expected += [
            {
                "name": pod["name"],
                "workloadId": workload_id,
                "clusterId": cluster,
                "projectId": project,
                "nodeName": pod["nodeName"],
                "currentNodePool": pod["nodepool"],
                "createdAt": pod["createdAt"],
                "completed": pod["phase"] == "Succeeded",
            }
            for pod in pods
        ]
    return expected


POD_FILTERS = [
    (["nodeName==node-b"], lambda p: p["nodeName"] == "node-b"),
    (["nodeName!=node-b"], lambda p: p["nodeName"] != "node-b"),
    (["nodeName=@node-"], lambda p: "node-" in (p["nodeName"] or "")),
    (
        ["currentNodepool==gpu", "nodeName=$a"],
        lambda p: p["currentNodePool"] == "gpu" and (p["nodeName"] or "").endswith("a"),
    ),
    ([f"clusterId=={OTHER_CLUSTER}"], lambda p: p["clusterId"] == OTHER_CLUSTER),
    ([f"createdAt>={at(100)}"], lambda p: p["createdAt"] >= at(100)),
]


def test_pods_list_filters_sorts_pages_and_scope_match_an_independent_evaluation(
    client, anonymous_client
):
    expected = _seed_pods(client)
    everything = _collect(client, "/api/v1/workloads/pods", "pods", limit=2)
    assert sorted(p["name"] for p in everything) == sorted(p["name"] for p in expected)
    assert client.get("/api/v1/workloads/pods/count").json() == {"count": len(expected)}
    for filter_by, keep in POD_FILTERS:
        wanted = sorted(p["name"] for p in expected if keep(p))
        found = _collect(client, "/api/v1/workloads/pods", "pods", limit=2, filterBy=filter_by)
        assert sorted(p["name"] for p in found) == wanted, filter_by
        count = client.get("/api/v1/workloads/pods/count", params={"filterBy": filter_by})
        assert count.json() == {"count": len(wanted)}, filter_by
    for completed in (True, False):
        found = _collect(client, "/api/v1/workloads/pods", "pods", completed=str(completed).lower())
        assert sorted(p["name"] for p in found) == sorted(
            p["name"] for p in expected if p["completed"] is completed
        )
    for sort_by, key in [
        ("nodeName", "nodeName"),
        ("createdAt", "createdAt"),
        ("currentNodepool", "currentNodePool"),
    ]:
        for order in ("asc", "desc"):
            found = _collect(
                client, "/api/v1/workloads/pods", "pods", limit=3, sortBy=sort_by, sortOrder=order
            )
            present = [p[key] for p in found if p[key] is not None]
            assert present == sorted(present, reverse=order == "desc"), (sort_by, order)
            # Unknown values sort as the largest.
            nulls = [p[key] is None for p in found]
            assert nulls == sorted(nulls, reverse=order == "desc"), (sort_by, order)
    full = client.get("/api/v1/workloads/pods", params={"verbosity": "full"}).json()["pods"]
    assert all(p["projectName"] == "vision" and p["workloadName"] for p in full)
    viewer = key_with_role(client, "viewer", "project", "10")
    seen = anonymous_client.get(
        "/api/v1/workloads/pods", params={"limit": 500}, headers=viewer
    ).json()["pods"]
    assert sorted(p["name"] for p in seen) == sorted(
        p["name"] for p in expected if p["projectId"] == "10"
    )
    counted = anonymous_client.get("/api/v1/workloads/pods/count", headers=viewer).json()
    assert counted == {"count": sum(p["projectId"] == "10" for p in expected)}


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"filterBy": "phase==Running"}, "filterBy"),
        ({"filterBy": "createdAt>=yesterday"}, "filterBy"),
        ({"sortBy": "name"}, "sortBy"),
        ({"verbosity": "loud"}, "verbosity"),
        ({"completed": "maybe"}, "completed"),
        ({"limit": 501}, "limit"),
    ],
)
def test_bad_pod_parameters_are_400_naming_them(client, params, named):
    response = client.get("/api/v1/workloads/pods", params=params)
    assert response.status_code == 400
    assert named in response.json()["message"]


def test_pods_created_at_keeps_the_first_sighting(client):
    workload_id = str(uuid.uuid4())
    _post(client, report(workload_id, observed=10, pods=[_pod("first")]))
    _post(client, report(workload_id, observed=30, pods=[_pod("first")]))
    pod = client.get(f"/api/v1/workloads/{workload_id}/pods").json()["pods"][0]
    assert pod["createdAt"] == at(10)
    assert pod["updatedAt"] == at(30)
    assert datetime.fromisoformat(pod["k8sPhaseUpdatedAt"]) <= datetime.now(UTC)


def test_a_pod_reported_under_two_workloads_of_one_batch_is_written_once(client):
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    pod = _pod("moving")
    _post(client, report(first, observed=5, pods=[pod]), report(second, observed=9, pods=[pod]))
    assert client.get(f"/api/v1/workloads/{first}/pods").json() == {"pods": []}
    moved = client.get(f"/api/v1/workloads/{second}/pods").json()["pods"]
    assert [p["name"] for p in moved] == ["moving"]


DETAIL_OPERATIONS = [
    "/api/v1/workloads/{workloadId}/history",
    "/api/v1/workloads/{workloadId}/events",
    "/api/v1/workloads/{workloadId}/pods",
    "/api/v1/workloads/pods",
    "/api/v1/workloads/pods/count",
    "/api/v1/workloads/{workloadId}/pods/{podId}/metrics",
]


def _parameters(document: dict, path: str) -> dict[str, dict]:
    operation = document["paths"][path]["get"]
    parameters = (resolved(document, p) for p in operation.get("parameters", []))
    return {p["name"]: {**p, "schema": resolved(document, p.get("schema", {}))} for p in parameters}


def _enum(schema: dict, document: dict) -> list | None:
    if "enum" in schema:
        return schema["enum"]
    for option in schema.get("anyOf", []) + schema.get("allOf", []):
        found = _parameters_enum(option, document)
        if found is not None:
            return found
    items = schema.get("items")
    return _parameters_enum(items, document) if items else None


def _parameters_enum(node: dict, document: dict) -> list | None:
    while "$ref" in node:
        target = document
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return _enum(node, document)


@pytest.mark.parametrize("path", DETAIL_OPERATIONS)
def test_parameters_and_operation_ids_match_the_reference(client, path):
    reference = load_reference(ADJACENT)
    served = client.get("/openapi.json").json()
    ours, theirs = _parameters(served, path), _parameters(reference, path)
    assert set(theirs) <= set(ours), path
    for name, parameter in theirs.items():
        expected = _enum(parameter["schema"], reference)
        if expected is not None and name != "filterBy":
            assert _enum(ours[name]["schema"], served) == expected, (path, name)
    operation = served["paths"][path]["get"]
    assert operation["operationId"] == reference["paths"][path]["get"]["operationId"]
    assert set(reference["paths"][path]["get"]["responses"]) - {"207"} <= set(
        operation["responses"]
    ) | {"404"}
