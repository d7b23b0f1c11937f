"""What the simulated agent reports: workload records with their pods, Kubernetes events,
nodes and scheduler queues, in the shapes of the ingest API."""

from __future__ import annotations

import random
from datetime import datetime
from hashlib import sha256
from typing import Any
from uuid import NAMESPACE_URL, uuid5

from gpufleet.core.roles import TENANT_ID
from gpufleet.core.times import format_rfc3339
from gpufleet.demo import assets
from gpufleet.demo.organisation import DEPARTMENTS
from gpufleet.demo.resources import PodAsk
from gpufleet.demo.sim.fleet import GPU_MEMORY_GIB, GPU_TYPES, GPUS_PER_NODE, Node
from gpufleet.demo.sim.jobs import Job, Pod
from gpufleet.demo.sim.lifecycle import HOLDING
from gpufleet.demo.sim.teams import DEPARTMENT_QUOTAS, Team, daily_rhythm
from gpufleet.schemas.enums import TERMINAL_PHASES, Phase

P = Phase
GIB = 2**30
FAILURES = (
    "Container 'main' was killed: it exceeded its memory limit (OOMKilled)",
    "Container 'main' exited with code 1",
    "NCCL error in ProcessGroupNCCL.cpp: unhandled system error",
    "CUDA error: an illegal memory access was encountered",
    "Le modèle n'a pas pu être chargé : fichier « weights.safetensors » introuvable",
)
_RUNNING_PODS = frozenset({P.RUNNING, P.UPDATING})


def iso(moment: datetime) -> str:
    return format_rfc3339(moment)


# The characters Kubernetes uses for generated name suffixes and pod-template hashes (no
# vowels, no 0/1/3, so no words and no look-alikes).
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
# Controllers that name their pods after a ReplicaSet: the pod-template hash, then a suffix.
_REPLICA_SETS = frozenset({"Deployment", "NIMService"})
# Kubeflow training operators whose pods here are all workers, numbered from 0.
_KUBEFLOW_WORKERS = frozenset({"TFJob", "JAXJob", "MPIJob"})


def _generated(seed: str, length: int) -> str:
    """``length`` characters of the alphabet Kubernetes generates names from, fixed by
    ``seed`` (a pod uid, a workload id), as random as the uid it comes from."""
    number = int.from_bytes(sha256(seed.encode()).digest()[:12])
    letters = []
    for _ in range(length):
        number, index = divmod(number, len(_NAME_ALPHABET))
        letters.append(_NAME_ALPHABET[index])
    return "".join(letters)


def pod_name(job: Job, number: int, serial: int, uid: str) -> str:
    """Pod ``number`` of the job (its ``serial``-th pod, a recreated one after ``job.pods``),
    named as the kind's controller names it: a random suffix where the controller generates
    the name (Jobs, ReplicaSets, Ray), an ordinal where it keeps one (StatefulSets, Kubeflow
    replicas, Run:ai's own workloads, leader-worker groups)."""
    name, kind = job.name, job.kind.type
    random5 = _generated(uid, 5)
    generation = (serial - 1) // max(job.pods, 1)
    if kind in ("Distributed", "PyTorchJob", "XGBoostJob"):
        return f"{name}-master-0" if number == 0 else f"{name}-worker-{number - 1}"
    if kind == "DistributedInference":
        # One leader-worker group: the leader is ``<name>-0``, its workers ``<name>-0-<n>``.
        return f"{name}-0" if number == 0 else f"{name}-0-{number}"
    if kind in _KUBEFLOW_WORKERS:
        return f"{name}-worker-{number}"
    if kind in ("Workspace", "Training"):
        # Run:ai's workloads: ``<name>-<pod index>-<attempt>``.
        return f"{name}-{number}-{generation}"
    if kind in ("StatefulSet", "Notebook", "LeaderWorkerSet"):
        return f"{name}-{number}"
    if kind == "Pod":
        return name if job.pods == 1 else f"{name}-{number}"
    # A ReplicaSet's pod-template hash: one per revision of the workload.
    template = _generated(job.id if job.revision == 1 else f"{job.id}/{job.revision}", 10)
    if kind in _REPLICA_SETS:
        return f"{name}-{template}-{random5}"
    if kind == "Inference":
        # Knative: the revision's Deployment, ``<service>-00001-deployment``.
        return f"{name}-{job.revision:05d}-deployment-{template}-{random5}"
    if kind == "InferenceService":
        return f"{name}-predictor-{template}-{random5}"
    if kind == "RayCluster":
        role = "head" if number == 0 else "gpu-group-worker"
        return f"{name}-{role}-{random5}"
    if kind == "RayJob":
        role = "head" if number == 0 else "gpu-group-worker"
        return f"{name}-raycluster-{_generated(job.id, 5)}-{role}-{random5}"
    if kind == "JobSet":
        return f"{name}-workers-0-{number}-{random5}"
    # A Job's pods: ``<job>-<5 random characters>``.
    return f"{name}-{random5}"


