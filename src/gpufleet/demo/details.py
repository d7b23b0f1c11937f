"""Pods, phase history and Kubernetes events of the demo's workloads, consistent with each.

Every workload gets its pods (as many Running, on nodes of its node pool and sharing its GPUs,
as ``runningPods`` says; the others Pending, finished or deleted as its phase implies), a phase
history from creation to its current phase, and events: the scheduler's placements of running
pods, and for pending and failed workloads the ones that explain them (``FailedScheduling``,
preemption by a higher-priority workload, image pull back-off, ``OOMKilled``). Everything is
derived from the workload's id, so it is the same for the same workload on every run.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from sqlalchemy.engine import Connection

from gpufleet.demo.capacity import DemoFleet
from gpufleet.demo.resources import HOLDING_PHASES
from gpufleet.demo.workloads import DemoWorkload
from gpufleet.store.tables import workload_events, workload_phase_history, workload_pods

FINISHED_POD_PHASE = {"Completed": "Succeeded", "Failed": "Failed"}
# Pods of these phases are gone from the cluster (Run:ai deletes them when stopping).
PODS_DELETED = frozenset({"Stopped"})
# Phases a workload passes through Running to reach.
AFTER_RUNNING = frozenset(
    {"Degraded", "Updating", "Stopping", "Terminating", "Completed", "Failed", "Stopped"}
)
NODES_PER_POOL = 12
# Pods per workload that get their placement events (bounds the rows of large gang jobs).
PODS_WITH_EVENTS = 2
SECOND = timedelta(seconds=1)


def _uid(workload_id: str, what: str) -> str:
    return str(uuid5(NAMESPACE_URL, f"https://demo.gpufleet.invalid/{workload_id}/{what}"))


def _rng(workload_id: str) -> random.Random:
    return random.Random(UUID(workload_id).int)


def _pool(item: dict[str, Any]) -> str:
    pools = item.get("currentNodePools") or item.get("requestedNodePools") or ["default"]
    return pools[0]


def _pod_count(item: dict[str, Any]) -> int:
    return max(int((item.get("requestedPods") or {}).get("number") or 1), item["runningPods"], 1)


def _per_pod_allocation(item: dict[str, Any], bound: int) -> dict[str, Any] | None:
    allocated = item.get("allocatedResources") or {}
    if not bound or not allocated.get("gpu"):
        return None
    return {"gpu": allocated["gpu"] / bound, "cpu": (allocated.get("cpu") or 0.0) / bound}


def running_since(workload: DemoWorkload) -> datetime:
    """When the workload first ran: after its creation and its accumulated pending time."""
    item = workload.wire
    created, updated = item["createdAt"], item["phaseUpdatedAt"]
    started = created + SECOND + timedelta(seconds=workload.before.pending)
    return min(max(started, created + SECOND), updated)


def _pod_ip(rng: random.Random) -> str:
    return f"10.{rng.randrange(64, 128)}.{rng.randrange(256)}.{rng.randrange(2, 255)}"


def demo_pods(item: dict[str, Any], started: datetime) -> list[dict[str, Any]]:
    """Rows of ``workload_pods`` for one demo workload that first ran at ``started``."""
    rng = _rng(item["id"])
    phase, pool = item["phase"], _pool(item)
    count, running = _pod_count(item), item["runningPods"]
    # In a holding phase every pod is placed and holds its share; runningPods of them run.
    holding = count if phase in HOLDING_PHASES else running
    allocation = _per_pod_allocation(item, holding)
    gpus_per_pod = round(allocation["gpu"]) if allocation else 0
    first_node = rng.randrange(NODES_PER_POOL)
    rows = []
    for index in range(count):
        bound = index < holding
        if index < running:
            pod_phase = "Running"
        else:
            pod_phase = "Pending" if bound else FINISHED_POD_PHASE.get(phase, "Pending")
        finished = pod_phase in ("Succeeded", "Failed")
        deleted = item.get("deletedAt") or (
            item["phaseUpdatedAt"] if phase in PODS_DELETED else None
        )
        node = f"{pool}-node-{(first_node + index) % NODES_PER_POOL:02d}"
        document: dict[str, Any] = {
            "priorityClassName": item.get("priorityClassName") or "",
            "containers": [
                {
                    "name": "main",
                    "image": (item.get("images") or ["busybox"])[0],
                    "startedAt": started.isoformat() if bound or finished else None,
                }
            ],
            "requestedResources": item.get("podsRequestedResources"),
            "requestedNodePools": item.get("requestedNodePools") or [pool],
        }
        if bound:
            document["ip"] = _pod_ip(rng)
            document["gpuIndices"] = [str(g) for g in range(gpus_per_pod)]
            if allocation:
                document["allocatedResources"] = allocation
        rows.append(
            {
                "id": _uid(item["id"], f"pod/{index}"),
                "workload_id": item["id"],
                "cluster_id": item["clusterId"],
                "name": f"{item['name']}-{index}",
                "node_name": node if bound or finished else None,
                "nodepool": pool if bound or finished else None,
                "k8s_phase": pod_phase,
                "revision_id": None,
                "created_at": item["createdAt"] + SECOND,
                "completed_at": item["phaseUpdatedAt"] if finished else None,
                "deleted_at": deleted,
                "updated_at": item["updatedAt"],
                "k8s_phase_updated_at": started if bound else item["phaseUpdatedAt"],
                # What the pod holds on its node is set where it is placed (demo.capacity).
                "allocated_gpu": 0.0,
                "allocated_cpu_cores": 0.0,
                "allocated_memory_bytes": 0.0,
                "document": document,
            }
        )
    return rows


def demo_transitions(item: dict[str, Any], started: datetime) -> list[dict[str, Any]]:
    """Rows of ``workload_phase_history``: creation, the way through, the current phase."""
    phase, created, updated = item["phase"], item["createdAt"], item["phaseUpdatedAt"]
    steps: list[tuple[str, datetime]] = [("Creating", created)]
    if phase != "Creating":
        steps.append(("Pending", min(created + SECOND, updated)))
    if phase in AFTER_RUNNING or phase == "Running":
        steps.append(("Running", started))
    if steps[-1][0] != phase:
        steps.append((phase, updated))
    # The current phase began at phaseUpdatedAt; earlier steps cannot be later than it.
    steps[-1] = (phase, updated)
    rows, seen = [], set()
    for index, (name, at) in enumerate(steps):
        at = min(at, updated)
        if (name, at) in seen:
            continue
        seen.add((name, at))
        current = index == len(steps) - 1
        rows.append(
            {
                "workload_id": item["id"],
                "phase": name,
                "message": (item.get("phaseMessage") or "") if current else "",
                "at": at,
            }
        )
    return rows


def _event(item: dict[str, Any], n: int, at: datetime, kind: str, reason: str, message: str,
           *, source: str, count: int = 1, pod: int = 0) -> dict[str, Any]:  # fmt: skip
    return {
        "id": _uid(item["id"], f"event/{n}"),
        "workload_id": item["id"],
        "cluster_id": item["clusterId"],
        "created_at": at,
        "type": kind,
        "reason": reason,
        "message": message,
        "source": source,
        "count": count,
        "object_kind": "Pod",
        "object_name": f"{item['name']}-{pod}",
        "object_namespace": item["namespace"],
        "object_uid": _uid(item["id"], f"pod/{pod}"),
    }


def _placement_events(
    item: dict[str, Any], pods: list[dict[str, Any]], started: datetime
) -> list[dict[str, Any]]:
    events = []
    for index, pod in enumerate(pods[:PODS_WITH_EVENTS]):
        if pod["node_name"] is None:
            continue
        image = pod["document"]["containers"][0]["image"]
        name = f"{item['namespace']}/{pod['name']}"
        events += [
            _event(item, 10 * index, started - SECOND, "Normal", "Scheduled",
                   f"Successfully assigned {name} to {pod['node_name']}",
                   source="runai-scheduler", pod=index),
            _event(item, 10 * index + 1, started, "Normal", "Pulled",
                   f'Container image "{image}" already present on machine',
                   source="kubelet", pod=index),
            _event(item, 10 * index + 2, started, "Normal", "Started",
                   "Started container main", source="kubelet", pod=index),
        ]  # fmt: skip
    return events


def _pending_events(item: dict[str, Any], rng: random.Random, anchor: datetime) -> list[dict]:
    nodes = NODES_PER_POOL
    busy = rng.randrange(nodes // 2, nodes)
    pool = _pool(item)
    events = []
    if rng.random() < 0.35:
        events.append(
            _event(item, 100, item["phaseUpdatedAt"], "Warning", "Preempted",
                   f"Preempted by a higher-priority workload in node pool {pool} to reclaim "
                   f"its GPUs (priority class {item.get('priorityClassName') or 'train'} "
                   "is preemptible)", source="runai-scheduler")
        )  # fmt: skip
    message = (
        f"0/{nodes} nodes are available: {busy} Insufficient nvidia.com/gpu, "
        f"{nodes - busy} node(s) didn't match Pod's node affinity/selector. preemption: "
        f"0/{nodes} nodes are available: {nodes} No preemption victims found for incoming pod."
    )
    waited = max(int((anchor - item["phaseUpdatedAt"]).total_seconds()), 0)
    latest = max(anchor - timedelta(seconds=rng.randrange(5, 60)), item["phaseUpdatedAt"])
    events.append(
        _event(item, 101, latest, "Warning", "FailedScheduling", message,
               source="runai-scheduler", count=max(1, waited // 60))
    )  # fmt: skip
    return events


def _failure_events(item: dict[str, Any], rng: random.Random) -> list[dict[str, Any]]:
    at = item["phaseUpdatedAt"]
    image = (item.get("images") or ["busybox"])[0]
    if rng.random() < 0.5:
        limit = ((item.get("podsRequestedResources") or {}).get("cpuMemory") or {}).get("limit")
        return [
            _event(item, 200, at, "Warning", "OOMKilled",
                   f"Container main was OOMKilled: memory limit {limit or '16Gi'} exceeded "
                   "(exit code 137)", source="kubelet"),
            _event(item, 201, at, "Warning", "BackOff",
                   "Back-off restarting failed container main", source="kubelet", count=5),
        ]  # fmt: skip
    return [
        _event(item, 202, at - 2 * SECOND, "Warning", "Failed",
               f'Failed to pull image "{image}": rpc error: code = NotFound desc = failed to '
               f'pull and unpack image "{image}": not found', source="kubelet"),
        _event(item, 203, at, "Warning", "BackOff", f'Back-off pulling image "{image}"',
               source="kubelet", count=6),
    ]  # fmt: skip


def demo_events(
    item: dict[str, Any], pods: list[dict[str, Any]], anchor: datetime, started: datetime
) -> list[dict[str, Any]]:
    """Rows of ``workload_events`` for one demo workload that first ran at ``started``."""
    rng = _rng(item["id"])
    events = _placement_events(item, pods, started)
    if item["phase"] == "Pending":
        events += _pending_events(item, rng, anchor)
    elif item["phase"] == "Failed":
        events += _failure_events(item, rng)
    return events


def write_workload_details(
    conn: Connection, batch: list[DemoWorkload], anchor: datetime, fleet: DemoFleet | None = None
) -> int:
    """The demo seeding hook: pods (placed on ``fleet``'s nodes when given), history and events
    of a batch; returns rows written."""
    pods, transitions, events = [], [], []
    placed = [(workload, demo_pods(workload.wire, running_since(workload))) for workload in batch]
    if fleet is not None:
        fleet.place_pods([pod for _, own_pods in placed for pod in own_pods])
        fleet.write(conn, anchor)
    for workload, own_pods in placed:
        item, started = workload.wire, running_since(workload)
        pods += own_pods
        transitions += demo_transitions(item, started)
        events += demo_events(item, own_pods, anchor, started)
    for table, rows in (
        (workload_pods, pods),
        (workload_phase_history, transitions),
        (workload_events, events),
    ):
        if rows:
            conn.execute(table.insert(), rows)
    return len(pods) + len(transitions) + len(events)
