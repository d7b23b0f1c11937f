"""``GET /api/v1/events`` and ``/count``: the events of every workload, newest first, filtered,
paged and counted, each naming its workload and project; bad parameters are 400s naming them,
and a caller sees exactly the events of the workloads it may read."""

from __future__ import annotations

import uuid

import pytest

from tests.support.access import key_with_role
from tests.support.agent_reports import CLUSTER_ID, at, batch, in_project, ingest_path, report
from tests.test_workload_details import OTHER_CLUSTER, event

EVENTS = "/api/v1/events"
COUNT = "/api/v1/events/count"


def _post(client, *items, cluster_id=CLUSTER_ID):
    response = client.post(ingest_path(cluster_id), json=batch(*items))
    assert response.status_code == 200, response.text


def _post_events(client, *events, cluster_id=CLUSTER_ID):
    response = client.post(
        f"/api/v1/ingest/clusters/{cluster_id}/events", json={"events": list(events)}
    )
    assert response.status_code == 200, response.text
    assert response.json()["ignored"] == 0, response.text


def _listed(client, headers=None, **params) -> list[dict]:
    """Every event the list gives for ``params``, page by page."""
    items, offset = [], 0
    while offset is not None:
        answer = client.get(EVENTS, params={**params, "offset": offset}, headers=headers)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        items += body["events"]
        offset = body.get("next")
    return items


def _counted(client, headers=None, **params) -> int:
    answer = client.get(COUNT, params=params, headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()["count"]


@pytest.fixture
def fleet(client) -> dict[str, dict]:
    """Three workloads, two projects of one cluster and one of another, with events between
    10 and 80 seconds after T0: warnings among them, and two at one time."""
    vision = report(**in_project("10", "vision"), name="train-vision")
    audio = report(**in_project("11", "audio"), name="train-audio")
    remote = report(cluster_id=OTHER_CLUSTER, name="remote-job")
    _post(client, vision, audio)
    _post(client, remote, cluster_id=OTHER_CLUSTER)
    _post_events(
        client,
        event(vision["id"], 10, reason="Scheduled"),
        event(vision["id"], 40, reason="BackOff", type="Warning", count=4),
        event(audio["id"], 20, reason="Scheduled"),
        event(audio["id"], 40, reason="Started"),
        event(audio["id"], 70, reason="FailedScheduling", type="Warning"),
    )
    _post_events(
        client,
        event(remote["id"], 30, reason="Scheduled"),
        event(remote["id"], 80, reason="BackOff", type="Warning"),
        cluster_id=OTHER_CLUSTER,
    )
    return {"vision": vision, "audio": audio, "remote": remote}


def test_events_of_every_workload_newest_first_with_their_workload_and_project(client, fleet):
    events = _listed(client, limit=2)
    assert len(events) == 7 == _counted(client)
    times = [e["createdAt"] for e in events]
    assert times == sorted(times, reverse=True)
    # Two events at one time are ordered by their id, so pages never overlap.
    tied = [e["id"] for e in events if e["createdAt"] == at(40)]
    assert tied == sorted(tied, reverse=True) and len(tied) == 2
    newest = events[0]
    remote = fleet["remote"]
    assert newest["workloadId"] == remote["id"]
    assert newest["workloadName"] == "remote-job"
    assert (newest["projectId"], newest["projectName"]) == (remote["projectId"], "vision")
    assert newest["clusterId"] == OTHER_CLUSTER
    assert (newest["type"], newest["reason"], newest["count"]) == ("Warning", "BackOff", 1)
    assert newest["involvedObject"]["kind"] == "Pod"
    backoff = next(e for e in events if e["workloadId"] == fleet["vision"]["id"])
    assert (backoff["reason"], backoff["count"], backoff["projectName"]) == ("BackOff", 4, "vision")


def test_a_page_says_where_the_next_begins(client, fleet):
    first = client.get(EVENTS, params={"limit": 3}).json()
    assert first["next"] == 3 and len(first["events"]) == 3
    last = client.get(EVENTS, params={"offset": 6, "limit": 3}).json()
    assert "next" not in last and len(last["events"]) == 1


def _reasons(client, **params) -> list[str]:
    listed = _listed(client, **params)
    assert len(listed) == _counted(client, **params), params
    return [f"{e['reason']}@{e['createdAt'][17:19]}" for e in listed]


def test_each_filter_narrows_the_list_and_the_count_alike(client, fleet):
    vision, audio = fleet["vision"]["id"], fleet["audio"]["id"]
    assert _reasons(client, type="Warning") == ["BackOff@20", "FailedScheduling@10", "BackOff@40"]
    assert len(_reasons(client, type="Normal")) == 4
    assert len(_reasons(client, type="Normal,Warning")) == 7
    assert len(_reasons(client, type=["Normal", "Warning"])) == 7
    assert _reasons(client, clusterId=OTHER_CLUSTER) == ["BackOff@20", "Scheduled@30"]
    assert _reasons(client, projectId="11") == ["FailedScheduling@10", "Started@40", "Scheduled@20"]
    assert _reasons(client, reason="BackOff") == ["BackOff@20", "BackOff@40"]
    assert _reasons(client, workloadId=vision) == ["BackOff@40", "Scheduled@10"]
    # since is inclusive, until exclusive; a time without a zone is UTC.
    window = {"since": at(20), "until": at(70).removesuffix("Z")}
    windowed = _reasons(client, **window)
    assert windowed[2:] == ["Scheduled@30", "Scheduled@20"]
    assert sorted(windowed[:2]) == ["BackOff@40", "Started@40"]
    assert _reasons(client, since=at(71)) == ["BackOff@20"]
    # Filters are AND-ed.
    both = {"workloadId": audio, "type": "Warning", "clusterId": CLUSTER_ID}
    assert _reasons(client, **both) == ["FailedScheduling@10"]
    assert _reasons(client, workloadId=audio, clusterId=OTHER_CLUSTER) == []
    assert _reasons(client, workloadId=str(uuid.uuid4())) == []
    # An empty value filters nothing.
    assert len(_reasons(client, reason="", projectId="")) == 7


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"since": "yesterday"}, "since"),
        ({"until": "2025-13-01T00:00:00Z"}, "until"),
        ({"since": at(50), "until": at(50)}, "until"),
        ({"since": "9999-12-31T23:59:59-14:00"}, "since"),
        ({"type": "Error"}, "type"),
        ({"type": "Normal,normal"}, "type"),
        ({"clusterId": "not-a-uuid"}, "clusterId"),
        ({"workloadId": "42"}, "workloadId"),
        ({"projectId": "p" * 65}, "projectId"),
        ({"reason": "x" * 129}, "reason"),
        ({"reason": "Back\x00Off"}, "reason"),
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"offset": -1}, "offset"),
    ],
)
def test_a_bad_parameter_is_a_400_naming_it(client, params, named):
    for path in (EVENTS, COUNT):
        if path == COUNT and named in ("limit", "offset"):
            continue
        answer = client.get(path, params=params)
        assert answer.status_code == 400, (path, params, answer.text)
        body = answer.json()
        assert body["code"] == 400 and named in body["message"], (path, body)