def pod_ip(rng: random.Random) -> str:
    return f"10.{rng.randint(64, 127)}.{rng.randint(0, 255)}.{rng.randint(2, 254)}"


def service_load(moment: datetime) -> float:
    """Demand on a service now: the day's rhythm, never quite zero."""
    return 0.15 + 0.75 * daily_rhythm(moment)


def _ask(job: Job) -> PodAsk:
    gib = job.memory_gib * 1024
    if job.gpus <= 0:
        return PodAsk(cpu=job.cpu, memory_mib=gib)
    return PodAsk("portion", gpu=job.gpus, cpu=job.cpu, memory_mib=gib)


def _allocated(job: Job, pods: int) -> dict[str, Any]:
    gpu_mib = job.gpus * pods * GPU_MEMORY_GIB[job.pool] * 1024
    ask = _ask(job).wire(pods)
    return {
        "gpu": float(job.gpus * pods),
        "gpuMemory": f"{round(gpu_mib)}Mi" if gpu_mib else "0",
        "cpu": ask["cpu"]["request"],
        "cpuMemory": ask["cpuMemory"]["request"],
    }


_NOTHING_HELD = {"gpu": 0.0, "gpuMemory": "0", "cpu": 0.0, "cpuMemory": "0"}


def pod_phase(job: Job, pod: Pod) -> str:
    if job.pod_phase is not None:
        return job.pod_phase
    if pod.node is None:
        return "Pending"
    return "Running" if pod.started_at is not None else "Pending"


def _pod(job: Job, pod: Pod) -> dict[str, Any]:
    phase = pod_phase(job, pod)
    record: dict[str, Any] = {
        "name": pod.name,
        "uid": pod.uid,
        "phase": phase,
        "nodepool": job.pool,
        "requestedNodePools": [job.pool],
        "priorityClassName": job.priority_class,
        "createdAt": iso(pod.created_at),
        "containers": [{"name": "main", "image": job.image}],
        "requestedResources": _ask(job).wire(1),
    }
    if pod.node is not None:
        record["nodeName"] = pod.node.name
        record["ip"] = pod.ip
        record["gpuIndices"] = [str(i) for i in pod.devices]
        record["allocatedResources"] = _allocated(job, 1)
        if pod.started_at is not None:
            record["containers"][0]["startedAt"] = iso(pod.started_at)
    return record


def _conditions(job: Job) -> list[dict[str, Any]]:
    at = iso(job.since)
    result = [{"type": "Created", "status": "True", "lastTransitionTime": iso(job.created_at)}]
    scheduled = next((t for p, t in reversed(job.history) if p == P.INITIALIZING), None)
    if job.phase == P.PENDING:
        result.append({"type": "PodScheduled", "status": "False", "lastTransitionTime": at,
                       "reason": "Unschedulable", "message": job.message or ""})  # fmt: skip
    elif scheduled is not None:
        result.append({"type": "PodScheduled", "status": "True",
                       "lastTransitionTime": iso(scheduled)})  # fmt: skip
    if job.phase in _RUNNING_PODS:
        result.append({"type": "Ready", "status": "True", "lastTransitionTime": at})
    elif job.phase == P.COMPLETED:
        result.append({"type": "Complete", "status": "True", "lastTransitionTime": at})
    elif job.phase == P.FAILED:
        result.append({"type": "Failed", "status": "True", "lastTransitionTime": at,
                       "message": job.message or ""})  # fmt: skip
    return result


def workload(job: Job, observed: datetime) -> dict[str, Any]:
    """The job's record as an agent reports it at ``observed``."""
    project, kind, team = job.team.project, job.kind, job.team
    cluster = team.cluster
    # Released pods hold nothing, whatever the phase (a workload being deleted).
    holding = job.phase in HOLDING and job.placed
    running = sum(1 for pod in job.bound if pod_phase(job, pod) == "Running")
    record: dict[str, Any] = {
        "id": job.id,
        "name": job.name,
        "type": kind.type,
        "category": kind.category,
        "tenantId": TENANT_ID,
        "clusterId": cluster.id,
        "projectId": project.id,
        "projectName": project.name,
        "departmentId": project.department.id,
        "departmentName": project.department.name,
        "namespace": project.namespace,
        "createdAt": iso(job.created_at),
        "observedAt": iso(observed),
        "phase": job.phase.value,
        "phaseUpdatedAt": iso(job.since),
        "k8sPhase": kind.k8s_phase(job.phase),
        "phaseMessage": job.message,
        "phaseReason": job.reason,
        "pendingSchedulingMessages": job.scheduling,
        "priority": job.priority,
        "priorityClassName": job.priority_class,
        "preemptible": job.preemptible,
        "source": job.source,
        "sourceApi": job.source_api,
        "submittedBy": job.submitted_by,
        "images": [job.image],
        "requestedPods": {"number": job.pods},
        "runningPods": running if job.phase in HOLDING else 0,
        "requestedNodePools": [job.pool],
        "currentNodePools": [job.pool] if holding else None,
        "podsRequestedResources": _ask(job).wire(1),
        "workloadRequestedResources": _ask(job).wire(job.pods),
        "allocatedResources": _allocated(job, job.pods) if holding else dict(_NOTHING_HELD),
        "actionsSupport": {"delete": True, "suspend": kind.suspendable},
        "conditions": _conditions(job),
        "pods": [_pod(job, pod) for pod in job.bound],
    }
    if job.phase in TERMINAL_PHASES:
        record["completedAt"] = iso(job.since)
    if kind.frameworks:
        record["distributedFramework"] = kind.frameworks[0]
    if kind.serves_urls:
        record["urls"] = [assets.service_url(job.name, project, cluster)]
    return record


