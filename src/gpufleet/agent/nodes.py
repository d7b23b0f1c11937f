"""A Kubernetes ``Node`` as the node report of the ingest API.

GPUs come from the ``nvidia.com/gpu`` capacity, or on a MIG node (which advertises
``nvidia.com/mig-<profile>`` slices instead) from GPU feature discovery's
``nvidia.com/gpu.count`` label; the model and one GPU's memory (MiB) from its
``nvidia.com/gpu.product`` and ``nvidia.com/gpu.memory`` labels; the NVLink domain and clique
from ``nvidia.com/gpu.clique`` (``<domain uid>.<clique id>``). The node pool is the first of
the configured label, ``run.ai/node-pool`` and KAI's ``kai.scheduler/node-pool`` the node
carries, else ``default``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gpufleet.agent.objectpath import conditions, labels, mapping_at, metadata, value_at
from gpufleet.core.identifiers import is_node_name
from gpufleet.core.quantities import parse_quantity

GPU = "nvidia.com/gpu"
MIG_PREFIX = "nvidia.com/mig-"
GPU_COUNT_LABEL = "nvidia.com/gpu.count"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
GPU_MEMORY_LABEL = "nvidia.com/gpu.memory"
CLIQUE_LABEL = "nvidia.com/gpu.clique"
NODEPOOL_LABELS = ("run.ai/node-pool", "kai.scheduler/node-pool")
DEFAULT_NODEPOOL = "default"
_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
_LONGEST = 253


def _amount(resources: Mapping[str, Any], name: str) -> float:
    value = parse_quantity(resources.get(name))
    return float(value) if value is not None else 0.0


def _label_int(node_labels: Mapping[str, str], name: str) -> int | None:
    text = node_labels.get(name, "")
    return int(text) if text.isdigit() and len(text) < 10 else None


def node_pool(node_labels: Mapping[str, str], pool_label: str | None = None) -> str:
    """The node's pool: the first pool label it carries, else ``default``."""
    for key in (pool_label, *NODEPOOL_LABELS):
        value = node_labels.get(key) if key else None
        if value:
            return value[:_LONGEST]
    return DEFAULT_NODEPOOL


def node_status(node: Mapping[str, Any]) -> str:
    """``Ready``/``NotReady`` from the Ready condition; ``Unknown`` when it is unknown or absent."""
    for condition in conditions(node):
        if condition.get("type") == "Ready":
            return {"True": "Ready", "False": "NotReady"}.get(
                str(condition.get("status")), "Unknown"
            )
    return "Unknown"


def _clique(node_labels: Mapping[str, str]) -> tuple[str | None, str | None]:
    value = node_labels.get(CLIQUE_LABEL)
    if not value:
        return None, None
    domain, _, clique = value.rpartition(".")
    return (domain or None), (clique or value)


def _taints(node: Mapping[str, Any]) -> list[dict[str, Any]]:
    found = []
    for taint in value_at(node, "spec.taints") or ():
        if isinstance(taint, Mapping) and taint.get("key") and taint.get("effect") in _EFFECTS:
            entry = {"key": str(taint["key"])[:_LONGEST], "effect": taint["effect"]}
            if taint.get("value"):
                entry["value"] = str(taint["value"])[:_LONGEST]
            found.append(entry)
    return found


def _conditions(node: Mapping[str, Any]) -> list[dict[str, str]]:
    return [
        {
            "type": str(c.get("type"))[:128],
            "status": str(c.get("status") or "Unknown")[:16],
            "reason": str(c.get("reason") or "")[:256],
            "message": str(c.get("message") or "")[:4096],
        }
        for c in conditions(node)
        if c.get("type")
    ]


def node_report(
    node: Mapping[str, Any], observed_at: str, pool_label: str | None = None
) -> dict[str, Any]:
    """The ingest API's report of one node object."""
    meta = metadata(node)
    node_labels = labels(node)
    capacity = mapping_at(node, "status.capacity")
    allocatable = mapping_at(node, "status.allocatable")
    mig = {
        name.removeprefix(MIG_PREFIX)[:128]: int(_amount(capacity, name))
        for name in capacity
        if name.startswith(MIG_PREFIX)
    }
    gpus = int(_amount(capacity, GPU))
    if not gpus and mig:
        gpus = _label_int(node_labels, GPU_COUNT_LABEL) or 0
    memory_mib = _label_int(node_labels, GPU_MEMORY_LABEL)
    domain, clique = _clique(node_labels)
    product = node_labels.get(GPU_PRODUCT_LABEL)
    return {
        "id": str(meta.get("uid")),
        "name": str(meta.get("name")),
        "observedAt": observed_at,
        "createdAt": meta.get("creationTimestamp") or observed_at,
        "status": node_status(node),
        "unschedulable": bool(value_at(node, "spec.unschedulable")),
        "nodePool": node_pool(node_labels, pool_label),
        "gpuType": product[:_LONGEST] if product else None,
        "gpuCount": gpus,
        "allocatableGpus": _amount(allocatable, GPU) if _amount(capacity, GPU) else float(gpus),
        "gpuMemoryBytes": memory_mib * 2**20 if memory_mib is not None else None,
        "migDevices": mig,
        "cpuCores": _amount(capacity, "cpu"),
        "allocatableCpuCores": _amount(allocatable, "cpu"),
        "memoryBytes": int(_amount(capacity, "memory")),
        "allocatableMemoryBytes": int(_amount(allocatable, "memory")),
        "nvLinkCliqueId": clique[:_LONGEST] if clique else None,
        "nvLinkDomainUid": domain[:_LONGEST] if domain else None,
        "conditions": _conditions(node),
        "taints": _taints(node),
    }


def node_reports(
    nodes: Sequence[Mapping[str, Any]], observed_at: str, pool_label: str | None = None
) -> list[dict[str, Any]]:
    """Reports of every node with a uid and a name Kubernetes gives a node (ingest refuses a
    batch holding any other name)."""
    return [
        node_report(node, observed_at, pool_label)
        for node in nodes
        if metadata(node).get("uid") and is_node_name(str(metadata(node).get("name") or ""))
    ]
