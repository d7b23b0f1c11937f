"""Simulated workloads in wire shape, each drawn from its own seeded random stream.

Workload number ``index`` of seed ``seed`` is the same wherever it is generated (whatever the
batch size), given the same anchor time. Each comes as its wire document, which validates as
``WorkloadDetailed``, and the time it spent pending and running before its current phase.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from gpufleet.core.priorities import BUILTIN_PRIORITY_VALUES, PREEMPTIBLE_BELOW
from gpufleet.core.roles import TENANT_ID
from gpufleet.demo import assets, status_messages
from gpufleet.demo.catalog import (
    CATEGORY_PRIORITIES,
    KIND_CHOICE,
    KINDS_BY_PHASE,
    TOPICS,
    WorkloadKind,
)
from gpufleet.demo.organisation import (
    OPERATORS,
    PROJECT_CHOICE,
    SUBMITTERS,
    NodePool,
    Project,
)
from gpufleet.demo.resources import HOLDING_PHASES, idle_gpus, plan_resources, running_pods
from gpufleet.demo.timeline import DELETED_PHASES, simulate_timeline
from gpufleet.demo.weighted import Weighted, pick_one
from gpufleet.schemas.enums import Phase
from gpufleet.store.workload_documents import SecondsBefore

DELETED_FRACTION = 0.05
# The first workloads of every seeding run take each phase in turn, so even a small demo
# shows all of them.
GUARANTEED_PHASES = tuple(Phase)
_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"
# A deleted workload was last in one of these phases, as often as the kind is in each.
_DELETED_PHASE_CHOICE = {
    kind.type: Weighted((phase, kind.phase_weights.get(phase, 0)) for phase in DELETED_PHASES)
    for kind in KIND_CHOICE.values
}


@dataclass(frozen=True, slots=True)
class DemoWorkload:
    """A simulated workload: its wire document and its history before the current phase."""

    wire: dict[str, Any]
    before: SecondsBefore


def workload_rng(seed: int, index: int) -> random.Random:
    """The random stream of workload ``index`` of ``seed``."""
    return random.Random(f"gpufleet-demo/{seed}/{index}")


def _base36(number: int) -> str:
    digits = ""
    while True:
        number, digit = divmod(number, 36)
        digits = _BASE36[digit] + digits
        if number == 0:
            return digits


def _choose_kind_and_phase(
    rng: random.Random, forced: Phase | None
) -> tuple[WorkloadKind, Phase, bool]:
    """(kind, phase, deleted) of one workload."""
    if forced is not None:
        return KINDS_BY_PHASE[forced].pick(rng), forced, False
    kind = KIND_CHOICE.pick(rng)
    if rng.random() < DELETED_FRACTION:
        return kind, _DELETED_PHASE_CHOICE[kind.type].pick(rng), True
    return kind, kind.phases.pick(rng), False


def _nodepools(rng: random.Random, project: Project) -> tuple[NodePool, list[str]]:
    pools = project.department.cluster.nodepools
    # The first (default) pool takes a larger share than each GPU-model pool.
    primary = pools[0] if rng.random() < 0.4 else pick_one(rng, pools[1:])
    requested = [primary.name]
    if rng.random() < 0.3:
        requested.append(pick_one(rng, [p.name for p in pools if p is not primary]))
    return primary, requested


def _source(rng: random.Random, kind: WorkloadKind) -> tuple[str, str | None, str | None]:
    """(source, sourceApi, submittedBy)."""
    if kind.native:
        source = "CLI" if rng.random() < 0.35 else "Control-plane"
        api = "WorkloadsV2" if source == "Control-plane" and rng.random() < 0.3 else None
        return source, api, pick_one(rng, SUBMITTERS)
    if kind.type == "NIMService":
        # NIM services are submitted through the control plane's v2 API.
        return "Control-plane", "WorkloadsV2", pick_one(rng, SUBMITTERS)
    return "Other", None, pick_one(rng, OPERATORS) if rng.random() < 0.7 else None


def generate_workload(
    seed: int, index: int, anchor: datetime, forced_phase: Phase | None = None
) -> DemoWorkload:
    """Workload ``index`` of ``seed`` as of ``anchor``."""
    rng = workload_rng(seed, index)
    workload_id = assets.random_uuid(rng)
    kind, phase, deleted = _choose_kind_and_phase(rng, forced_phase)
    project = PROJECT_CHOICE.pick(rng)
    cluster = project.department.cluster
    priority_class = CATEGORY_PRIORITIES[kind.category].pick(rng)
    priority = BUILTIN_PRIORITY_VALUES[priority_class]
    preemptible = priority < PREEMPTIBLE_BELOW
    timeline = simulate_timeline(rng, phase, anchor, preemptible=preemptible, deleted=deleted)
    holding = phase in HOLDING_PHASES and not deleted
    pool, requested_pools = _nodepools(rng, project)
    plan = plan_resources(rng, kind, pool, holding=holding)
    source, source_api, submitted_by = _source(rng, kind)
    # The index in the name keeps names unique; the random tail makes them look generated.
    suffix = _base36(index) + _base36(int(rng.random() * 36 * 36)).rjust(2, "0")
    name = f"{pick_one(rng, kind.stems)}-{pick_one(rng, TOPICS)}-{suffix}"
    image = pick_one(rng, kind.images)

    phase_reason = scheduling = None
    if phase == Phase.PENDING:
        message, phase_reason, scheduling = status_messages.pending_state(
            rng, project, requested_pools, preemptible=preemptible
        )
    else:
        message = status_messages.phase_message(rng, phase, image, pool.name)

    workload: dict[str, Any] = {
        "tenantId": TENANT_ID,
        "runningPods": running_pods(rng, phase, plan.pods) if holding else 0,
        "phaseUpdatedAt": timeline.phase_updated_at,
        "k8sPhaseUpdatedAt": timeline.k8s_phase_updated_at,
        "updatedAt": timeline.updated_at,
        "source": source,
        "deletedAt": timeline.deleted_at,
        "type": kind.type,
        "name": name,
        "id": workload_id,
        "priority": priority,
        "priorityClassName": priority_class,
        "submittedBy": submitted_by,
        "clusterId": cluster.id,
        "projectName": project.name,
        "projectId": project.id,
        "departmentName": project.department.name,
        "departmentId": project.department.id,
        "namespace": project.namespace,
        "createdAt": timeline.created_at,
        "workloadRequestedResources": plan.workload_requested,
        "podsRequestedResources": plan.pods_requested,
        "allocatedResources": plan.allocated,
        "actionsSupport": {"delete": True, "suspend": kind.suspendable},
        "phase": phase.value,
        "conditions": status_messages.conditions(timeline, message),
        "phaseMessage": message,
        "k8sPhase": kind.k8s_phase(phase),
        "requestedPods": plan.requested_pods,
        "requestedNodePools": requested_pools,
        "currentNodePools": [pool.name] if holding else None,
        "completedAt": timeline.completed_at,
        "images": [image],
        "distributedFramework": pick_one(rng, kind.frameworks) if kind.frameworks else None,
        "preemptible": preemptible,
        "phaseReason": phase_reason,
        "category": kind.category,
        "sourceApi": source_api,
        "pendingSchedulingMessages": scheduling,
    }
    if kind.serves_urls and phase != Phase.CREATING:
        workload["urls"] = [assets.service_url(name, project, cluster)]
    if kind.native:
        workload["environments"] = assets.environments(rng, kind, name, project, cluster)
        workload["datasources"] = assets.datasources(rng)
        if kind.category == "Train":
            workload["externalConnections"] = assets.external_connections(rng, name)
        if rng.random() < 0.5:
            workload["command"] = "python"
            workload["arguments"] = f"-m {kind.stems[0]} --config configs/{name}.yaml"
            workload["environmentVariables"] = {"NCCL_DEBUG": "WARN", "HF_HOME": "/data/hf"}
    idle = idle_gpus(rng, phase, plan.allocated_gpu) if holding else None
    if idle is not None and plan.gpu_mode == "whole":
        workload["idleGpus"], workload["idleAllocatedGpus"] = idle
    elif idle is not None:
        workload["idleAllocatedGpus"] = idle[1]
    if phase == Phase.RUNNING and preemptible and rng.random() < 0.3:
        minimum_runtime = timedelta(hours=pick_one(rng, (1, 4, 12)))
        workload["guaranteedRuntimeEndsAt"] = timeline.phase_updated_at + minimum_runtime
    if kind.category == "Deploy" and rng.random() < 0.15:
        workload["aiApplicationId"], workload["aiApplicationName"] = pick_one(
            rng, assets.AI_APPLICATIONS
        )
    before = SecondsBefore(timeline.pending_seconds_before, timeline.running_seconds_before)
    return DemoWorkload(workload, before)


def generate_workloads(
    seed: int, start: int, count: int, anchor: datetime, *, run_start: int | None = None
) -> Iterator[DemoWorkload]:
    """Workloads ``start`` … ``start + count - 1`` of ``seed``.

    ``run_start`` is the first index of the seeding run this batch belongs to: the first
    workloads of a run take every phase in turn.
    """
    first = start if run_start is None else run_start
    for index in range(start, start + count):
        position = index - first
        forced = GUARANTEED_PHASES[position] if position < len(GUARANTEED_PHASES) else None
        yield generate_workload(seed, index, anchor, forced)
