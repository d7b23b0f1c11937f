"""Ingest of nodes and scheduler queues: ordering by observation, deletion, node pools,
organisation units, quotas, and what each pod holds on its node."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from gpufleet.store.tables import (
    departments,
    nodepools,
    nodes,
    projects,
    queue_quotas,
    scheduler_queues,
    workload_pods,
)
from tests.support.agent_reports import (
    CLUSTER_ID,
    at,
    batch,
    ingest_path,
    node_path,
    node_report,
    queue_path,
    queue_report,
    report,
)

OTHER_CLUSTER = "0b6c2d8e-3f59-4a51-8d1e-2a4f7c9e1b00"


def _nodes(client, *items, cluster_id=CLUSTER_ID, expect=200, **body):
    response = client.post(node_path(cluster_id), json={"nodes": list(items), **body})
    assert response.status_code == expect, response.text
    return response.json()


def _queues(client, *items, observed=0, cluster_id=CLUSTER_ID, expect=200):
    body = {"observedAt": at(observed), "queues": list(items)}
    response = client.post(queue_path(cluster_id), json=body)
    assert response.status_code == expect, response.text
    return response.json()


def _node(engine, node_id):
    with engine.connect() as conn:
        return conn.execute(sa.select(nodes).where(nodes.c.id == node_id)).mappings().first()


def test_a_node_is_stored_with_its_capacity_conditions_and_taints(client, engine):
    item = node_report(
        observed=5,
        status="NotReady",
        unschedulable=True,
        nodePool="h100",
        conditions=[{"type": "Ready", "status": "False", "reason": "KubeletNotReady"}],
        taints=[{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}],
        migDevices={"1g.10gb": 7},
        nvLinkCliqueId="clique-1",
    )
    assert _nodes(client, item) == {"accepted": 1, "stale": 0, "deleted": 0, "refused": []}
    row = _node(engine, item["id"])
    assert (row.status, row.unschedulable, row.nodepool) == ("NotReady", True, "h100")
    assert (row.gpu_count, row.allocatable_gpus, row.cpu_cores) == (8, 8.0, 96.0)
    assert row.memory_bytes == 1024 * 2**30 and row.nvlink_clique_id == "clique-1"
    assert row.document["migDevices"] == {"1g.10gb": 7}
    assert row.document["taints"] == [
        {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}
    ]
    assert row.document["conditions"][0]["reason"] == "KubeletNotReady"


def test_older_reports_are_stale_and_replays_change_nothing(client, engine):
    node_id = str(uuid.uuid4())
    _nodes(client, node_report(node_id, observed=100, status="Ready"))
    outcome = _nodes(client, node_report(node_id, observed=50, status="NotReady"))
    assert outcome["stale"] == 1 and outcome["accepted"] == 0
    assert _node(engine, node_id).status == "Ready"
    again = _nodes(client, node_report(node_id, observed=100, status="Ready"))
    assert again["accepted"] == 1


def test_a_deleted_node_stays_deleted_for_older_reports_and_returns_with_newer(client, engine):
    node_id = str(uuid.uuid4())
    _nodes(client, node_report(node_id, observed=10))
    assert _nodes(client, deletedIds=[node_id])["deleted"] == 1
    assert _node(engine, node_id).deleted_at is not None
    # The deletion was observed at the server's now, after any T0-based report.
    assert _nodes(client, node_report(node_id, observed=20))["stale"] == 1
    assert _node(engine, node_id).deleted_at is not None
    later = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    _nodes(client, {**node_report(node_id), "observedAt": later})
    assert _node(engine, node_id).deleted_at is None


def test_a_full_sync_deletes_the_nodes_it_does_not_list(client, engine):
    kept, gone = node_report(observed=1), node_report(observed=1)
    _nodes(client, kept, gone)
    outcome = _nodes(client, node_report(kept["id"], observed=2), fullSync=True)
    assert outcome["deleted"] == 1
    assert _node(engine, gone["id"]).deleted_at is not None
    assert _node(engine, kept["id"]).deleted_at is None


def test_another_clusters_node_is_refused_and_unchanged(client, engine):
    theirs = node_report(observed=1, name="theirs")
    _nodes(client, theirs, cluster_id=OTHER_CLUSTER)
    outcome = _nodes(client, node_report(theirs["id"], observed=9, name="mine"))
    assert outcome == {"accepted": 0, "stale": 0, "deleted": 0, "refused": [theirs["id"]]}
    outcome = _nodes(client, deletedIds=[theirs["id"]])
    assert outcome["refused"] == [theirs["id"]] and outcome["deleted"] == 0
    row = _node(engine, theirs["id"])
    assert (row.name, row.cluster_id, row.deleted_at) == ("theirs", OTHER_CLUSTER, None)


def test_node_pools_are_recorded_per_cluster_with_the_default(client, engine):
    _nodes(client, node_report(nodePool="a100"), nodePoolLabelKey="example.com/pool")
    _nodes(client, node_report(nodePool="a100"), cluster_id=OTHER_CLUSTER)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(nodepools).order_by(nodepools.c.name)).mappings().all()
    mine = [(r.name, r.is_default, r.label_key) for r in rows if r.cluster_id == CLUSTER_ID]
    assert mine == [("a100", False, "example.com/pool"), ("default", True, "example.com/pool")]
    assert len({r.id for r in rows}) == 4


def test_invalid_and_future_reports_are_refused_naming_the_field(client):
    bad = _nodes(client, node_report(gpuCount=-1), expect=400)
    assert "nodes.0.gpuCount" in bad["message"]
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    ahead = _nodes(client, {**node_report(), "observedAt": future}, expect=400)
    assert "nodes.0.observedAt" in ahead["message"]
    twice = _queues(client, queue_report("q"), queue_report("q"), expect=400)
    assert "once" in twice["message"]


def _queue_rows(engine):
    with engine.connect() as conn:
        queues = conn.execute(sa.select(scheduler_queues)).mappings().all()
        quotas = conn.execute(sa.select(queue_quotas)).mappings().all()
    return {q.name: q for q in queues}, quotas


def test_queues_are_stored_with_their_quotas_and_units(client, engine):
    quotas = [
        {"nodePool": "a100", "gpu": {"deserved": 8, "limit": 16, "overQuotaWeight": 2}},
        {"nodePool": "default", "gpu": {"deserved": 2}, "cpu": {"deserved": 4000}},
    ]
    outcome = _queues(
        client,
        queue_report("research"),
        queue_report("vision", department="research", quotas=quotas),
    )
    assert outcome == {"accepted": 2, "stale": 0, "removed": 0, "refused": []}
    queues, stored = _queue_rows(engine)
    assert queues["vision"].parent_name == "research"
    assert queues["vision"].org_unit_type == "project"
    a100 = next(q for q in stored if q.nodepool == "a100")
    assert (a100.gpu_deserved, a100.gpu_limit, a100.gpu_over_quota_weight) == (8.0, 16.0, 2.0)
    default = next(q for q in stored if q.nodepool == "default" and q.cpu_deserved)
    assert (default.gpu_deserved, default.cpu_deserved, default.gpu_limit) == (2.0, 4000.0, None)
    with engine.connect() as conn:
        project = conn.execute(sa.select(projects).where(projects.c.name == "vision")).first()
        department = conn.execute(
            sa.select(departments).where(departments.c.name == "research")
        ).first()
        pools = set(conn.execute(sa.select(nodepools.c.name)).scalars())
    assert project.id == queues["vision"].org_unit_id
    assert project.department_id == department.id == queues["research"].org_unit_id
    assert project.namespace == "runai-vision"
    assert {"a100", "default"} <= pools


def test_a_later_batch_replaces_and_removes_queues_an_older_one_does_not(client, engine):
    _queues(client, queue_report("one"), queue_report("two"), observed=10)
    stale = _queues(client, queue_report("one"), observed=5)
    assert stale == {"accepted": 0, "stale": 1, "removed": 0, "refused": []}
    replaced = queue_report("one", quotas=[{"nodePool": "h100", "gpu": {"deserved": 1}}])
    assert _queues(client, replaced, observed=20)["removed"] == 1
    queues, quotas = _queue_rows(engine)
    assert set(queues) == {"one"}
    assert [(q.nodepool, q.gpu_deserved) for q in quotas] == [("h100", 1.0)]


def test_a_queue_naming_another_clusters_project_is_refused(client, engine):
    theirs = queue_report("shared", department="dept", cluster_id=OTHER_CLUSTER)
    _queues(client, theirs, cluster_id=OTHER_CLUSTER)
    mine = queue_report("shared", department="dept")
    mine["orgUnit"] = {**theirs["orgUnit"], "name": "renamed"}
    outcome = _queues(client, mine, queue_report("fine"))
    assert outcome["refused"] == ["kai/shared"] and outcome["accepted"] == 1
    with engine.connect() as conn:
        project = conn.execute(
            sa.select(projects).where(projects.c.id == theirs["orgUnit"]["id"])
        ).first()
    assert (project.name, project.cluster_id) == ("shared", OTHER_CLUSTER)


def _holdings(engine, workload_id):
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(workload_pods).where(workload_pods.c.workload_id == workload_id)
        ).first()
    return row.allocated_gpu, row.allocated_cpu_cores, row.allocated_memory_bytes


def test_a_pod_holds_its_allocation_while_bound_and_not_finished(client, engine):
    item = report(observed=1, phase="Running")
    item["pods"][0]["allocatedResources"] = {"gpu": 2.0, "cpu": 4.0, "cpuMemory": "8Gi"}
    assert client.post(ingest_path(), json=batch(item)).status_code == 200
    assert _holdings(engine, item["id"]) == (2.0, 4.0, 8.0 * 2**30)
    (pod,) = client.get(f"/api/v1/workloads/{item['id']}/pods").json()["pods"]
    assert pod["allocatedResources"]["gpu"] == 2.0
    item = {**item, "observedAt": at(2), "phase": "Completed"}
    item["pods"] = [{**item["pods"][0], "phase": "Succeeded"}]
    assert client.post(ingest_path(), json=batch(item)).status_code == 200
    assert _holdings(engine, item["id"]) == (0.0, 0.0, 0.0)
    # The pods API says so too: a finished pod holds nothing.
    (pod,) = client.get(f"/api/v1/workloads/{item['id']}/pods").json()["pods"]
    assert pod["allocatedResources"] is None
