"""The simulation: every 30 simulated seconds, nodes come and go, workloads advance one
phase at most, teams submit new work and the scheduler places what it can.

A ``Step`` is what changed in one tick, for the reporter: the workloads whose record changed,
the ones deleted, Kubernetes events, nodes whose state changed, and (when asked) the metric
samples of the tick. The random stream is seeded once, so a seed and a start time give the
same fleet every time; samples come from streams of their own, so how often they are taken
changes nothing else.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from gpufleet.demo import assets
from gpufleet.demo.sim import records, serving
from gpufleet.demo.sim.fleet import Node, build_nodes
from gpufleet.demo.sim.jobs import FOREVER, Job, Pod, submit
from gpufleet.demo.sim.lifecycle import HOLDING, SAMPLED, is_legal
from gpufleet.demo.sim.samples import job_samples
from gpufleet.demo.sim.scheduler import (
    PREEMPTABLE_PHASES,
    Usage,
    Verdict,
    capacity_verdict,
    preemption,
    quota_verdict,
    try_bind,
)
from gpufleet.demo.sim.teams import TEAMS, Team, daily_rhythm
from gpufleet.demo.weighted import Weighted, between, pick_one
from gpufleet.schemas.enums import Phase

P = Phase
TICK = timedelta(seconds=30)
TICK_SECONDS = TICK.total_seconds()
# Chance per tick that one ready node of a cluster stops reporting (about twice a day).
NODE_FAILURE_PER_TICK = 30 / (12 * 3600)
# Chance per tick that a running service rolls out a new revision, or a pod crashes.
UPDATE_PER_TICK = 30 / (10 * 3600)
CRASH_PER_TICK = 30 / (40 * 3600)
# How long a stopped workspace waits before its owner resumes or deletes it (hours), the
# chance that it is resumed, and how long it then runs (hours).
STOPPED_HOURS = (1.0, 10.0)
RESUMED = 0.4
RESUMED_HOURS = (1.0, 6.0)


@dataclass
class Step:
    """What one tick changed."""

    at: datetime
    workloads: list[dict] = field(default_factory=list)
    deleted: list[tuple[str, str]] = field(default_factory=list)  # (cluster id, workload id)
    events: list[tuple[str, dict]] = field(default_factory=list)  # (cluster id, event)
    nodes: list[Node] = field(default_factory=list)
    samples: list[tuple[str, dict]] = field(default_factory=list)  # (cluster id, sample)


class Simulation:
    """The demo fleet and its workloads, advanced one tick at a time."""

    def __init__(
        self,
        seed: int,
        start: datetime,
        teams: tuple[Team, ...] = TEAMS,
        *,
        warm_up: timedelta = timedelta(0),
    ) -> None:
        """The fleet at ``start``: its standing work, or with ``warm_up`` whatever that much
        simulated time before ``start`` left running (see ``_warm_up``)."""
        if start.tzinfo is None:
            raise ValueError("the start must be a timezone-aware datetime")
        if warm_up % TICK:
            raise ValueError("the warm-up must be a whole number of ticks")
        self.seed = seed
        self.start = start
        self.now = start - warm_up
        self.teams = teams
        self.rng = random.Random(f"gpufleet-demo-sim/{seed}/{start.isoformat()}")
        self.nodes = build_nodes()
        self.jobs: dict[str, Job] = {}
        self.finished: dict[str, Job] = {}
        self._work = {team.project.id: Weighted((w, w.weight) for w in team.work) for team in teams}
        self._changed: dict[str, Job] = {}
        self._step = Step(start)
        self._node_back: dict[str, datetime] = {}
        self._event_serial = 0
        # Bumped when a pool's capacity or holdings change; a pending workload is looked at
        # again only then (its reason to wait cannot have changed otherwise).
        self._pool_versions: dict[tuple[str, str], int] = {}
        # What the warm-up did to the workloads still there at the start, tick by tick.
        self.before_start: list[Step] = []
        for team in teams:
            for work in (*team.standing, *team.queued):
                self._add(submit(self.rng, team, work, self.now))
        if warm_up:
            self._warm_up()

    def _warm_up(self) -> None:
        """Run up to the start, then keep only what is alive there. Work that ended before
        the start is dropped (the time before the start is the usage history's); for work
        that lives on, ``before_start`` keeps its records and events of the warm-up, so it is
        reported with its whole past: created, scheduled, started when it was."""
        created = [records.workload(job, self.now) for job in self.jobs.values()]
        steps = [Step(self.now, workloads=created)]
        while self.now < self.start:
            steps.append(self.step(sample=False))
        self.finished.clear()
        alive = self.jobs.keys()
        for step in steps:
            kept = Step(
                step.at,
                workloads=[record for record in step.workloads if record["id"] in alive],
                events=[(c, e) for c, e in step.events if e["workloadId"] in alive],
            )
            if kept.workloads or kept.events:
                self.before_start.append(kept)
        self._changed = {}
        self._step = Step(self.start)

    # -- the tick ---------------------------------------------------------------------------

    def step(self, *, sample: bool = False, pods: bool = True) -> Step:
        """Advance one tick; with ``sample``, the running workloads' samples of this tick (and
        their pods' unless ``pods`` is false)."""
        self.now += TICK
        self._step = Step(self.now)
        self._changed = {}
        self._nodes_come_and_go()
        for job in list(self.jobs.values()):
            self._advance(job)
        self._arrivals()
        self._schedule()
        step = self._step
        step.workloads = [records.workload(job, self.now) for job in self._changed.values()]
        if sample:
            for job in self.jobs.values():
                if job.phase in SAMPLED:
                    cluster = job.cluster.id
                    step.samples.extend(
                        (cluster, s) for s in job_samples(job, self.now) if pods or "podId" not in s
                    )
        return step

    def opening(self) -> Step:
        """The state at the start: every node and the workloads there."""
        step = Step(self.now, nodes=list(self.nodes))
        step.workloads = [records.workload(job, self.now) for job in self.jobs.values()]
        return step

    # -- transitions ------------------------------------------------------------------------

    def _move(self, job: Job, phase: Phase, message: str | None = None) -> None:
        if not is_legal(job.kind, job.phase, phase):
            raise AssertionError(f"{job.kind.type} {job.name}: {job.phase} → {phase} is illegal")
        job.phase, job.since, job.message = phase, self.now, message
        job.reason = job.scheduling = None
        job.seen = -1
        job.history.append((phase, self.now))
        self._changed[job.id] = job

    def _add(self, job: Job) -> None:
        self.jobs[job.id] = job
        self._changed[job.id] = job

    def _event(
        self,
        job: Job,
        reason: str,
        message: str,
        *,
        warning: bool = False,
        pod: Pod | None = None,
        key: str | None = None,
        count: int = 1,
    ) -> None:
        """A Kubernetes event about the job (or one of its pods); ``key`` names a repeating
        event, reported again with its count."""
        if key is None:
            self._event_serial += 1
            key = f"{self._event_serial}"
        event = records.event(job, self.now, reason, message, warning, pod, key, count)
        self._step.events.append((job.cluster.id, event))

    def _finish(self, job: Job) -> None:
        self.jobs.pop(job.id, None)
        self.finished[job.id] = job

    def _unbind(self, job: Job, pod_phase: str | None = None) -> None:
        """Release what the pods hold; they end (``pod_phase``) or are gone (None)."""
        if job.placed:
            self._changed_pool(job.cluster.id, job.pool)
        job.placed = False
        for pod in job.bound:
            if pod.node is not None:
                pod.node.release(job.gpus, pod.devices, job.cpu, job.memory_gib)
        if pod_phase is None:
            job.bound = []
        else:
            for pod in job.bound:
                pod.devices = []
            job.pod_phase = pod_phase

    def _advance(self, job: Job) -> None:
        elapsed = (self.now - job.since).total_seconds()
        phase = job.phase
        if job.since == self.now:
            return
        if phase in SAMPLED:
            job.ran += TICK_SECONDS
            if job.serving:
                serving.serve(job, self.now, TICK_SECONDS)
        handler = _HANDLERS.get(phase)
        if handler is not None:
            handler(self, job, elapsed)

    def _creating(self, job: Job, elapsed: float) -> None:
        self._move(job, P.PENDING, "Waiting for the scheduler")
        job.bound = [self._new_pod(job, n) for n in range(job.pods)]

    def _initializing(self, job: Job, elapsed: float) -> None:
        if elapsed < job.wait:
            return
        if job.fails_after is not None and job.fails_after < 60 and self.rng.random() < 0.5:
            self._fail(job, f'Failed to pull image "{job.image}": manifest unknown', job.bound[0])
            return
        # Every pod's container starts, the workers' as the master's (each has its event).
        for pod in job.bound:
            pod.started_at = self.now
            self._event(job, "Started", "Started container main", pod=pod)
        self._move(job, P.RUNNING)

    def _running(self, job: Job, elapsed: float) -> None:
        shape = job.kind.shape
        if job.fails_after is not None and job.ran >= job.fails_after:
            self._fail(job, pick_one(self.rng, records.FAILURES), job.bound[0])
        elif job.ran >= job.run_needed:
            self._done(job, shape)
        elif shape == "service" and self.rng.random() < UPDATE_PER_TICK:
            job.wait = between(self.rng, 60, 240)
            self._event(job, "ScalingReplicaSet", "Rolling out a new revision")
            self._move(job, P.UPDATING, "Rolling out a new revision")
        elif shape != "interactive" and self.rng.random() < CRASH_PER_TICK:
            job.wait = between(self.rng, 60, 420)
            job.restarts += 1
            message = "Back-off restarting failed container main"
            self._event(job, "BackOff", message, warning=True, pod=job.bound[-1])
            self._move(job, P.DEGRADED, f"CrashLoopBackOff: {message}")

    def _done(self, job: Job, shape: str) -> None:
        if shape == "batch":
            self._unbind(job, "Succeeded")
            self._move(job, P.COMPLETED)
            self._event(job, "Completed", "All pods completed successfully")
            self._finish(job)
        elif job.kind.suspendable and shape == "interactive":
            job.wait = between(self.rng, 10, 60)
            self._move(job, P.STOPPING, f"Stopped by {job.submitted_by or 'its owner'}")
        else:
            job.wait = between(self.rng, 10, 60)
            self._move(job, P.DELETING, f"Deleted by {job.submitted_by or 'its owner'}")

    def _degraded(self, job: Job, elapsed: float) -> None:
        if elapsed < job.wait:
            return
        if job.kind.shape == "batch" and job.restarts >= 3:
            # The controller gives up on the workload itself, not on one of its pods.
            self._fail(job, "Job has reached the specified backoff limit", None)
        else:
            self._move(job, P.RUNNING)

    def _fail(self, job: Job, message: str, pod: Pod | None) -> None:
        """The job fails: a ``Failed`` event saying why (about ``pod``, or the workload), its
        pods end Failed and it moves to Failed with the same message."""
        self._event(job, "Failed", message, warning=True, pod=pod)
        self._unbind(job, "Failed")
        self._move(job, P.FAILED, message)
        self._finish(job)

    def _updating(self, job: Job, elapsed: float) -> None:
        if elapsed >= job.wait:
            self._roll_out(job)
            self._move(job, P.RUNNING)

    def _roll_out(self, job: Job) -> None:
        """The new revision's pods take the old ones' places (a fleet without GPUs to spare for
        a surge replaces in place), each scheduled and started anew under its new name."""
        job.revision += 1
        namespace = job.team.project.namespace
        for number, old in enumerate(job.bound):
            pod = self._new_pod(job, number)
            pod.node, pod.devices, pod.ip = old.node, old.devices, records.pod_ip(self.rng)
            pod.started_at = self.now
            job.bound[number] = pod
            message = f"Successfully assigned {namespace}/{pod.name} to {pod.node.name}"
            self._event(job, "Scheduled", message, pod=pod)
            self._event(job, "Started", "Started container main", pod=pod)

    def _terminating(self, job: Job, elapsed: float) -> None:
        if elapsed < job.wait:
            return
        self._unbind(job)
        self._move(job, P.PENDING, "Waiting to be scheduled again")
        job.bound = [self._new_pod(job, n) for n in range(job.pods)]

    def _stopping(self, job: Job, elapsed: float) -> None:
        if elapsed < job.wait:
            return
        self._unbind(job)
        self._move(job, P.STOPPED, job.message)
        job.wait = self.rng.uniform(*STOPPED_HOURS) * 3600

    def _stopped(self, job: Job, elapsed: float) -> None:
        if elapsed < job.wait:
            return
        if self.rng.random() < RESUMED:
            job.ran = 0.0
            job.run_needed = self.rng.uniform(*RESUMED_HOURS) * 3600
            self._move(job, P.RESUMING, f"Resumed by {job.submitted_by or 'its owner'}")
        else:
            self._delete(job)

    def _resuming(self, job: Job, elapsed: float) -> None:
        self._move(job, P.PENDING, "Waiting for the scheduler")
        job.bound = [self._new_pod(job, n) for n in range(job.pods)]

    def _deleting(self, job: Job, elapsed: float) -> None:
        if elapsed >= job.wait:
            self._delete(job)

    def _delete(self, job: Job) -> None:
        """Release the job's pods and delete it: a last record says its pods are gone, and the
        deletion follows at the same simulated moment."""
        self._unbind(job)
        job.deleted_at = self.now
        self._changed[job.id] = job
        self._step.deleted.append((job.cluster.id, job.id))
        self._finish(job)

    # -- pods, nodes and arrivals -----------------------------------------------------------

    def _new_pod(self, job: Job, number: int) -> Pod:
        job.pod_serial += 1
        uid = assets.random_uuid(self.rng)
        return Pod(uid, records.pod_name(job, number, job.pod_serial, uid), self.now)

    def _nodes_come_and_go(self) -> None:
        for node in self.nodes:
            back = self._node_back.get(node.id)
            if back is not None and self.now >= back:
                del self._node_back[node.id]
                node.ready = True
                self._changed_pool(node.cluster.id, node.pool)
                self._step.nodes.append(node)
        for cluster_nodes in _by_cluster(self.nodes).values():
            if self.rng.random() >= NODE_FAILURE_PER_TICK:
                continue
            candidates = [n for n in cluster_nodes if n.schedulable and n.id not in self._node_back]
            # A node that runs work, when there is one: an idle node's outage shows nowhere
            # but in the node list, and the demo is there to show what an outage does.
            busy = self._busy_nodes()
            node = pick_one(self.rng, [n for n in candidates if n.id in busy] or candidates)
            node.ready = False
            self._changed_pool(node.cluster.id, node.pool)
            self._node_back[node.id] = self.now + timedelta(minutes=between(self.rng, 10, 60))
            self._step.nodes.append(node)
            self._evict_from(node)

    def _changed_pool(self, cluster_id: str, pool: str) -> None:
        """Something that decides scheduling changed in the pool: look at its queue again."""
        key = (cluster_id, pool)
        self._pool_versions[key] = self._pool_versions.get(key, 0) + 1

    def _busy_nodes(self) -> set[str]:
        return {
            pod.node.id
            for job in self.jobs.values()
            if job.phase in HOLDING
            for pod in job.bound
            if pod.node is not None
        }

    def _evict_from(self, node: Node) -> None:
        """Every pod on a node that stopped reporting gets a ``NodeNotReady`` event (as the
        node controller marks them not ready); running workloads among them are rescheduled."""
        message = f"Node {node.name} is not ready; its pods are rescheduled"
        for job in list(self.jobs.values()):
            on_node = [pod for pod in job.bound if pod.node is node]
            if not on_node or job.phase not in HOLDING:
                continue
            for pod in on_node:
                self._event(job, "NodeNotReady", message, warning=True, pod=pod)
            if job.phase in (P.INITIALIZING, P.RUNNING, P.DEGRADED, P.UPDATING):
                job.wait = TICK_SECONDS
                self._move(job, P.TERMINATING, message)

    def _arrivals(self) -> None:
        rhythm = daily_rhythm(self.now)
        for team in self.teams:
            if self.rng.random() < team.rate * rhythm * TICK_SECONDS / 3600:
                work = self._work[team.project.id].pick(self.rng)
                self._add(submit(self.rng, team, work, self.now))

    def _schedule(self) -> None:
        pending = [
            j
            for j in self.jobs.values()
            if j.phase == P.PENDING
            and j.since < self.now
            and j.seen != self._pool_versions.get((j.cluster.id, j.pool), 0)
        ]
        if not pending:
            return
        usage = Usage(self.jobs.values())
        pools = _by_pool(self.nodes)
        running = _preemptable_by_pool(self.jobs.values())
        pending.sort(key=lambda j: (-j.priority, j.created_at, j.id))
        for job in pending:
            key = (job.cluster.id, job.pool)
            job.seen = self._pool_versions.get(key, 0)
            nodes = pools[key]
            verdict = quota_verdict(usage, job)
            if verdict is None:
                placed = try_bind(job, nodes)
                if placed is not None:
                    self._bind(job, placed, usage)
                    continue
                teams = (t for t in self.teams if t.cluster is job.cluster)
                over = usage.over_quota(job.pool, teams)
                victims = preemption(job, running.get(key, []), nodes, usage, over)
                if victims:
                    self._preempt(job, victims)
                    verdict = Verdict(
                        f"Waiting for {len(victims)} preempted workload"
                        f"{'s' if len(victims) != 1 else ''} to release their GPUs in node pool "
                        f"{job.pool}"
                    )
                else:
                    verdict = capacity_verdict(job, nodes)
            self._wait(job, verdict)

    def _bind(self, job: Job, placed: list[tuple[Node, list[int]]], usage: Usage) -> None:
        for pod, (node, devices) in zip(job.bound, placed, strict=True):
            pod.node, pod.devices = node, devices
            pod.ip = records.pod_ip(self.rng)
            message = (
                f"Successfully assigned {job.team.project.namespace}/{pod.name} to {node.name}"
            )
            self._event(job, "Scheduled", message, pod=pod)
        usage.add(job, 1)
        job.placed = True
        self._changed_pool(job.cluster.id, job.pool)
        job.wait = between(self.rng, 30, 150)
        self._move(job, P.INITIALIZING, f'Pulling image "{job.image}"')

    def _preempt(self, job: Job, victims: tuple[Job, ...]) -> None:
        for victim in victims:
            message = f"Preempted by {job.name} (priority {job.priority}) in node pool {job.pool}"
            pod = next(p for p in victim.bound if p.node is not None)
            self._event(victim, "Preempted", message, warning=True, pod=pod)
            victim.wait = TICK_SECONDS
            self._move(victim, P.TERMINATING, message)

    def _wait(self, job: Job, verdict: Verdict) -> None:
        """Keep the job pending with the reason true now; report it when the reason changed."""
        if (job.message, job.reason) == (verdict.message, verdict.reason):
            return
        job.message, job.reason, job.scheduling = (
            verdict.message,
            verdict.reason,
            verdict.scheduling,
        )
        self._changed[job.id] = job
        job.waits += 1
        self._event(
            job,
            "FailedScheduling",
            verdict.message,
            warning=True,
            key=f"wait-{job.id}",
            count=job.waits,
        )


_HANDLERS = {
    P.CREATING: Simulation._creating,
    P.INITIALIZING: Simulation._initializing,
    P.RUNNING: Simulation._running,
    P.DEGRADED: Simulation._degraded,
    P.UPDATING: Simulation._updating,
    P.TERMINATING: Simulation._terminating,
    P.STOPPING: Simulation._stopping,
    P.STOPPED: Simulation._stopped,
    P.RESUMING: Simulation._resuming,
    P.DELETING: Simulation._deleting,
}


def _by_cluster(nodes: list[Node]) -> dict[str, list[Node]]:
    grouped: dict[str, list[Node]] = {}
    for node in nodes:
        grouped.setdefault(node.cluster.id, []).append(node)
    return grouped


def _preemptable_by_pool(jobs) -> dict[tuple[str, str], list[Job]]:
    """Running preemptible workloads of each (cluster, pool): the candidates for eviction."""
    grouped: dict[tuple[str, str], list[Job]] = {}
    for job in jobs:
        if job.placed and job.preemptible and job.phase in PREEMPTABLE_PHASES:
            grouped.setdefault((job.cluster.id, job.pool), []).append(job)
    return grouped


def _by_pool(nodes: list[Node]) -> dict[tuple[str, str], list[Node]]:
    grouped: dict[tuple[str, str], list[Node]] = {}
    for node in nodes:
        grouped.setdefault((node.cluster.id, node.pool), []).append(node)
    return grouped


__all__ = ["FOREVER", "HOLDING", "TICK", "Simulation", "Step"]
