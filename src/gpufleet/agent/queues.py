"""The scheduler's queues as the queue reports of the ingest API (see docs/inventory.md).

KAI Scheduler ``Queue``: a queue with a parent stands for the project of its name in the
department its parent names; one without stands for the department of its name. Kueue
``ClusterQueue``: each flavor is a node pool; it stands for a project when the LocalQueues that
point at it all lie in that project's namespaces. ``LocalQueue``: stands for the project of
its namespace and names its ClusterQueue as parent. Without any of these, the quota file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from gpufleet.agent.objectpath import labels, list_at, mapping_at, metadata, value_at
from gpufleet.agent.organisation import MappingError, OrganisationDirectory, project_from_labels
from gpufleet.core.quantities import parse_quantity

KAI_NODEPOOL_LABEL = "kai.scheduler/node-pool"
DEFAULT_NODEPOOL = "default"
GPU = "nvidia.com/gpu"
# Kueue names resources as Kubernetes does; the reports use GPUs, millicores and MB.
_KUEUE_RESOURCES = {GPU: ("gpu", 1.0), "cpu": ("cpu", 1000.0), "memory": ("memory", 1e-6)}
_KAI_PARTS = {"quota": "deserved", "limit": "limit", "overQuotaWeight": "overQuotaWeight"}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    amount = parse_quantity(value)
    return float(amount) if amount is not None else None


def _project_unit(
    directory: OrganisationDirectory, name: str, cluster_id: str, department: str | None = None
) -> dict:
    org = directory.organisation(name, cluster_id)
    department_name = department or org.department_name
    return {
        "type": "project",
        "id": org.project_id,
        "name": org.project_name,
        "departmentId": directory.department_id(department_name, cluster_id),
        "departmentName": department_name,
    }


def _department_unit(directory: OrganisationDirectory, name: str, cluster_id: str) -> dict:
    return {"type": "department", "id": directory.department_id(name, cluster_id), "name": name}


def kai_queue(obj: Mapping[str, Any], directory: OrganisationDirectory, cluster_id: str) -> dict:
    """The report of one KAI ``Queue``."""
    name = str(metadata(obj).get("name"))
    parent = value_at(obj, "spec.parentQueue")
    allocated = mapping_at(obj, "status.allocated")
    quota: dict[str, Any] = {"nodePool": labels(obj).get(KAI_NODEPOOL_LABEL) or DEFAULT_NODEPOOL}
    for resource in ("gpu", "cpu", "memory"):
        given = mapping_at(obj, f"spec.resources.{resource}")
        amounts = {wire: _number(given.get(part)) for part, wire in _KAI_PARTS.items()}
        used = _number(allocated.get(GPU if resource == "gpu" else resource))
        if resource == "cpu" and used is not None:
            used *= 1000  # status.allocated counts cores; quotas count millicores
        amounts["used"] = used
        if any(value is not None for value in amounts.values()) or resource == "gpu":
            quota[resource] = amounts
    unit = (
        _project_unit(directory, name, cluster_id, str(parent))
        if parent
        else _department_unit(directory, name, cluster_id)
    )
    priority = value_at(obj, "spec.priority")
    return {
        "source": "kai",
        "name": name,
        "parentName": str(parent) if parent else None,
        "priority": priority
        if isinstance(priority, int) and not isinstance(priority, bool)
        else None,
        "orgUnit": unit,
        "quotas": [quota],
    }


def _flavor_usage(obj: Mapping[str, Any]) -> dict[tuple[str, str], float]:
    usage = {}
    for flavor in list_at(obj, "status.flavorsUsage"):
        for resource in flavor.get("resources") or ():
            amount = _number(resource.get("total"))
            if amount is not None:
                usage[(str(flavor.get("name")), str(resource.get("name")))] = amount
    return usage


def kueue_cluster_queue(obj: Mapping[str, Any], unit: dict | None) -> dict:
    """The report of one Kueue ``ClusterQueue`` (standing for ``unit`` when given)."""
    cohort = value_at(obj, "spec.cohort")
    usage = _flavor_usage(obj)
    pools: dict[str, dict[str, Any]] = {}
    for group in list_at(obj, "spec.resourceGroups"):
        for flavor in group.get("flavors") or ():
            pool = pools.setdefault(str(flavor.get("name")), {"nodePool": str(flavor.get("name"))})
            for resource in flavor.get("resources") or ():
                known = _KUEUE_RESOURCES.get(str(resource.get("name")))
                if known is None:
                    continue
                wire, scale = known
                nominal = _number(resource.get("nominalQuota")) or 0.0
                borrowing = _number(resource.get("borrowingLimit"))
                if borrowing is not None:
                    limit: float | None = (nominal + borrowing) * scale
                else:
                    # Without a cohort nothing can be borrowed; with one, borrowing is unbounded.
                    limit = None if cohort else nominal * scale
                used = usage.get((pool["nodePool"], str(resource.get("name"))))
                pool[wire] = {
                    "deserved": nominal * scale,
                    "limit": limit,
                    "used": used * scale if used is not None else None,
                }
    for pool in pools.values():
        pool.setdefault("gpu", {"deserved": 0.0})
    return {
        "source": "kueue-clusterqueue",
        "name": str(metadata(obj).get("name")),
        "parentName": str(cohort) if cohort else None,
        "orgUnit": unit,
        "quotas": list(pools.values()),
        "details": {"cohort": str(cohort)} if cohort else {},
    }


def kueue_queues(
    cluster_queues: Sequence[Mapping[str, Any]],
    local_queues: Sequence[Mapping[str, Any]],
    directory: OrganisationDirectory,
    cluster_id: str,
) -> list[dict]:
    """Reports of Kueue's ClusterQueues and LocalQueues."""
    reports = []
    projects_of: dict[str, set[str]] = {}
    for local in local_queues:
        namespace = str(metadata(local).get("namespace") or "")
        project = project_from_labels([labels(local)], namespace)
        target = str(value_at(local, "spec.clusterQueue") or "")
        unit = _project_unit(directory, project, cluster_id) if project else None
        projects_of.setdefault(target, set()).add(project or "")
        reports.append(
            {
                "source": "kueue-localqueue",
                "name": f"{namespace}/{metadata(local).get('name')}",
                "parentName": target or None,
                "orgUnit": unit,
            }
        )
    for obj in cluster_queues:
        name = str(metadata(obj).get("name"))
        owners = projects_of.get(name, set())
        unit = None
        if len(owners) == 1 and "" not in owners:
            unit = _project_unit(directory, next(iter(owners)), cluster_id)
        reports.append(kueue_cluster_queue(obj, unit))
    return reports


