"""One cluster's agent cannot change anything of another cluster, whatever its batch names.

For random pairs of clusters, cluster B gets workloads, pods, node pools, samples, nodes,
scheduler queues with quotas and organisation units through the API; then B's agent key is left
aside and A's agent sends random batches that mention B's ids in every field they can. Everything
an API caller can observe of B (list, get, history, pods, metrics, project and department names
and membership, nodes, node pools, queues and quotas) must be the same afterwards, and each
response must name exactly the refused items.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpufleet.store.metric_samples import count_samples, write_samples
from gpufleet.store.tables import (
    departments,
    nodepools,
    nodes,
    projects,
    queue_quotas,
    scheduler_queues,
)
from tests.support.access import key_with_role
from tests.support.agent_reports import (
    at,
    batch,
    ingest_path,
    node_path,
    node_report,
    queue_path,
    report,
)

METRIC = "CPU_USAGE_CORES"
# Fields that grow with the request time while a workload is Pending or Running.
_CLOCK_FIELDS = ("totalPendingTimeSeconds", "totalRunningTimeSeconds")


def _sample(workload_id: str, minutes_ago: float, value: float) -> dict[str, Any]:
    moment = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    return {
        "workloadId": workload_id,
        "type": METRIC,
        "timestamp": moment.isoformat(),
        "value": value,
    }


def _cluster_b(client, tag: str, sizes: list[int]) -> dict[str, Any]:
    """Cluster B with one project per entry of ``sizes`` holding that many workloads."""
    cluster = str(uuid.uuid4())
    items = [
        report(
            cluster_id=cluster,
            observed=index,
            phase="Running",
            projectId=f"{tag}-p{p}",
            projectName=f"b-project-{p}",
            departmentId=f"{tag}-d{p % 2}",
            departmentName=f"b-department-{p % 2}",
            currentNodePools=[f"{tag}-pool"],
        )
        for p, size in enumerate(sizes)
        for index in range(size)
    ]
    response = client.post(ingest_path(cluster), json=batch(*items))
    assert response.status_code == 200 and response.json()["accepted"] == len(items), response.text
    samples = [_sample(item["id"], 2, 1.5) for item in items]
    assert client.post("/api/v1/ingest/metrics", json={"samples": samples}).status_code == 200
    node_items = [node_report(observed=1, nodePool=f"{tag}-pool") for _ in range(2)]
    response = client.post(node_path(cluster), json={"nodes": node_items})
    assert response.json()["accepted"] == 2, response.text
    queues = [_queue(f"{tag}-p{p}", f"{tag}-d{p % 2}", f"b-project-{p}") for p in range(len(sizes))]
    body = {"observedAt": datetime.now(UTC).isoformat(), "queues": queues}
    assert client.post(queue_path(cluster), json=body).json()["accepted"] == len(queues)
    return {
        "cluster": cluster,
        "items": items,
        "ids": [item["id"] for item in items],
        "projects": sorted({item["projectId"] for item in items}),
        "departments": sorted({item["departmentId"] for item in items}),
        "pools": [f"{tag}-pool"],
        "nodes": [node["id"] for node in node_items],
    }


def _queue(project_id: str, department_id: str, name: str) -> dict[str, Any]:
    """A queue standing for a project (department names as the workloads give them)."""
    return {
        "source": "kai",
        "name": name,
        "orgUnit": {
            "type": "project",
            "id": project_id,
            "name": name,
            "departmentId": department_id,
            "departmentName": f"b-department-{department_id[-1]}",
        },
        "quotas": [{"nodePool": "default", "gpu": {"deserved": 2, "limit": 4}}],
    }


def _observe(client, engine, b: dict[str, Any], window: dict[str, str]) -> dict[str, Any]:
    """Everything of cluster B a caller can read, minus what moves with the clock."""
    seen: dict[str, Any] = {}
    for deleted in ("false", "true"):
        listed = client.get(
            "/api/v1/workloads",
            params={"filterBy": f"clusterId=={b['cluster']}", "deleted": deleted, "limit": 500},
        ).json()["workloads"]
        seen[f"list-{deleted}"] = [_without_clock(w) for w in listed]
    for workload_id in b["ids"]:
        base = f"/api/v1/workloads/{workload_id}"
        seen[workload_id] = (
            _without_clock(client.get(base).json()),
            client.get(f"{base}/history").json(),
            client.get(f"{base}/pods").json(),
            _values(client.get(f"{base}/metrics", params={"metricType": METRIC, **window}).json()),
        )
    # A node pool is a name within a cluster: B's pool is its name in B.
    pool = f"clusterId=={b['cluster']},nodepool=={b['pools'][0]}"
    pools = client.get("/api/v1/workloads", params={"filterBy": pool})
    seen["pool members"] = sorted(w["id"] for w in pools.json()["workloads"])
    with engine.connect() as conn:
        for table in (projects, departments):
            rows = conn.execute(
                sa.select(table).where(table.c.id.in_(b["projects"] + b["departments"]))
            ).mappings()
            seen[table.name] = sorted((dict(row) for row in rows), key=lambda row: row["id"])
        for table in (nodes, nodepools, scheduler_queues, queue_quotas):
            rows = conn.execute(sa.select(table).where(table.c.cluster_id == b["cluster"]))
            seen[table.name] = sorted(str(dict(row)) for row in rows.mappings())
    return seen


def _without_clock(workload: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in workload.items() if key not in _CLOCK_FIELDS}


def _values(metrics: dict[str, Any]) -> list:
    return [(m["type"], m.get("labels"), m["values"]) for m in metrics["measurements"]]


@st.composite
def _mention(draw, own: str, theirs: list[str]) -> str:
    return draw(st.sampled_from([own, *theirs]))


@st.composite
def _attack(draw, b: dict[str, Any], a_cluster: str, tag: str) -> dict[str, Any]:
    """A batch of A's agent: each field is A's own value or one of B's."""
    count = draw(st.integers(1, 5))
    # Fresh ids are new to the database, which the examples share.
    fresh = [str(uuid.uuid4()) for _ in range(count)]
    ids = draw(st.permutations([*fresh, *b["ids"]]))[:count]
    victims = {item["id"]: item for item in b["items"]}
    items = []
    for position, workload_id in enumerate(ids):
        pod_source = victims.get(draw(st.sampled_from(b["ids"])))
        pod = {**pod_source["pods"][0]} if draw(st.booleans()) else None
        fields: dict[str, Any] = {
            "projectId": draw(_mention(f"{tag}-own-p{position % 2}", b["projects"])),
            "projectName": draw(st.sampled_from(["renamed", "b-project-0", f"a-{position}"])),
            "departmentId": draw(_mention(f"{tag}-own-d", b["departments"])),
            "departmentName": draw(st.sampled_from(["renamed", "b-department-0", "a-dept"])),
            "currentNodePools": draw(st.sampled_from([b["pools"], ["a-pool"]])),
            "phase": draw(st.sampled_from(["Running", "Failed", "Completed"])),
        }
        if pod is not None:
            fields["pods"] = [pod]
        items.append(report(workload_id, cluster_id=a_cluster, observed=1000 + position, **fields))
    deleted = draw(
        st.lists(st.sampled_from([*b["ids"], str(uuid.uuid4())]), unique=True, max_size=3)
    )
    deleted = [d for d in deleted if d not in ids]
    # Deletions with the time they were seen: B's ids, unknown ones, A's own (not reported in
    # this batch), at times before, between and after B's observations.
    timed = draw(
        st.lists(
            st.tuples(
                st.sampled_from([*b["ids"], *fresh, str(uuid.uuid4())]),
                st.sampled_from([-60, 1, 1500, 10**7]),
            ),
            max_size=3,
        )
    )
    deletions = [
        {"id": workload_id, "observedAt": at(seconds)}
        for workload_id, seconds in timed
        if workload_id not in ids
    ]
    samples = [
        _sample(draw(st.sampled_from([*b["ids"], *fresh])), 1, draw(st.floats(0, 100)))
        for _ in range(draw(st.integers(0, 3)))
    ]
    node_ids = draw(st.permutations([str(uuid.uuid4()), *b["nodes"]]))[: draw(st.integers(1, 3))]
    node_items = [node_report(node_id, observed=5000) for node_id in node_ids]
    node_deleted = draw(st.lists(st.sampled_from(b["nodes"]), unique=True, max_size=2))
    queues = [
        _queue(
            draw(_mention(f"{tag}-own-p{index}", b["projects"])),
            draw(_mention(f"{tag}-own-d", b["departments"])),
            f"a-queue-{index}",
        )
        for index in range(draw(st.integers(0, 3)))
    ]
    return {
        "body": {
            **batch(*items, deleted=deleted, full_sync=draw(st.booleans())),
            "deletions": deletions,
        },
        "samples": samples,
        "nodes": {
            "nodes": node_items,
            "deletedIds": [d for d in node_deleted if d not in node_ids],
            "fullSync": draw(st.booleans()),
            "nodePoolLabelKey": draw(st.sampled_from(["run.ai/node-pool", "other/pool"])),
        },
        "queues": {"observedAt": datetime.now(UTC).isoformat(), "queues": queues},
    }


