"""The agent's inventory: Node objects and the scheduler's queues (KAI, Kueue, the quota file)
as node and queue reports, the changes it pushes, and the server taking every report."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

from gpufleet.agent.inventory import Inventory
from gpufleet.agent.kinds import KAI_QUEUE_KIND, KUEUE_LOCAL_QUEUE_KIND, NODE_KIND
from gpufleet.agent.nodes import node_report
from gpufleet.agent.organisation import OrganisationDirectory, unit_id
from gpufleet.agent.queues import file_queues, kai_queue, kueue_queues
from tests.support.agent_reports import CLUSTER_ID

FIXTURES = Path(__file__).parent / "fixtures" / "inventory"
NOW = "2026-02-01T00:00:00Z"
DIRECTORY = OrganisationDirectory.from_text("departments: {research: {id: 'dep-r'}}")


def _load(name: str):
    return yaml.safe_load((FIXTURES / name).read_text())


def test_a_gpu_node_reports_capacity_labels_clique_and_taints():
    report = node_report(_load("node-gpu.yaml"), NOW)
    assert report["id"] == "6f1d2c3b-1111-4a5b-9c8d-0e1f2a3b4c5d"
    assert (report["status"], report["unschedulable"], report["nodePool"]) == (
        "Ready",
        False,
        "a100",
    )
    assert (report["gpuType"], report["gpuCount"], report["allocatableGpus"]) == (
        "NVIDIA-A100-SXM4-80GB",
        8,
        8.0,
    )
    assert report["gpuMemoryBytes"] == 81920 * 2**20
    assert (report["cpuCores"], report["allocatableCpuCores"]) == (128.0, 126.5)
    assert report["memoryBytes"] == 1056 * 2**30
    assert report["nvLinkDomainUid"] == "3f2e1d0c-aaaa-bbbb-cccc-123456789abc"
    assert report["nvLinkCliqueId"] == "7"
    assert report["taints"] == [
        {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
    ]
    assert report["migDevices"] == {}


def test_a_mig_node_counts_physical_gpus_and_its_slices():
    report = node_report(_load("node-mig.yaml"), NOW)
    assert report["gpuCount"] == 2 and report["allocatableGpus"] == 2.0
    assert report["migDevices"] == {"1g.10gb": 7, "3g.40gb": 2}
    assert report["nodePool"] == "h100"


def test_a_cordoned_unreachable_node_is_unknown_unschedulable_in_the_default_pool():
    report = node_report(_load("node-cordoned-notready.yaml"), NOW)
    assert (report["status"], report["unschedulable"], report["nodePool"]) == (
        "Unknown",
        True,
        "default",
    )
    assert report["gpuCount"] == 0 and report["gpuType"] is None
    # A taint of an effect Kubernetes does not know is left out.
    assert [t["key"] for t in report["taints"]] == [
        "node.kubernetes.io/unschedulable",
        "node.kubernetes.io/unreachable",
    ]
    assert node_report(_load("node-gpu.yaml"), NOW, "example.com/pool")["nodePool"] == "a100"
    relabelled = _load("node-gpu.yaml")
    relabelled["metadata"]["labels"]["example.com/pool"] = "mine"
    assert node_report(relabelled, NOW, "example.com/pool")["nodePool"] == "mine"


def test_node_changes_become_batches_of_changed_and_deleted_nodes():
    inventory = Inventory()
    gpu, mig = _load("node-gpu.yaml"), _load("node-mig.yaml")
    inventory.apply(NODE_KIND, "relist", None, (gpu, mig))
    first = inventory.node_batch(NOW)
    assert sorted(n["name"] for n in first["nodes"]) == ["gpu-a100-07", "gpu-h100-mig-01"]
    assert inventory.node_batch(NOW) is None
    not_ready = copy.deepcopy(gpu)
    not_ready["status"]["conditions"][-1]["status"] = "False"
    inventory.apply(NODE_KIND, "upsert", not_ready)
    (changed,) = inventory.node_batch(NOW)["nodes"]
    assert changed["status"] == "NotReady"
    inventory.apply(NODE_KIND, "delete", mig)
    gone = inventory.node_batch(NOW)
    assert gone["nodes"] == [] and gone["deletedIds"] == [mig["metadata"]["uid"]]
    full = inventory.node_batch(NOW, full=True)
    assert full["fullSync"] is True and [n["name"] for n in full["nodes"]] == ["gpu-a100-07"]
    # A relist without an object the agent held reports it deleted.
    inventory.apply(NODE_KIND, "relist", None, ())
    assert inventory.node_batch(NOW)["deletedIds"] == [gpu["metadata"]["uid"]]


def test_a_node_named_as_kubernetes_never_names_one_is_left_out_of_the_batch():
    # The API server validates node names, so this is a guard: the server refuses a whole
    # node batch holding a name Kubernetes would refuse.
    inventory = Inventory()
    gpu, odd = _load("node-gpu.yaml"), _load("node-mig.yaml")
    odd["metadata"]["name"] = "Odd,name==x"
    inventory.apply(NODE_KIND, "relist", None, (gpu, odd))
    assert [n["name"] for n in inventory.node_batch(NOW)["nodes"]] == ["gpu-a100-07"]
    assert [n["name"] for n in inventory.node_batch(NOW, full=True)["nodes"]] == ["gpu-a100-07"]


def test_kai_queues_stand_for_departments_and_projects():
    department, project = (kai_queue(q, DIRECTORY, CLUSTER_ID) for q in _load("kai-queues.yaml"))
    assert department["orgUnit"] == {"type": "department", "id": "dep-r", "name": "research"}
    assert department["quotas"][0]["nodePool"] == "default"
    assert department["quotas"][0]["gpu"]["deserved"] == 16.0
    assert department["quotas"][0]["gpu"]["limit"] == -1.0
    assert department["quotas"][0]["cpu"]["deserved"] == 256000.0
    unit = project["orgUnit"]
    assert (unit["type"], unit["name"], unit["departmentId"]) == ("project", "vision", "dep-r")
    assert unit["id"] == unit_id(CLUSTER_ID, "project", "vision")
    (quota,) = project["quotas"]
    assert quota["nodePool"] == "a100"
    assert quota["gpu"] == {"deserved": 8.0, "limit": 12.0, "overQuotaWeight": 1.0, "used": 10.0}
    assert quota["memory"]["deserved"] == 512000.0 and quota["cpu"]["used"] == 40000.0
    assert (project["parentName"], project["priority"]) == ("research", 100)


def test_kueue_cluster_queues_are_per_flavor_and_stand_for_their_local_queues_project():
    cluster_queue, local_queue = _load("kueue-queues.yaml")
    reports = kueue_queues([cluster_queue], [local_queue], DIRECTORY, CLUSTER_ID)
    local, cq = reports
    assert local["name"] == "runai-speech/default" and local["parentName"] == "speech-cq"
    assert local["orgUnit"]["name"] == "speech"
    assert cq["orgUnit"] == local["orgUnit"]
    a100, l40s = cq["quotas"]
    assert a100["gpu"] == {"deserved": 8.0, "limit": 12.0, "used": 10.0}
    assert a100["cpu"] == {"deserved": 64000.0, "limit": None, "used": 40000.0}
    assert a100["memory"]["deserved"] == 512 * 2**30 / 1e6
    # No borrowing limit in a cohort: no limit at all.
    assert l40s["gpu"]["limit"] is None
    assert cq["details"] == {"cohort": "shared"} and cq["parentName"] == "shared"
    alone = kueue_queues([cluster_queue], [], DIRECTORY, CLUSTER_ID)
    assert alone[0]["orgUnit"] is None


QUOTA_FILE = """
departments:
  research:
    quotas: [{nodePool: a100, gpu: {deserved: 32, limit: 48, overQuotaWeight: 2}}]