def test_a_project_viewer_sees_its_projects_events_only(client, anonymous_client, fleet):
    viewer = key_with_role(client, "viewer", "project", "11")
    audio = fleet["audio"]["id"]
    seen = _listed(anonymous_client, headers=viewer)
    assert {e["workloadId"] for e in seen} == {audio}
    assert len(seen) == 3 == _counted(anonymous_client, headers=viewer)
    # A filter narrows the scope, never widens it: another project's or cluster's events, or
    # another workload's, are simply not there.
    for outside in (
        {"projectId": "10"},
        {"clusterId": OTHER_CLUSTER},
        {"workloadId": fleet["vision"]["id"]},
    ):
        assert _listed(anonymous_client, headers=viewer, **outside) == [], outside
        assert _counted(anonymous_client, headers=viewer, **outside) == 0, outside
    warnings = _listed(anonymous_client, headers=viewer, type="Warning")
    assert [e["reason"] for e in warnings] == ["FailedScheduling"]
    cluster_viewer = key_with_role(client, "viewer", "cluster", OTHER_CLUSTER)
    remote = _listed(anonymous_client, headers=cluster_viewer)
    assert {e["workloadId"] for e in remote} == {fleet["remote"]["id"]}


def test_callers_without_read_access_are_refused_before_their_parameters(
    client, anonymous_client, fleet
):
    from tests.support.access import bearer, new_service_account, token_for

    nobody = new_service_account(client, "nobody")
    without_rules = bearer(token_for(client, nobody["clientId"], nobody["clientSecret"]))
    for path in (EVENTS, COUNT):
        for params in ({}, {"clusterId": "not-a-uuid"}):
            refused = anonymous_client.get(path, params=params, headers=without_rules)
            assert refused.status_code == 403, refused.text
            assert anonymous_client.get(path, params=params).status_code == 401


def test_the_workloads_own_events_keep_the_reference_shape(client, fleet):
    """The extension adds to nothing of Run:ai's: a workload's events carry no workload or
    project fields."""
    vision = fleet["vision"]["id"]
    own = client.get(f"/api/v1/workloads/{vision}/events").json()["events"]
    assert len(own) == 2
    for item in own:
        assert not {"workloadId", "workloadName", "projectId", "projectName", "count"} & set(item)
