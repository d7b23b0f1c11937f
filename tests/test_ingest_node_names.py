"""Node names at ingest: a node report's ``name`` and a pod's ``nodeName`` are taken only as
Kubernetes takes a node's name (a DNS-1123 subdomain); anything else refuses the whole batch
with a 400 naming the field and the entry, and writes nothing."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from gpufleet.core.identifiers import NODE_NAME_MAX, is_node_name
from gpufleet.store.tables import nodes, workload_pods, workloads
from tests.support.agent_reports import (
    CLUSTER_ID,
    batch,
    ingest_path,
    node_path,
    node_report,
    report,
)

# Names Kubernetes takes: the longest, dotted, starting with a digit, a single character.
VALID = [
    "n" * NODE_NAME_MAX,
    ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61]),
    "1.node-b.example",
    "10-0-3-17",
    "gpu-a100-07",
    "x",
    "7",
]
# Names Kubernetes refuses, each for its own reason.
INVALID = [
    "a,b==c",
    "gpu node",
    "GPU-A",
    "<img src=x onerror=alert(1)>",
    "-leading",
    "trailing-",
    "trailing.",
    ".leading",
    "two..dots",
    "label.-dash",
    "under_score",
    "gpu-é",
    "tab\tname",
    "newline\n",
    "",
]
TOO_LONG = "n" * (NODE_NAME_MAX + 1)


def _stored(engine, table) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


def _refused(response, field: str) -> str:
    assert response.status_code == 400, response.text
    error = response.json()
    assert set(error) <= {"code", "message", "details"} and error["code"] == 400
    assert field in error["message"]
    return error["message"]


@pytest.mark.parametrize("name", VALID)
def test_kubernetes_node_names_are_node_names(name):
    assert is_node_name(name)


@pytest.mark.parametrize("name", [*INVALID, TOO_LONG])
def test_names_kubernetes_refuses_are_not(name):
    assert not is_node_name(name)


@pytest.mark.parametrize("name", INVALID)
def test_a_node_report_with_such_a_name_refuses_the_whole_batch(client, engine, name):
    # Set after: node_report takes an empty name for none.
    body = {"nodes": [node_report(name="good-node"), {**node_report(), "name": name}]}
    message = _refused(client.post(node_path(), json=body), "'nodes.1.name'")
    assert "Kubernetes node name" in message
    assert _stored(engine, nodes) == 0


def test_a_node_name_longer_than_kubernetes_allows_is_refused(client, engine):
    body = {"nodes": [node_report(name=TOO_LONG)]}
    message = _refused(client.post(node_path(), json=body), "'nodes.0.name'")
    assert str(NODE_NAME_MAX) in message
    assert _stored(engine, nodes) == 0


@pytest.mark.parametrize("name", [*(n for n in INVALID if n), TOO_LONG])
def test_a_pod_on_such_a_node_refuses_the_whole_batch_naming_its_workload(client, engine, name):
    pods = report()["pods"]
    bad = report(pods=[*pods, {**pods[0], "uid": "0d4c0000-0000-4000-8000-000000000001"}])
    bad["pods"][1]["nodeName"] = name
    message = _refused(client.post(ingest_path(), json=batch(report(), bad)), "index 1")
    assert "'pods.1.nodeName'" in message
    assert _stored(engine, workloads) == 0
    assert _stored(engine, workload_pods) == 0


def test_kubernetes_node_names_are_taken_and_found_by_name(client):
    sent = [node_report(name=name) for name in VALID]
    response = client.post(node_path(), json={"nodes": sent})
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == len(VALID)
    for name in VALID:
        # What the dashboard's node page asks for.
        params = {"filterBy": [f"clusterUuid=={CLUSTER_ID}", f"name=={name}"]}
        found = client.get("/api/v1/nodes", params=params)
        assert found.status_code == 200, found.text
        assert [n["name"] for n in found.json()["nodes"]] == [name]


def test_pods_on_kubernetes_node_names_or_on_none_are_taken(client):
    items = []
    for name in [*VALID, None, ""]:
        item = report()
        item["pods"][0]["nodeName"] = name
        items.append(item)
    response = client.post(ingest_path(), json=batch(*items))
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == len(items)
    # An empty nodeName (Kubernetes' own for a pod not yet scheduled) is no node, as null is.
    for item in items[-2:]:
        (pod,) = client.get(f"/api/v1/workloads/{item['id']}/pods").json()["pods"]
        assert pod["nodeName"] is None
    for name in VALID:
        params = {"filterBy": [f"nodeName=={name}"]}
        found = client.get("/api/v1/workloads/pods", params=params)
        assert found.status_code == 200, found.text
        assert [p["nodeName"] for p in found.json()["pods"]] == [name]
