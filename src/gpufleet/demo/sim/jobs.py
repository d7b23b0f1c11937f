"""A simulated workload: what it asks for, where its pods are bound, and its phase history."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import datetime

from gpufleet.core.priorities import BUILTIN_PRIORITY_VALUES, PREEMPTIBLE_BELOW
from gpufleet.demo import assets
from gpufleet.demo.catalog import CATEGORY_PRIORITIES, WorkloadKind
from gpufleet.demo.sim.fleet import GPUS_PER_NODE, Node
from gpufleet.demo.sim.teams import SERVING, Team, Work, submitter
from gpufleet.demo.weighted import pick_one
from gpufleet.schemas.enums import Phase

_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"
# Services and standing work run until someone deletes them.
FOREVER = math.inf


@dataclass(slots=True)
class Pod:
    """One pod of a workload; ``node`` is set while it is bound."""

    uid: str
    name: str
    created_at: datetime
    node: Node | None = None
    devices: list[int] = field(default_factory=list)
    started_at: datetime | None = None
    ip: str | None = None


@dataclass(slots=True)
class Job:
    """One workload of the simulation."""

    id: str
    name: str
    team: Team
    work: Work
    pods: int
    gpus: float  # per pod: whole devices, a fraction of one, or 0
    cpu: float  # cores per pod
    memory_gib: float  # per pod
    priority_class: str
    priority: int
    source: str
    source_api: str | None
    submitted_by: str | None
    image: str
    created_at: datetime
    run_needed: float  # seconds of running until it is done (FOREVER for services)
    fails_after: float | None
    phase: Phase = Phase.CREATING
    since: datetime | None = None
    history: list[tuple[Phase, datetime]] = field(default_factory=list)
    message: str | None = None
    reason: str | None = None
    scheduling: list[dict] | None = None
    ran: float = 0.0
    wait: float = 0.0  # seconds left in a passing phase (Initializing, Updating, ...)
    bound: list[Pod] = field(default_factory=list)
    served: float = 0.0  # requests served (inference)
    failed_requests: float = 0.0
    # Requests served so far at or under each latency bound, per histogram type (inference).
    latencies: dict = field(default_factory=dict)
    restarts: int = 0
    deleted_at: datetime | None = None
    pod_serial: int = 0
    # The revision its pods run (a service's rollouts count up from 1).
    revision: int = 1
    # The phase of pods that ended with the workload (Succeeded, Failed).
    pod_phase: str | None = None
    waits: int = 0
    # Whether its pods are bound and hold what they asked for.
    placed: bool = False
    # The version of its pool when the scheduler last looked at it.
    seen: int = -1

    @property
    def kind(self) -> WorkloadKind:
        return self.work.kind

    @property
    def pool(self) -> str:
        return self.work.pool

    @property
    def cluster(self):
        return self.team.cluster

    @property
    def preemptible(self) -> bool:
        return self.priority < PREEMPTIBLE_BELOW

    @property
    def requested_gpus(self) -> float:
        return self.gpus * self.pods

    @property
    def serving(self) -> bool:
        return self.work.character == SERVING

    @property
    def devices(self) -> int:
        """GPU devices the workload uses (a fraction uses one)."""
        return math.ceil(self.gpus) * self.pods if self.gpus else 0


def _suffix(rng: random.Random) -> str:
    return "".join(pick_one(rng, _BASE36) for _ in range(4))


def _priority_class(rng: random.Random, work: Work) -> str:
    if work.priority_class is not None:
        return work.priority_class
    return CATEGORY_PRIORITIES[work.kind.category].pick(rng)


def _log_uniform(rng: random.Random, low: float, high: float) -> float:
    return low * (high / low) ** rng.random()


def _cpu_and_memory(work: Work, gpus: float) -> tuple[float, float]:
    """Cores and GiB of one pod: they scale with its GPUs, less on the smaller nodes."""
    small = work.pool in ("default", "l40s")
    if gpus >= 1:
        return gpus * (4 if small else 8), gpus * (32 if small else 64)
    return 2.0, 8.0


def submit(rng: random.Random, team: Team, work: Work, at: datetime) -> Job:
    """A new workload of ``team`` doing ``work``, created at ``at``."""
    job_id = assets.random_uuid(rng)
    pods = pick_one(rng, work.pods)
    gpus = min(float(pick_one(rng, work.gpus)), GPUS_PER_NODE)
    cpu, memory = _cpu_and_memory(work, gpus)
    priority_class = _priority_class(rng, work)
    source, source_api, person = submitter(team, work.kind, rng.random())
    endless = work.hours[0] >= 100
    run_needed = FOREVER if endless else _log_uniform(rng, *work.hours) * 3600
    fails = run_needed != FOREVER and rng.random() < work.failure
    topic = pick_one(rng, work.topics)
    stem = pick_one(rng, work.kind.stems)
    # "llama3-8b-chat-serve-x1y2", but not "llama3-8b-chat-chat-x1y2".
    stem_part = "" if stem in topic.split("-") else f"-{stem}"
    return Job(
        id=job_id,
        name=f"{topic}{stem_part}-{_suffix(rng)}",
        team=team,
        work=work,
        pods=pods,
        gpus=gpus,
        cpu=cpu,
        memory_gib=memory,
        priority_class=priority_class,
        priority=BUILTIN_PRIORITY_VALUES[priority_class],
        source=source,
        source_api=source_api,
        submitted_by=person,
        image=pick_one(rng, work.kind.images),
        created_at=at,
        run_needed=run_needed,
        fails_after=run_needed * rng.uniform(0.05, 0.9) if fails else None,
        since=at,
        history=[(Phase.CREATING, at)],
    )
