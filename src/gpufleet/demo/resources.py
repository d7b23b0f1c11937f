"""Requested and allocated resources of a simulated workload.

Three ways of asking for GPUs are simulated: whole devices (``portion`` with an integer
request), a fraction of one device (``portion`` 0.25 or 0.5) and an amount of GPU memory
(``memory``). A workload holds its allocation only while its pods are placed on nodes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
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


@dataclass(frozen=True, slots=True)
class PodAsk:
    """What one pod asks for, as numbers; a workload of n pods asks for n times as much."""

    gpu_request_type: str | None = None
    # Devices per pod (whole or a fraction), and the burst limit if fractions may burst.
    gpu: float | None = None
    gpu_limit: float | None = None
    gpu_limit_given: bool = False
    gpu_memory_mib: float | None = None
    cpu: float = 0.0
    cpu_limit: float | None = None
    memory_mib: float = 0.0
    memory_limit_mib: float | None = None
    rdma: bool = False

    def wire(self, pods: int) -> dict[str, Any]:
        """The request of ``pods`` such pods in the wire's resource shape."""
        wire: dict[str, Any] = {}
        if self.gpu_request_type:
            wire["gpuRequestType"] = self.gpu_request_type
        if self.gpu is not None:
            wire["gpu"] = {"request": self.gpu * pods}
            if self.gpu_limit_given:
                wire["gpu"]["limit"] = _times(self.gpu_limit, pods)
        if self.gpu_memory_mib is not None:
            wire["gpuMemory"] = {"request": quantity(self.gpu_memory_mib * pods)}
        wire["cpu"] = {"request": self.cpu * pods, "limit": _times(self.cpu_limit, pods)}
        wire["cpuMemory"] = {"request": quantity(self.memory_mib * pods)}
        if self.memory_limit_mib is not None:
            wire["cpuMemory"]["limit"] = quantity(self.memory_limit_mib * pods)
        if self.rdma:
            wire["extendedResources"] = [{"resource": RDMA, "quantity": str(pods)}]
        return wire


def _times(value: float | None, pods: int) -> float | None:
    return None if value is None else value * pods


def _gpu_ask(rng: random.Random, kind: WorkloadKind, pool: NodePool, mode: str) -> PodAsk:
    """One pod's GPU request in the chosen mode."""
    if mode == WHOLE:
        return PodAsk("portion", gpu=float(_gpus_per_pod(rng, kind, pool)))
    if mode == FRACTION:
        fraction = pick_one(rng, (0.25, 0.5, 0.5))
        # Some users allow bursting to a whole device (dynamic GPU fractions).
        limit = 1.0 if rng.random() < 0.3 else None
        return PodAsk("portion", gpu=fraction, gpu_limit=limit, gpu_limit_given=True)
    if mode == MEMORY:
        gib = min(pick_one(rng, (4, 10, 20, 20, 40)), pool.gpu_memory_gib)
        return PodAsk("memory", gpu_memory_mib=gib * 1024)
    return PodAsk()


def _with_cpu_and_memory(rng: random.Random, kind: WorkloadKind, ask: PodAsk) -> PodAsk:
    """CPU and memory scale with the GPUs asked for; multi-pod training may ask for RDMA."""
    gpus_for_cpu = max(1.0, ask.gpu or 1.0)
    cpu = pick_one(rng, (0.5, 1.0, 2.0, 4.0, 8.0)) * gpus_for_cpu
    cpu_limit = cpu * 2 if rng.random() < 0.4 else None
    memory_gib = pick_one(rng, (2, 4, 8, 16, 32, 64)) * int(gpus_for_cpu)
    memory_limit_gib = memory_gib if rng.random() < 0.5 else None
    rdma = kind.multi_pod and kind.shape == "batch" and rng.random() < 0.3
    return replace(
        ask,
        cpu=cpu,
        cpu_limit=cpu_limit,
        memory_mib=memory_gib * 1024,
        memory_limit_mib=None if memory_limit_gib is None else memory_limit_gib * 1024,
        rdma=rdma,
    )


def _allocated_gpus(ask: PodAsk, pods: int, pool: NodePool) -> tuple[float, float]:
    """Devices and device MiB that ``pods`` placed pods hold."""
    if ask.gpu_memory_mib is not None:
        gib = ask.gpu_memory_mib // 1024
        # The scheduler turns a memory request into the matching share of one device.
        return round(gib * pods / pool.gpu_memory_gib, 3), gib * pods * 1024
    if ask.gpu is not None:
        return ask.gpu * pods, ask.gpu * pods * pool.gpu_memory_gib * 1024
    return 0.0, 0.0


def _allocated(ask: PodAsk, pods: int, pool: NodePool) -> dict[str, Any]:
    """What ``pods`` placed pods hold."""
    gpus, gpu_mib = _allocated_gpus(ask, pods, pool)
    allocated: dict[str, Any] = {
        "gpu": float(gpus),
        "gpuMemory": quantity(gpu_mib),
        "cpu": ask.cpu * pods,
        "cpuMemory": quantity(ask.memory_mib * pods),
    }
    if ask.rdma:
        allocated["extendedResources"] = [{"resource": RDMA, "quantity": str(pods)}]
    return allocated


# Pods that are not placed hold nothing.
_NOTHING_HELD = {"gpu": 0.0, "gpuMemory": "0", "cpu": 0.0, "cpuMemory": "0"}


def plan_resources(
    rng: random.Random, kind: WorkloadKind, pool: NodePool, *, holding: bool
) -> ResourcePlan:
    """Requests per pod and for the whole workload; allocated only while ``holding``."""
    requested_pods = _pod_count(rng, kind)
    pods = requested_pods["number"]
    mode = kind.gpu_mode.pick(rng)
    ask = _with_cpu_and_memory(rng, kind, _gpu_ask(rng, kind, pool, mode))
    allocated = _allocated(ask, pods, pool) if holding else dict(_NOTHING_HELD)
    return ResourcePlan(
        pods=pods,
        requested_pods=requested_pods,
        pods_requested=ask.wire(1),
        workload_requested=ask.wire(pods),
        allocated=allocated,
        gpu_mode=mode,
        allocated_gpu=allocated["gpu"],
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
