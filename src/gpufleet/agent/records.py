"""A workload's objects -> the wire record pushed to the ingest API.

The record carries the reference Workload/WorkloadDetailed fields the cluster knows (the
server keeps the ones that depend on history: phaseUpdatedAt, completedAt, totals, tenantId),
plus ``observedAt`` and the pods list of the ingest contract.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gpufleet.agent.grouping import kind_of
from gpufleet.agent.kinds import Kind
from gpufleet.agent.objectpath import (
    annotations,
    conditions,
    labels,
    metadata,
    text_at,
    value_at,
)
from gpufleet.agent.organisation import OrganisationDirectory, project_from_labels
from gpufleet.agent.phase import Memory, decide_phase, gather_facts, k8s_phase
from gpufleet.agent.resources import (
    Resources,
    TemplateCount,
    images_of,
    is_bound,
    is_live,
    pod_of,
    template_resources,
    templates_of,
)
from gpufleet.agent.state import WorkloadView
from gpufleet.core.identifiers import is_node_name
from gpufleet.core.priorities import BUILTIN_PRIORITY_VALUES, PREEMPTIBLE_BELOW
from gpufleet.core.times import format_rfc3339
from gpufleet.core.workload_fields import WORKLOAD_FIELDS_BY_NAME
from gpufleet.schemas.enums import PhaseReason
from gpufleet.schemas.pods import POD_PHASE_MAX_LENGTH

NODEPOOL_LABELS = ("kai.scheduler/node-pool", "runai/node-pool")
PREEMPTIBILITY_LABEL = "kai.scheduler/preemptibility"
PRIORITY_CLASS_LABEL = "priorityClassName"
USER_LABEL = "user"
GPU_INDICES_ANNOTATION = "gpu-index"
PHASE_REASONS = {
    PhaseReason.NON_PREEMPTIBLE_OVER_QUOTA: "Non-preemptible over quota",
    PhaseReason.OVER_LIMIT: "Over limit",
}
# Longest names and raw phases the wire's string columns hold.
NAME_LIMIT = WORKLOAD_FIELDS_BY_NAME["name"].max_length
RAW_PHASE_LIMIT = WORKLOAD_FIELDS_BY_NAME["k8sPhase"].max_length
INT32 = 2**31 - 1


def wire_time(value: Any) -> str | None:
    """An RFC 3339 timestamp with a time zone, normalised; None for anything else."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    return format_rfc3339(parsed)


def _optional_text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True)
class DerivedWorkload:
    """A wire record and the totals the metrics samples are made of."""

    record: dict[str, Any]
    requested: Resources
    allocated: Resources
    pod_count: int
    running_pods: int


def iso_now() -> str:
    """The current time as the wire's ISO-8601 UTC string."""
    return format_rfc3339(datetime.now(UTC))


def _first_label(label_sets: Iterable[Mapping[str, str]], keys: Iterable[str]) -> str | None:
    label_sets = list(label_sets)
    for key in keys:
        for label_set in label_sets:
            value = label_set.get(key)
            if isinstance(value, str) and value and len(value) <= NAME_LIMIT:
                return value
    return None


def _priority_class(view: WorkloadView, root_kind: Kind, pod_labels: list[Mapping]) -> str:
    found = _first_label(view.chain_labels, (PRIORITY_CLASS_LABEL,))
    found = found or _first_label(pod_labels, (PRIORITY_CLASS_LABEL,))
    for pod in view.pods:
        found = found or text_at(pod, "spec.priorityClassName", NAME_LIMIT)
    for kind, obj in ((kind_of(view.primary), view.primary), (root_kind, view.root)):
        if not found and kind is not None and kind.priority_label:
            found = labels(obj).get(kind.priority_label)
    return str(found or root_kind.default_priority_class)


def _pending_messages(view: WorkloadView, project: str, department: str) -> list[dict[str, Any]]:
    messages = []
    for podgroup in view.podgroups:
        for condition in value_at(podgroup, "status.schedulingConditions", []) or []:
            if not isinstance(condition, Mapping) or str(condition.get("status")) != "True":
                continue
            for reason in condition.get("reasons") or []:
                code = reason.get("reason") if isinstance(reason, Mapping) else None
                if code not in PHASE_REASONS:
                    continue
                queue = value_at(reason, "details.queueDetails.name")
                org_type = "DEPARTMENT" if queue and queue == department != project else "PROJECT"
                messages.append(
                    {
                        "nodePool": _optional_text(condition.get("nodePool")) or "default",
                        "phaseReason": code,
                        "reason": PHASE_REASONS[code],
                        "orgType": org_type,
                        "userMessage": _optional_text(reason.get("message"))
                        or _optional_text(condition.get("message")),
                    }
                )
    return messages


