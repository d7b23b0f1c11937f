"""Ingest payloads as a cluster agent sends them (JSON-ready dicts, times as strings)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from gpufleet.core.times import format_rfc3339

CLUSTER_ID = "5f0b8a0e-6c1f-4c55-9a53-1f4d1f0c2b7e"
T0 = datetime(2025, 3, 1, 8, 0, 0, tzinfo=UTC)


def at(seconds: float) -> str:
    """The wire time ``seconds`` after T0."""
    return format_rfc3339(T0 + timedelta(seconds=seconds))


def report(
    workload_id: str | None = None,
    *,
    observed: float = 0,
    phase: str = "Pending",
    cluster_id: str = CLUSTER_ID,
    **overrides: Any,
) -> dict[str, Any]:
    """One reported workload observed ``observed`` seconds after T0.

    Its project ("10") and department ("2") are those of ``CLUSTER_ID``; another cluster gets
    ids of its own, since organisation units belong to one cluster.
    """
    workload_id = workload_id or str(uuid.uuid4())
    suffix = "" if cluster_id == CLUSTER_ID else f"-{cluster_id[:8]}"
    item: dict[str, Any] = {
        "tenantId": 1,
        "runningPods": 1 if phase == "Running" else 0,
        "source": "CLI",
        "type": "Training",
        "name": f"job-{workload_id[:8]}",
        "id": workload_id,
        "priority": 50,
        "priorityClassName": "train",
        "submittedBy": "alice@example.com",
        "clusterId": cluster_id,
        "projectName": "vision",
        "projectId": f"10{suffix}",
        "departmentName": "research",
        "departmentId": f"2{suffix}",
        "namespace": "runai-vision",
        "createdAt": at(0),
        "phase": phase,
        "conditions": [],
        "k8sPhase": phase,
        "category": "Train",
        "currentNodePools": ["default"],
        "allocatedResources": {"gpu": 1.0},
        "observedAt": at(observed),
        "pods": [
            {
                "name": f"job-{workload_id[:8]}-0",
                "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"pod/{workload_id}")),
                "nodeName": "node-a",
                "phase": "Running" if phase == "Running" else "Pending",
                "gpuIndices": ["0"],
                "nodepool": "default",
            }
        ],
    }
    item.update(overrides)
    return item


def in_project(
    project_id: str, name: str, department_id: str | None = None, department: str | None = None
) -> dict[str, str]:
    """A report's fields placing it in project ``name`` (its namespace ``runai-<name>``) and,
    given, in a department: ``report(**in_project(...))``."""
    fields = {"projectId": project_id, "projectName": name, "namespace": f"runai-{name}"}
    if department_id is not None:
        fields["departmentId"] = department_id
    if department is not None:
        fields["departmentName"] = department
    return fields


def batch(
    *items: dict[str, Any],
    deleted: list[str] | None = None,
    deletions: dict[str, float | str] | None = None,
    full_sync: bool = False,
):
    """An ingest body; ``deletions`` maps ids to when they were seen deleted (seconds after
    T0, or a wire time)."""
    body: dict[str, Any] = {
        "workloads": list(items),
        "deletedIds": deleted or [],
        "fullSync": full_sync,
    }
    if deletions:
        body["deletions"] = [
            {"id": i, "observedAt": moment if isinstance(moment, str) else at(moment)}
            for i, moment in deletions.items()
        ]
    return body


def ingest_path(cluster_id: str = CLUSTER_ID) -> str:
    return f"/api/v1/ingest/clusters/{cluster_id}/workloads"


def node_report(
    node_id: str | None = None,
    *,
    observed: float = 0,
    name: str | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """One reported node of 8 GPUs observed ``observed`` seconds after T0."""
    node_id = node_id or str(uuid.uuid4())
    item: dict[str, Any] = {
        "id": node_id,
        "name": name or f"node-{node_id[:8]}",
        "observedAt": at(observed),
        "createdAt": at(0),
        "status": "Ready",
        "nodePool": "default",
        "gpuType": "NVIDIA-A100-SXM4-80GB",
        "gpuCount": 8,
        "allocatableGpus": 8,
        "gpuMemoryBytes": 80 * 2**30,
        "cpuCores": 96,
        "allocatableCpuCores": 94,
        "memoryBytes": 1024 * 2**30,
        "allocatableMemoryBytes": 1000 * 2**30,
    }
    item.update(overrides)
    return item


def node_path(cluster_id: str = CLUSTER_ID) -> str:
    return f"/api/v1/ingest/clusters/{cluster_id}/nodes"


def queue_report(
    name: str, *, department: str | None = None, cluster_id: str = CLUSTER_ID, **overrides: Any
) -> dict[str, Any]:
    """A KAI queue: a project queue under ``department``, or a department queue without one,
    with its org unit ids derived as the agent derives them."""
    base = uuid.UUID(cluster_id)
    if department is None:
        unit = {
            "type": "department",
            "id": str(uuid.uuid5(base, f"department/{name}")),
            "name": name,
        }
    else:
        unit = {
            "type": "project",
            "id": str(uuid.uuid5(base, f"project/{name}")),
            "name": name,
            "departmentId": str(uuid.uuid5(base, f"department/{department}")),
            "departmentName": department,
        }
    item: dict[str, Any] = {
        "source": "kai",
        "name": name,
        "parentName": department,
        "orgUnit": unit,
        "quotas": [
            {"nodePool": "default", "gpu": {"deserved": 4, "limit": 8, "overQuotaWeight": 1}}
        ],
    }
    item.update(overrides)
    return item


def queue_path(cluster_id: str = CLUSTER_ID) -> str:
    return f"/api/v1/ingest/clusters/{cluster_id}/queues"
