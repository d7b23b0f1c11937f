"""What a simulated workload says about its state: phase messages, reasons and conditions.

Pending workloads explain why they wait. Three in four are held by a quota rule and carry
``phaseReason`` plus one ``pendingSchedulingMessages`` entry per requested node pool; the rest
simply wait for free capacity and say so in ``phaseMessage`` only.
"""

from __future__ import annotations

import random
from datetime import datetime
from typing import Any

from gpufleet.demo.organisation import Project
from gpufleet.demo.timeline import Timeline
from gpufleet.demo.weighted import pick_one
from gpufleet.schemas.enums import Phase

P = Phase
OVER_QUOTA, OVER_LIMIT = "NonPreemptibleOverQuota", "OverLimit"

_FAILURES = (
    ("BackoffLimitExceeded", "Job has reached the specified backoff limit"),
    ("OOMKilled", "Container 'main' was killed: it exceeded its memory limit"),
    ("Error", "Container 'main' exited with code 1"),
    ("NCCLError", "NCCL error in ProcessGroupNCCL.cpp: unhandled system error"),
    ("Error", "Le modèle n'a pas pu être chargé : fichier « weights.safetensors » introuvable"),
    ("ErrImagePull", "Failed to pull image: manifest unknown"),
)
_WAITING = (
    "Not enough resources in the requested nodepool",
    "Waiting for all pods of the workload to be scheduled (gang scheduling)",
    "No node pool has enough free GPUs for a pod of this workload",
)
_INITIALIZING = (
    "ContainerCreating",
    "Pulling image",
    "PodInitializing: waiting for init container 'download-weights'",
)


def pending_state(
    rng: random.Random, project: Project, nodepools: list[str], *, preemptible: bool
) -> tuple[str, str | None, list[dict[str, Any]] | None]:
    """(phaseMessage, phaseReason, pendingSchedulingMessages) of a Pending workload."""
    draw = rng.random()
    if draw < 0.5 and not preemptible:
        reason = OVER_QUOTA
    elif draw < 0.75:
        reason = OVER_LIMIT
    else:
        return pick_one(rng, _WAITING), None, None
    messages = [_scheduling_message(rng, reason, project, pool) for pool in nodepools]
    return messages[0]["userMessage"], reason, messages


def _scheduling_message(
    rng: random.Random, reason: str, project: Project, pool: str
) -> dict[str, Any]:
    org_type = "PROJECT" if rng.random() < 0.7 else "DEPARTMENT"
    org = "Project" if org_type == "PROJECT" else "Department"
    org_name = project.name if org_type == "PROJECT" else project.department.name
    if reason == OVER_QUOTA:
        text = "Non-preemptible over quota"
        user = f"{org} {org_name} has used its quota of non-preemptible GPUs in node pool {pool}"
    else:
        text = "Over limit"
        limit = pick_one(rng, (8, 16, 32, 64))
        user = f"{org} {org_name} would exceed its limit of {limit} GPUs in node pool {pool}"
    return {
        "nodePool": pool,
        "phaseReason": reason,
        "reason": text,
        "orgType": org_type,
        "userMessage": user,
    }


def phase_message(rng: random.Random, phase: Phase, image: str, pool: str) -> str | None:
    """The phase message of a workload not Pending; None where the phase needs no comment."""
    if phase == P.FAILED:
        return pick_one(rng, _FAILURES)[1]
    if phase == P.INITIALIZING:
        message = pick_one(rng, _INITIALIZING)
        return f'{message} "{image}"' if message == "Pulling image" else message
    if phase == P.DEGRADED:
        return "CrashLoopBackOff: back-off 5m0s restarting failed container 'main'"
    if phase == P.TERMINATING:
        return f"Preempted by a higher-priority workload in node pool {pool}"
    if phase == P.UNKNOWN:
        return "The node running a pod of this workload is not reachable"
    if phase == P.UPDATING:
        return "Rolling out a new revision"
    return None


def _condition(
    kind: str, status: str, at: datetime, reason: str | None = None, message: str | None = None
) -> dict[str, Any]:
    condition: dict[str, Any] = {"type": kind, "status": status, "lastTransitionTime": at}
    if reason is not None:
        condition["reason"] = reason
    if message is not None:
        condition["message"] = message
    return condition


def conditions(timeline: Timeline, message: str | None) -> list[dict[str, Any]]:
    """Kubernetes-style conditions consistent with the simulated history."""
    phase, at = timeline.phase, timeline.phase_updated_at
    result = [_condition("Created", "True", timeline.created_at)]
    scheduled_at = timeline.scheduled_at
    if scheduled_at is not None:
        result.append(_condition("PodScheduled", "True", scheduled_at))
    elif phase == P.PENDING:
        result.append(_condition("PodScheduled", "False", at, "Unschedulable", message))
    if phase in (P.RUNNING, P.UPDATING):
        result.append(_condition("Ready", "True", at))
    elif phase in (P.DEGRADED, P.INITIALIZING, P.UNKNOWN):
        result.append(_condition("Ready", "False", at, phase.value, message))
    elif phase == P.COMPLETED:
        result.append(_condition("Complete", "True", at, "Succeeded"))
    elif phase == P.FAILED:
        reason = next((r for r, text in _FAILURES if text == message), "Error")
        result.append(_condition("Failed", "True", at, reason, message))
    elif phase in (P.STOPPED, P.STOPPING):
        result.append(_condition("Suspended", "True", at, "Stopped by user"))
    elif phase == P.RESUMING:
        result.append(_condition("Suspended", "False", at, "Resumed"))
    elif phase in (P.TERMINATING, P.DELETING):
        result.append(_condition("Terminating", "True", at, phase.value, message))
    return result