def _wire_conditions(view: WorkloadView) -> list[dict[str, Any]]:
    objects = [view.primary] if view.primary is view.root else [view.root, view.primary]
    wired = []
    for obj in objects:
        for condition in conditions(obj):
            if not condition.get("type") or condition.get("status") is None:
                continue
            item = {"type": str(condition["type"]), "status": str(condition["status"])}
            for key in ("message", "reason"):
                if condition.get(key):
                    item[key] = str(condition[key])
            when = wire_time(condition.get("lastTransitionTime"))
            if when:
                item["lastTransitionTime"] = when
            wired.append(item)
    return wired


def _requested_pods(kind: Kind, obj: Mapping[str, Any], number: int | None) -> dict[str, Any]:
    def integer(path: str | None) -> int | None:
        raw = value_at(obj, path) if path else None
        valid = isinstance(raw, int) and not isinstance(raw, bool) and 0 <= raw <= INT32
        return raw if valid else None

    return {
        "number": number,
        "min": integer(kind.min_pods_path),
        "max": integer(kind.max_pods_path),
        "parallelism": integer(kind.parallelism_path),
        "completions": integer(kind.completions_path),
    }


def _gpu_indices(pod: Mapping[str, Any]) -> list[str]:
    raw = annotations(pod).get(GPU_INDICES_ANNOTATION) or ""
    return [part.strip() for part in str(raw).split(",") if part.strip()]


def _node_name(pod: Mapping[str, Any]) -> str | None:
    """The node the pod is bound to, or None: unscheduled (Kubernetes leaves the name empty),
    or a name Kubernetes would not give a node, which ingest refuses with the whole workload."""
    name = text_at(pod, "spec.nodeName")
    return name if name and is_node_name(name) else None


def _pod_entry(pod: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "name": str(metadata(pod).get("name", ""))[:NAME_LIMIT],
        "uid": str(metadata(pod).get("uid", "")),
        "nodeName": _node_name(pod),
        "phase": text_at(pod, "status.phase", POD_PHASE_MAX_LENGTH) or "Unknown",
        "gpuIndices": _gpu_indices(pod),
        "nodepool": _first_label([labels(pod)], NODEPOOL_LABELS),
    }


def _requested(view: WorkloadView, templates: list[TemplateCount]) -> Resources:
    """What the live pods ask for, or what the templates will ask for before any pod exists."""
    requested = Resources()
    live = [pod for pod in view.pods if is_live(pod)]
    if live:
        for pod in live:
            requested.add(pod_of(pod))
    else:
        for template in templates:
            requested.add(template_resources(template.template), template.pods)
    return requested


def _per_pod(view: WorkloadView, templates: list[TemplateCount]) -> Resources:
    """What one pod asks for: the first template, else the first pod."""
    if templates:
        return template_resources(templates[0].template)
    return pod_of(view.pods[0]) if view.pods else Resources()


def _allocated(view: WorkloadView) -> Resources:
    """What the pods bound to nodes hold."""
    allocated = Resources()
    for pod in view.pods:
        if is_bound(pod):
            allocated.add(pod_of(pod))
    return allocated


def _priority(
    view: WorkloadView,
    root_kind: Kind,
    pod_labels: list[Mapping[str, str]],
    priority_values: Mapping[str, int] | None,
) -> tuple[str, int | None, bool | None]:
    """The priority class, its value and whether the workload may be preempted."""
    priority_class = _priority_class(view, root_kind, pod_labels)
    values = {**BUILTIN_PRIORITY_VALUES, **(priority_values or {})}
    priority = values.get(priority_class)
    preemptibility = _first_label([*view.chain_labels, *pod_labels], (PREEMPTIBILITY_LABEL,))
    if preemptibility in ("preemptible", "non-preemptible"):
        return priority_class, priority, preemptibility == "preemptible"
    preemptible = priority < PREEMPTIBLE_BELOW if priority is not None else None
    return priority_class, priority, preemptible