def _item_of(field: str) -> str:
    """``workloads.3.projectId`` -> ``workloads.3``, ``deletions.2.id`` -> ``deletions.2``;
    ``deletedIds.1`` stays."""
    return ".".join(field.split(".")[:2])


def _expected_refusals(body: dict[str, Any], b: dict[str, Any]) -> set[str]:
    refused = set()
    for index, item in enumerate(body["workloads"]):
        if (
            item["departmentId"] in b["departments"]
            or item["projectId"] in b["projects"]
            or item["id"] in b["ids"]
        ):
            refused.add(f"workloads.{index}")
    refused.update(f"deletedIds.{i}" for i, d in enumerate(body["deletedIds"]) if d in b["ids"])
    refused.update(f"deletions.{i}" for i, d in enumerate(body["deletions"]) if d["id"] in b["ids"])
    return refused


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data(), sizes=st.lists(st.integers(1, 3), min_size=1, max_size=3))
def test_an_agent_changes_nothing_of_another_cluster(client, engine, data, sizes):
    tag = uuid.uuid4().hex[:8]
    b = _cluster_b(client, tag, sizes)
    a_cluster = str(uuid.uuid4())
    agent = key_with_role(client, "cluster-agent", "cluster", a_cluster)
    now = datetime.now(UTC)
    window = {
        "start": (now - timedelta(minutes=30)).isoformat(),
        "end": (now + timedelta(minutes=5)).isoformat(),
    }
    before = _observe(client, engine, b, window)

    attack = data.draw(_attack(b, a_cluster, tag))
    response = client.post(ingest_path(a_cluster), json=attack["body"], headers=agent)
    assert response.status_code == 200, response.text
    result = response.json()
    expected = _expected_refusals(attack["body"], b)
    assert {_item_of(refusal["field"]) for refusal in result["refused"]} == expected
    sent = len(attack["body"]["workloads"])
    refused_items = sum(1 for item in result["refused"] if item["field"].startswith("workloads."))
    assert result["accepted"] + result["stale"] + refused_items == sent

    metrics = client.post(
        "/api/v1/ingest/metrics", json={"samples": attack["samples"]}, headers=agent
    )
    # Samples may name only workloads of A: the ones this batch created.
    created = {
        item["id"]
        for index, item in enumerate(attack["body"]["workloads"])
        if f"workloads.{index}" not in expected
    }
    foreign = [i for i, s in enumerate(attack["samples"]) if s["workloadId"] not in created]
    if foreign:
        assert metrics.status_code == 400, metrics.text
        assert f"samples.{foreign[0]}." in metrics.json()["message"]
    else:
        assert metrics.status_code == 200, metrics.text

    response = client.post(node_path(a_cluster), json=attack["nodes"], headers=agent)
    assert response.status_code == 200, response.text
    mentioned = {n["id"] for n in attack["nodes"]["nodes"]} | set(attack["nodes"]["deletedIds"])
    assert set(response.json()["refused"]) == mentioned & set(b["nodes"])

    response = client.post(queue_path(a_cluster), json=attack["queues"], headers=agent)
    assert response.status_code == 200, response.text
    foreign_units = set(b["projects"]) | set(b["departments"])
    assert set(response.json()["refused"]) == {
        f"kai/{q['name']}"
        for q in attack["queues"]["queues"]
        if {q["orgUnit"]["id"], q["orgUnit"]["departmentId"]} & foreign_units
    }

    after = _observe(client, engine, b, window)
    for key, value in before.items():
        assert after[key] == value, key


def test_the_sample_write_itself_keeps_to_the_callers_clusters(client, engine):
    """Even without the check before it, the writing statement refuses another cluster's
    workload (what holds should a check and a write ever disagree)."""
    tag = uuid.uuid4().hex[:8]
    b = _cluster_b(client, tag, [2])
    mine, theirs = str(uuid.uuid4()), b["ids"][0]
    own = report(mine, cluster_id=str(uuid.uuid4()), projectId=f"{tag}-a", departmentId=f"{tag}-a")
    assert client.post(ingest_path(own["clusterId"]), json=batch(own)).status_code == 200
    moment = int(datetime.now(UTC).timestamp() * 1000)
    rows = [
        {"workload_id": w, "metric_type": METRIC, "series": "", "ts_ms": moment, "value": 7.0}
        for w in (mine, theirs)
    ]
    with engine.begin() as conn:
        assert write_samples(conn, rows, {own["clusterId"]}) == 1
        assert write_samples(conn, rows, {own["clusterId"]}) == 1  # a replay replaces
        assert count_samples(conn, theirs) == 1  # only the sample B wrote itself
        assert count_samples(conn, mine) == 1
        assert write_samples(conn, rows, set()) == 0