def _quota_entries(entries: Any, where: str) -> list[dict]:
    if not isinstance(entries, list):
        raise MappingError(f"{where}: quotas must be a list")
    for entry in entries:
        if not isinstance(entry, Mapping) or not entry.get("nodePool"):
            raise MappingError(f"{where}: each quota needs a nodePool")
    return [dict(entry) for entry in entries]


def file_queues(text: str, directory: OrganisationDirectory, cluster_id: str) -> list[dict]:
    """Reports of the quota file (YAML; format in docs/inventory.md)."""
    try:
        document = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise MappingError(f"the quota file is not valid YAML: {exc}") from exc
    if not isinstance(document, Mapping):
        raise MappingError("the quota file must be a mapping at the top level")
    reports = []
    for name, entry in (document.get("departments") or {}).items():
        reports.append(
            {
                "source": "file",
                "name": f"department/{name}",
                "orgUnit": _department_unit(directory, str(name), cluster_id),
                "quotas": _quota_entries((entry or {}).get("quotas", []), f"department {name}"),
            }
        )
    for name, entry in (document.get("projects") or {}).items():
        entry = entry or {}
        unit = _project_unit(directory, str(name), cluster_id, entry.get("department"))
        reports.append(
            {
                "source": "file",
                "name": f"project/{name}",
                "parentName": unit["departmentName"],
                "orgUnit": unit,
                "quotas": _quota_entries(entry.get("quotas", []), f"project {name}"),
            }
        )
    return reports
