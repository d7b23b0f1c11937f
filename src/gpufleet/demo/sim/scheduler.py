"""Placing a pending workload: quota first, then room on the nodes of its pool, preempting
lower-priority work (or over-quota work of other projects) when that makes room.

All pods of a workload are bound together or none is (gang scheduling). A pod goes to the
fullest ready node of the pool that has room for it, so whole nodes stay free for large jobs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from gpufleet.demo.sim.fleet import Node
from gpufleet.demo.sim.jobs import Job
from gpufleet.schemas.enums import Phase, PhaseReason

# Phases whose pods the scheduler may evict to make room.
PREEMPTABLE_PHASES = frozenset({Phase.INITIALIZING, Phase.RUNNING, Phase.DEGRADED})
MAX_VICTIMS = 12


@dataclass(frozen=True, slots=True)
class Verdict:
    """Why a workload stays pending (message, reason, scheduling messages), or the workloads
    to preempt for it."""

    message: str
    reason: str | None = None
    scheduling: list[dict] | None = None
    victims: tuple[Job, ...] = ()


class Usage:
    """GPUs each project holds in each pool: all of them, and the non-preemptible part."""

    def __init__(self, jobs: Iterable[Job]) -> None:
        self.held: dict[tuple[str, str], float] = {}
        self.non_preemptible: dict[tuple[str, str], float] = {}
        for job in jobs:
            if job.placed:
                self.add(job, 1)

    def add(self, job: Job, sign: int) -> None:
        """Count a job's GPUs in (sign 1) or out (sign -1)."""
        key = (job.team.project.id, job.pool)
        self.held[key] = self.held.get(key, 0.0) + sign * job.requested_gpus
        if not job.preemptible:
            value = self.non_preemptible.get(key, 0.0) + sign * job.requested_gpus
            self.non_preemptible[key] = value

    def of(self, job: Job) -> tuple[float, float]:
        key = (job.team.project.id, job.pool)
        return self.held.get(key, 0.0), self.non_preemptible.get(key, 0.0)

    def over_quota(self, pool: str, teams: Iterable) -> set[str]:
        """Projects holding more than their deserved GPUs in the pool."""
        return {
            team.project.id
            for team in teams
            if self.held.get((team.project.id, pool), 0.0) > team.quota.get(pool, 0.0) + 1e-9
        }


def quota_verdict(usage: Usage, job: Job) -> Verdict | None:
    """A quota rule that holds the job back now, or None."""
    team, pool, asked = job.team, job.pool, job.requested_gpus
    if asked <= 0:
        return None
    used, non_preemptible = usage.of(job)
    deserved = team.quota.get(pool, 0.0)
    name = team.project.name
    if not job.preemptible and non_preemptible + asked > deserved:
        text = (
            f"Project {name} has {non_preemptible:g} of its {deserved:g} deserved GPUs in node "
            f"pool {pool} in use by non-preemptible workloads; this one asks for {asked:g} more"
        )
        return _quota(text, PhaseReason.NON_PREEMPTIBLE_OVER_QUOTA, "Non-preemptible over quota",
                      pool)  # fmt: skip
    limit = team.limit.get(pool)
    if limit is not None and used + asked > limit:
        text = (
            f"Project {name} would exceed its limit of {limit:g} GPUs in node pool {pool}: "
            f"{used:g} in use, {asked:g} asked"
        )
        return _quota(text, PhaseReason.OVER_LIMIT, "Over limit", pool)
    return None


def _quota(text: str, reason: PhaseReason, short: str, pool: str) -> Verdict:
    entry = {
        "nodePool": pool,
        "phaseReason": reason.value,
        "reason": short,
        "orgType": "PROJECT",
        "userMessage": text,
    }
    return Verdict(text, reason.value, [entry])


def try_bind(job: Job, nodes: list[Node]) -> list[tuple[Node, list[int]]] | None:
    """Bind every pod of the job (fullest fitting node first), or bind none and say None."""
    bound: list[tuple[Node, list[int]]] = []
    for _ in range(job.pods):
        fitting = [n for n in nodes if n.fits(job.gpus, job.cpu, job.memory_gib)]
        if not fitting:
            for node, devices in bound:
                node.release(job.gpus, devices, job.cpu, job.memory_gib)
            return None
        node = max(fitting, key=lambda n: (n.gpu_used, n.cpu_used, n.name))
        bound.append((node, node.take(job.gpus, job.cpu, job.memory_gib)))
    return bound


def capacity_verdict(job: Job, nodes: list[Node]) -> Verdict:
    """What a job that does not fit waits for, as the pool stands now (worded so that it only
    changes when the largest free block on one node does)."""
    ready = [n for n in nodes if n.schedulable]
    widest = max((n.free_devices for n in ready), default=0)
    each = f"{job.gpus:g} GPU" + ("s" if job.gpus != 1 else "")
    pods = f"{job.pods} pod{'s' if job.pods != 1 else ''}"
    text = (
        f"Not enough free resources in node pool {job.pool} for {pods} of {each}: "
        f"at most {widest} whole GPUs are free on one of its {len(ready)} ready nodes"
    )
    return Verdict(text)


def _victim_order(victim: Job, job: Job, over_quota: set[str]) -> tuple:
    # Over-quota projects give back first, then the lowest priority, then the newest.
    return (victim.team.project.id not in over_quota, victim.priority, -victim.since.timestamp())


def preemption(
    job: Job, jobs: list[Job], nodes: list[Node], usage: Usage, over_quota: set[str]
) -> tuple[Job, ...]:
    """Running workloads whose eviction would let the job fit; empty when none would.

    A workload may evict lower-priority preemptible work; within its project's quota it may
    also reclaim what other projects hold beyond theirs."""
    used, _ = usage.of(job)
    within_quota = used + job.requested_gpus <= job.team.quota.get(job.pool, 0.0)
    candidates = [
        victim
        for victim in jobs
        if victim.pool == job.pool
        and victim.cluster is job.cluster
        and victim.phase in PREEMPTABLE_PHASES
        and victim.preemptible
        and victim is not job
        and victim.placed
        and (
            victim.priority < job.priority
            or (within_quota and victim.team.project.id in over_quota - {job.team.project.id})
        )
    ]
    candidates.sort(key=lambda v: _victim_order(v, job, over_quota))
    chosen: list[Job] = []
    for victim in candidates[:MAX_VICTIMS]:
        chosen.append(victim)
        if fits_without(job, chosen, nodes):
            return tuple(chosen)
    return ()


def fits_without(job: Job, victims: list[Job], nodes: list[Node]) -> bool:
    """Whether the job would fit if the victims' pods were gone (nothing is changed)."""
    saved = [(n, list(n.devices), n.cpu_used, n.memory_used) for n in nodes]
    try:
        for victim in victims:
            for pod in victim.bound:
                if pod.node is not None:
                    pod.node.release(victim.gpus, pod.devices, victim.cpu, victim.memory_gib)
        return try_bind(job, nodes) is not None
    finally:
        for node, devices, cpu, memory in saved:
            node.devices, node.cpu_used, node.memory_used = devices, cpu, memory
