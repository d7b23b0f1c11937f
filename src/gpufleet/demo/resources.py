"""Requested and allocated resources of a simulated workload.

Three ways of asking for GPUs are simulated: whole devices (``portion`` with an integer
request), a fraction of one device (``portion`` 0.25 or 0.5) and an amount of GPU memory
(``memory``). A workload holds its allocation only while its pods are placed on nodes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from gpufleet.demo.catalog import WorkloadKind
from gpufleet.demo.organisation import NodePool
from gpufleet.demo.weighted import between, pick_one
from gpufleet.schemas.enums import Phase

P = Phase
# Phases in which the workload's pods are bound to nodes and hold their resources.
HOLDING_PHASES = frozenset(
    {
        P.INITIALIZING,
        P.RUNNING,
        P.DEGRADED,
        P.UPDATING,
        P.STOPPING,
        P.TERMINATING,
        P.DELETING,
        P.UNKNOWN,
    }
)
NO_GPU, WHOLE, FRACTION, MEMORY = "none", "whole", "fraction", "memory"
RDMA = "rdma/rdma_shared_device_a"


@dataclass(frozen=True, slots=True)
class ResourcePlan:
    """The resource fields of one workload, in wire shape, plus the totals the row needs."""

    pods: int
    requested_pods: dict[str, int]
    pods_requested: dict[str, Any]
    workload_requested: dict[str, Any]
    allocated: dict[str, Any]
    gpu_mode: str
    allocated_gpu: float


def quantity(mib: float) -> str:
    """A Kubernetes quantity for an amount of MiB: ``20Gi``, ``512Mi`` or ``0``."""
    whole = round(mib)
    if whole == 0:
        return "0"
    if whole % 1024 == 0:
        return f"{whole // 1024}Gi"
    return f"{whole}Mi"


def _pod_count(rng: random.Random, kind: WorkloadKind) -> dict[str, int]:
    if kind.shape == "service" and kind.multi_pod:
        size, groups = pick_one(rng, (2, 2, 4)), pick_one(rng, (1, 1, 2))
        return {"number": size * groups, "min": size, "max": size * groups}
    if kind.multi_pod:
        workers = pick_one(rng, (1, 1, 2, 3, 3, 4, 7, 8, 15))
        return {"number": workers + 1, "min": workers + 1, "max": workers + 1}
    if kind.shape == "service":
        replicas = pick_one(rng, (1, 1, 1, 2, 2, 3, 4))
        return {"number": replicas, "min": 1, "max": max(replicas, 4)}
    if kind.type == "Job" and rng.random() < 0.2:
        parallelism = pick_one(rng, (2, 4))
        return {"number": parallelism, "parallelism": parallelism, "completions": parallelism * 2}
    return {"number": 1}


def _gpus_per_pod(rng: random.Random, kind: WorkloadKind, pool: NodePool) -> int:
    if kind.multi_pod and kind.shape == "batch":
        choices = (1, 2, 4, 8, 8)
    elif kind.shape == "service":
        choices = (1, 1, 1, 2)
    else:
        choices = (1, 1, 1, 2, 4, 8)
    return min(pick_one(rng, choices), pool.gpus_per_node)


def plan_resources(
    rng: random.Random, kind: WorkloadKind, pool: NodePool, *, holding: bool
) -> ResourcePlan:
    """Requests per pod and for the whole workload; allocated only while ``holding``."""
    requested_pods = _pod_count(rng, kind)
    pods = requested_pods["number"]
    mode = kind.gpu_mode.pick(rng)
    device_mib = pool.gpu_memory_gib * 1024
    per_pod: dict[str, Any] = {}
    total: dict[str, Any] = {}
    allocated_gpu = 0.0
    allocated_gpu_mib = 0.0
    if mode == WHOLE:
        gpus = _gpus_per_pod(rng, kind, pool)
        per_pod = {"gpuRequestType": "portion", "gpu": {"request": float(gpus)}}
        total = {"gpuRequestType": "portion", "gpu": {"request": float(gpus * pods)}}
        allocated_gpu, allocated_gpu_mib = gpus * pods, gpus * pods * device_mib
    elif mode == FRACTION:
        fraction = pick_one(rng, (0.25, 0.5, 0.5))
        # Some users allow bursting to a whole device (dynamic GPU fractions).
        limit = 1.0 if rng.random() < 0.3 else None
        per_pod = {"gpuRequestType": "portion", "gpu": {"request": fraction, "limit": limit}}
        total_limit = None if limit is None else limit * pods
        total = {
            "gpuRequestType": "portion",
            "gpu": {"request": fraction * pods, "limit": total_limit},
        }
        allocated_gpu, allocated_gpu_mib = fraction * pods, fraction * pods * device_mib
    elif mode == MEMORY:
        gib = min(pick_one(rng, (4, 10, 20, 20, 40)), pool.gpu_memory_gib)
        per_pod = {"gpuRequestType": "memory", "gpuMemory": {"request": f"{gib}Gi"}}
        total = {"gpuRequestType": "memory", "gpuMemory": {"request": quantity(gib * pods * 1024)}}
        # The scheduler turns a memory request into the matching share of one device.
        allocated_gpu = round(gib * pods / pool.gpu_memory_gib, 3)
        allocated_gpu_mib = gib * pods * 1024

    gpus_for_cpu = max(1.0, (per_pod.get("gpu") or {}).get("request") or 1.0)
    cpu = pick_one(rng, (0.5, 1.0, 2.0, 4.0, 8.0)) * gpus_for_cpu
    cpu_limit = cpu * 2 if rng.random() < 0.4 else None
    memory_gib = pick_one(rng, (2, 4, 8, 16, 32, 64)) * int(gpus_for_cpu)
    memory_limit_gib = memory_gib if rng.random() < 0.5 else None
    per_pod["cpu"] = {"request": cpu, "limit": cpu_limit}
    total["cpu"] = {"request": cpu * pods, "limit": None if cpu_limit is None else cpu_limit * pods}
    per_pod["cpuMemory"] = {"request": f"{memory_gib}Gi"}
    total["cpuMemory"] = {"request": quantity(memory_gib * pods * 1024)}
    if memory_limit_gib is not None:
        per_pod["cpuMemory"]["limit"] = f"{memory_limit_gib}Gi"
        total["cpuMemory"]["limit"] = quantity(memory_limit_gib * pods * 1024)
    if kind.multi_pod and kind.shape == "batch" and rng.random() < 0.3:
        per_pod["extendedResources"] = [{"resource": RDMA, "quantity": "1"}]
        total["extendedResources"] = [{"resource": RDMA, "quantity": str(pods)}]

    if not holding:
        allocated_gpu = allocated_gpu_mib = 0.0
    allocated: dict[str, Any] = {
        "gpu": float(allocated_gpu),
        "gpuMemory": quantity(allocated_gpu_mib),
        "cpu": cpu * pods if holding else 0.0,
        "cpuMemory": quantity(memory_gib * pods * 1024) if holding else "0",
    }
    if holding and "extendedResources" in total:
        allocated["extendedResources"] = total["extendedResources"]
    return ResourcePlan(
        pods=pods,
        requested_pods=requested_pods,
        pods_requested=per_pod,
        workload_requested=total,
        allocated=allocated,
        gpu_mode=mode,
        allocated_gpu=float(allocated_gpu),
    )


def running_pods(rng: random.Random, phase: Phase, pods: int) -> int:
    """How many of the workload's pods are Running in ``phase``."""
    if phase in (P.RUNNING, P.UPDATING):
        return pods
    if phase == P.DEGRADED:
        return between(rng, 0, pods - 1)
    if phase in (P.STOPPING, P.TERMINATING, P.DELETING):
        return between(rng, 0, pods)
    return 0


def idle_gpus(rng: random.Random, phase: Phase, allocated_gpu: float) -> tuple[int, float] | None:
    """(idleGpus, idleAllocatedGpus) for some busy GPU workloads; never above the allocation."""
    if phase not in (P.RUNNING, P.DEGRADED, P.UPDATING) or allocated_gpu <= 0:
        return None
    if rng.random() >= 0.25:
        return None
    idle = round(allocated_gpu * pick_one(rng, (0.25, 0.5, 1.0)), 3)
    return int(idle), idle