def _images(view: WorkloadView, templates: list[TemplateCount]) -> list[str]:
    template_specs = [
        t.template.get("spec") if isinstance(t.template.get("spec"), Mapping) else t.template
        for t in templates
    ]
    return images_of([*template_specs, *(pod.get("spec") or {} for pod in view.pods)])


def _node_pools(view: WorkloadView, pod_labels: list[Mapping[str, str]]) -> tuple[list, list]:
    """The node pools asked for (a label) and the pools the bound pods run in."""
    requested = _first_label([*view.chain_labels, *pod_labels], NODEPOOL_LABELS)
    current = sorted(
        {
            pool
            for pod in view.pods
            if is_bound(pod) and (pool := _first_label([labels(pod)], NODEPOOL_LABELS))
        }
    )
    return ([requested] if requested else []), current


def _requested_pod_count(
    view: WorkloadView, primary_kind: Kind, primary: Mapping, templates: list[TemplateCount]
) -> dict[str, Any]:
    live = sum(1 for pod in view.pods if is_live(pod))
    return _requested_pods(
        primary_kind, primary, sum(t.pods for t in templates) if templates else live
    )


def derive_workload(
    view: WorkloadView,
    *,
    cluster_id: str,
    directory: OrganisationDirectory,
    memory: Memory = Memory(),
    priority_values: Mapping[str, int] | None = None,
    observed_at: str | None = None,
    tenant_id: int = 1,
) -> DerivedWorkload:
    """Turn one workload's objects into its wire record."""
    root, primary = view.root, view.primary
    root_kind, primary_kind = kind_of(root), kind_of(primary)
    if root_kind is None or primary_kind is None:
        raise ValueError("not an object of a known kind")
    meta = metadata(root)
    namespace = str(meta.get("namespace") or "")
    if meta.get("name") in (None, ""):
        # The server refuses a report without one (and with it the rest of its batch).
        raise ValueError("a workload without a name")
    pod_labels = [labels(pod) for pod in view.pods]
    project = project_from_labels([*view.chain_labels, *pod_labels], namespace)
    org = directory.organisation(project, cluster_id)
    decided = decide_phase(gather_facts(view, memory))
    pending = _pending_messages(view, org.project_name, org.department_name)
    templates = templates_of(primary_kind, primary)
    requested, allocated = _requested(view, templates), _allocated(view)
    priority_class, priority, preemptible = _priority(view, root_kind, pod_labels, priority_values)
    requested_pools, current_pools = _node_pools(view, pod_labels)
    running = sum(1 for pod in view.pods if value_at(pod, "status.phase") == "Running")
    record: dict[str, Any] = {
        "id": str(meta.get("uid")),
        "tenantId": tenant_id,
        "clusterId": cluster_id,
        "name": str(meta["name"]),
        "namespace": namespace,
        "type": root_kind.workload_type,
        "category": root_kind.category,
        "source": "Control-plane" if root_kind.group == "run.ai" else "Other",
        "createdAt": wire_time(meta.get("creationTimestamp")) or observed_at or iso_now(),
        "projectName": org.project_name,
        "projectId": org.project_id,
        "departmentName": org.department_name,
        "departmentId": org.department_id,
        "submittedBy": (
            _first_label([*view.chain_labels, *pod_labels], (USER_LABEL,))
            or annotations(root).get(USER_LABEL)
        ),
        "priorityClassName": priority_class,
        "priority": priority,
        "preemptible": preemptible,
        "phase": decided.phase,
        "phaseMessage": decided.message,
        "phaseReason": pending[0]["phaseReason"] if pending else None,
        "k8sPhase": k8s_phase(view)[:RAW_PHASE_LIMIT],
        "conditions": _wire_conditions(view),
        "pendingSchedulingMessages": pending,
        "workloadRequestedResources": requested.requested_wire(),
        "podsRequestedResources": _per_pod(view, templates).requested_wire(),
        "allocatedResources": allocated.allocated_wire(),
        "requestedPods": _requested_pod_count(view, primary_kind, primary, templates),
        "runningPods": running,
        "images": _images(view, templates),
        "requestedNodePools": requested_pools,
        "currentNodePools": current_pools,
        "distributedFramework": primary_kind.distributed_framework,
        "actionsSupport": {"delete": True, "suspend": primary_kind.suspend_path is not None},
        "observedAt": observed_at or iso_now(),
        "pods": [_pod_entry(pod) for pod in view.pods],
    }
    return DerivedWorkload(record, requested, allocated, len(view.pods), running)