def event(job: Job, at: datetime, reason: str, message: str, warning: bool, pod: Pod | None,
          key: str, count: int) -> dict[str, Any]:  # fmt: skip
    """A Kubernetes event about the job or one of its pods."""
    if pod is not None:
        involved = {"uid": pod.uid, "kind": "Pod", "name": pod.name}
    else:
        involved = {"uid": job.id, "kind": job.kind.type, "name": job.name}
    if reason in ("Scheduled", "FailedScheduling", "Preempted"):
        source = "kai-scheduler"
    elif reason == "NodeNotReady":
        source = "node-controller"
    else:
        source = "kubelet" if pod is not None else f"{job.kind.type.lower()}-controller"
    return {
        "id": str(uuid5(NAMESPACE_URL, f"https://demo.gpufleet.invalid/events/{job.id}/{key}")),
        "workloadId": job.id,
        "createdAt": iso(at),
        "type": "Warning" if warning else "Normal",
        "reason": reason,
        "message": message,
        "source": source,
        "count": max(count, 1),
        "involvedObject": {**involved, "namespace": job.team.project.namespace},
    }


def node(node: Node, observed: datetime, created: datetime) -> dict[str, Any]:
    """A node as the agent reads it from Kubernetes."""
    status = "True" if node.ready else "Unknown"
    reason = "KubeletReady" if node.ready else "NodeStatusUnknown"
    message = (
        "kubelet is posting ready status" if node.ready else "Kubelet stopped posting node status."
    )
    record: dict[str, Any] = {
        "id": node.id,
        "name": node.name,
        "observedAt": iso(observed),
        "createdAt": iso(created),
        "status": "Ready" if node.ready else "NotReady",
        "unschedulable": node.cordoned,
        "nodePool": node.pool,
        "gpuType": GPU_TYPES[node.pool],
        "gpuCount": GPUS_PER_NODE,
        "allocatableGpus": float(GPUS_PER_NODE),
        "gpuMemoryBytes": node.gpu_memory_gib * GIB,
        "cpuCores": float(node.cpu_cores),
        "allocatableCpuCores": float(node.cpu_cores) - 2,
        "memoryBytes": int(node.memory_gib * GIB),
        "allocatableMemoryBytes": int((node.memory_gib - 8) * GIB),
        "conditions": [{"type": "Ready", "status": status, "reason": reason, "message": message}],
    }
    if node.cordoned:
        record["taints"] = [{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]
    return record


def _quota(pool: str, deserved: float, limit: float | None, weight: float) -> dict[str, Any]:
    return {
        "nodePool": pool,
        "gpu": {"deserved": deserved, "limit": -1 if limit is None else limit,
                "overQuotaWeight": weight},
    }  # fmt: skip


def queues(teams: tuple[Team, ...], cluster_id: str, observed: datetime) -> dict[str, Any]:
    """The KAI queues of one cluster: one per department and one per project under it. A
    department is guaranteed its projects' quotas added up, unless DEPARTMENT_QUOTAS says
    otherwise."""
    result = []
    for department in DEPARTMENTS:
        if department.cluster.id != cluster_id:
            continue
        members = [t for t in teams if t.project.department is department]
        pools = sorted({pool for team in members for pool in team.quota})
        own = DEPARTMENT_QUOTAS.get(department.id, {})
        result.append({
            "source": "kai",
            "name": department.name,
            "orgUnit": {"type": "department", "id": department.id, "name": department.name},
            "quotas": [_quota(pool, own.get(pool, sum(t.quota.get(pool, 0) for t in members)),
                              None, 1)
                       for pool in pools],
        })  # fmt: skip
        for team in members:
            project = team.project
            result.append({
                "source": "kai",
                "name": project.name,
                "parentName": department.name,
                "orgUnit": {"type": "project", "id": project.id, "name": project.name,
                            "departmentId": department.id, "departmentName": department.name,
                            "namespace": project.namespace},
                "quotas": [_quota(pool, deserved, team.limit.get(pool), team.over_quota_weight)
                           for pool, deserved in sorted(team.quota.items())],
            })  # fmt: skip
    return {"observedAt": iso(observed), "queues": result}