projects:
  vision:
    department: research
    quotas:
      - {nodePool: a100, gpu: {deserved: 16}, cpu: {deserved: 64000}}
"""


def test_the_quota_file_is_used_only_without_scheduler_queues():
    reports = file_queues(QUOTA_FILE, DIRECTORY, CLUSTER_ID)
    assert [r["name"] for r in reports] == ["department/research", "project/vision"]
    assert reports[1]["orgUnit"]["departmentId"] == "dep-r"
    inventory = Inventory()
    body = inventory.queue_batch(NOW, DIRECTORY, CLUSTER_ID, QUOTA_FILE, full=True)
    assert {q["source"] for q in body["queues"]} == {"file"}
    inventory.apply(KAI_QUEUE_KIND, "relist", None, _load("kai-queues.yaml"))
    body = inventory.queue_batch(NOW, DIRECTORY, CLUSTER_ID, QUOTA_FILE)
    assert {q["source"] for q in body["queues"]} == {"kai"}
    assert inventory.queue_batch(NOW, DIRECTORY, CLUSTER_ID, QUOTA_FILE) is None
    inventory.apply(KUEUE_LOCAL_QUEUE_KIND, "relist", None, ())
    assert inventory.queue_batch(NOW, DIRECTORY, CLUSTER_ID, QUOTA_FILE) is not None


def test_the_server_takes_every_report_the_agent_builds(client):
    inventory = Inventory()
    nodes = [_load(n) for n in ("node-gpu.yaml", "node-mig.yaml", "node-cordoned-notready.yaml")]
    inventory.apply(NODE_KIND, "relist", None, nodes)
    response = client.post(
        f"/api/v1/ingest/clusters/{CLUSTER_ID}/nodes", json=inventory.node_batch(NOW, full=True)
    )
    assert response.status_code == 200 and response.json()["accepted"] == 3, response.text
    cluster_queue, local_queue = _load("kueue-queues.yaml")
    queues = [
        *(kai_queue(q, DIRECTORY, CLUSTER_ID) for q in _load("kai-queues.yaml")),
        *kueue_queues([cluster_queue], [local_queue], DIRECTORY, CLUSTER_ID),
        *file_queues(QUOTA_FILE.replace("vision", "nlp"), DIRECTORY, CLUSTER_ID),
    ]
    response = client.post(
        f"/api/v1/ingest/clusters/{CLUSTER_ID}/queues", json={"observedAt": NOW, "queues": queues}
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": len(queues), "stale": 0, "removed": 0, "refused": []}
    listed = client.get("/api/v1/nodes", params={"sortBy": "name"}).json()["nodes"]
    assert [n["name"] for n in listed] == ["cpu-12", "gpu-a100-07", "gpu-h100-mig-01"]
    assert listed[2]["gpuInfo"]["gpuCount"] == 2
