"""Requested and allocated resources of pods and workloads, in the reference's shapes.

GPU requests come from whole ``nvidia.com/gpu`` counts or KAI's sharing annotations
(``gpu-fraction``, ``gpu-memory`` in MiB, ``gpu-fraction-num-devices``, ``gpu-fraction-limit``);
MIG slices (``nvidia.com/mig-*``) and other extended resources are listed by name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from gpufleet.agent.kinds import Kind
from gpufleet.agent.objectpath import annotations, list_at, mapping_at, value_at, values_at
from gpufleet.core.quantities import parse_quantity, reportable_amount, reportable_bytes

GPU = "nvidia.com/gpu"
_MIB = Decimal(2**20)
_BUILTIN = {"cpu", "memory", "ephemeral-storage", "pods", GPU}
TERMINAL_POD_PHASES = ("Succeeded", "Failed")
MAX_PODS = 100_000


@dataclass
class Resources:
    """Resource amounts of one pod or a sum of pods (cores, bytes, GPU devices)."""

    gpu_request: Decimal = Decimal(0)
    gpu_limit: Decimal | None = None
    gpu_memory_request: Decimal = Decimal(0)
    gpu_memory_limit: Decimal | None = None
    cpu_request: Decimal = Decimal(0)
    cpu_limit: Decimal | None = None
    memory_request: Decimal = Decimal(0)
    memory_limit: Decimal | None = None
    extended: dict[str, Decimal] = field(default_factory=dict)
    gpu_request_type: str | None = None

    def add(self, other: Resources, times: int = 1) -> None:
        """Add ``times`` copies of ``other``."""
        n = Decimal(times)
        self.gpu_request += other.gpu_request * n
        self.gpu_memory_request += other.gpu_memory_request * n
        self.cpu_request += other.cpu_request * n
        self.memory_request += other.memory_request * n
        self.gpu_limit = _add_limit(self.gpu_limit, other.gpu_limit, n)
        self.gpu_memory_limit = _add_limit(self.gpu_memory_limit, other.gpu_memory_limit, n)
        self.cpu_limit = _add_limit(self.cpu_limit, other.cpu_limit, n)
        self.memory_limit = _add_limit(self.memory_limit, other.memory_limit, n)
        for name, amount in other.extended.items():
            self.extended[name] = self.extended.get(name, Decimal(0)) + amount * n
        self.gpu_request_type = self.gpu_request_type or other.gpu_request_type

    def requested_wire(self) -> dict[str, Any]:
        """The reference ``WorkloadRequestResources`` object."""
        return {
            "gpuRequestType": self.gpu_request_type,
            "gpu": {
                "request": reportable_amount(self.gpu_request) if self.gpu_request else None,
                "limit": reportable_amount(self.gpu_limit),
            },
            "gpuMemory": {
                "request": reportable_bytes(self.gpu_memory_request or None),
                "limit": reportable_bytes(self.gpu_memory_limit),
            },
            "cpu": {
                "request": reportable_amount(self.cpu_request),
                "limit": reportable_amount(self.cpu_limit),
            },
            "cpuMemory": {
                "request": reportable_bytes(self.memory_request),
                "limit": reportable_bytes(self.memory_limit),
            },
            "extendedResources": _extended_wire(self.extended),
        }

    def allocated_wire(self) -> dict[str, Any]:
        """The reference ``WorkloadAllocatedResources`` object."""
        return {
            "gpu": reportable_amount(self.gpu_request),
            "gpuMemory": reportable_bytes(self.gpu_memory_request),
            "cpu": reportable_amount(self.cpu_request),
            "cpuMemory": reportable_bytes(self.memory_request),
            "extendedResources": _extended_wire(self.extended),
        }


def _add_limit(total: Decimal | None, more: Decimal | None, times: Decimal) -> Decimal | None:
    if more is None:
        return total
    return (total or Decimal(0)) + more * times


def _extended_wire(extended: Mapping[str, Decimal]) -> list[dict[str, Any]]:
    return [
        {"resource": name, "quantity": format(amount.normalize(), "f"), "exclude": False}
        for name, amount in sorted(extended.items())
        if amount
    ]


def _container_totals(containers: Iterable[Any], key: str) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = {}
    for container in containers:
        if not isinstance(container, Mapping):
            continue
        for name, raw in mapping_at(container, f"resources.{key}").items():
            amount = parse_quantity(raw)
            if amount is not None:
                totals[name] = totals.get(name, Decimal(0)) + amount
    return totals


def _effective(spec: Mapping[str, Any], key: str) -> dict[str, Decimal]:
    """Sum over containers, raised to the largest init container (the scheduler's rule)."""
    totals = _container_totals(list_at(spec, "containers"), key)
    for init in list_at(spec, "initContainers"):
        for name, amount in _container_totals([init], key).items():
            totals[name] = max(totals.get(name, Decimal(0)), amount)
    return totals


def _positive(raw: object) -> Decimal | None:
    amount = parse_quantity(raw)
    return amount if amount is not None and amount > 0 else None


def pod_resources(spec: Mapping[str, Any], meta_annotations: Mapping[str, str]) -> Resources:
    """What one pod (or pod template) requests."""
    requests = _effective(spec, "requests")
    limits = _effective(spec, "limits")
    result = Resources(
        cpu_request=requests.get("cpu", Decimal(0)),
        cpu_limit=limits.get("cpu"),
        memory_request=requests.get("memory", Decimal(0)),
        memory_limit=limits.get("memory"),
    )
    whole = limits.get(GPU) or requests.get(GPU)
    devices = _positive(meta_annotations.get("gpu-fraction-num-devices")) or Decimal(1)
    fraction = _positive(meta_annotations.get("gpu-fraction"))
    memory_mib = _positive(meta_annotations.get("gpu-memory"))
    if fraction is not None and fraction < 1:
        result.gpu_request = fraction * devices
        fraction_limit = _positive(meta_annotations.get("gpu-fraction-limit"))
        result.gpu_limit = fraction_limit * devices if fraction_limit is not None else None
        result.gpu_request_type = "portion"
    elif memory_mib is not None:
        result.gpu_memory_request = memory_mib * _MIB * devices
        result.gpu_request_type = "memory"
    elif whole:
        result.gpu_request = whole
        result.gpu_limit = limits.get(GPU)
        result.gpu_request_type = "portion"
    for name, amount in requests.items() | limits.items():
        if isinstance(name, str) and name not in _BUILTIN and "/" in name:
            result.extended[name] = max(result.extended.get(name, Decimal(0)), amount)
    return result


def pod_of(pod: Mapping[str, Any]) -> Resources:
    """What a pod object requests."""
    return pod_resources(mapping_at(pod, "spec"), annotations(pod))


def is_live(pod: Mapping[str, Any]) -> bool:
    """A pod that still holds (or waits for) resources."""
    return value_at(pod, "status.phase") not in TERMINAL_POD_PHASES


def is_bound(pod: Mapping[str, Any]) -> bool:
    """A live pod placed on a node."""
    return is_live(pod) and bool(value_at(pod, "spec.nodeName"))


@dataclass(frozen=True)
class TemplateCount:
    """One pod template of a kind and how many pods it stands for."""

    template: Mapping[str, Any]
    pods: int


def _count(item: Any, path: str | None) -> int:
    if path is None:
        return 1
    raw = value_at(item, path)
    if raw is None:
        return 1
    try:
        # A count beyond any real cluster is garbage, not a request for a billion pods.
        return min(max(int(raw), 0), MAX_PODS)
    except (TypeError, ValueError, OverflowError):
        return 1


def templates_of(kind: Kind, obj: Mapping[str, Any]) -> list[TemplateCount]:
    """The pod templates of an object with their pod counts, as the kinds table describes."""
    found: list[TemplateCount] = []
    for template_set in kind.templates:
        factor = _count(obj, template_set.factor)
        for item in values_at(obj, template_set.items) if template_set.items else [obj]:
            template = value_at(item, template_set.template) if template_set.template else item
            if not isinstance(template, Mapping):
                continue
            pods = _count(item, template_set.replicas) * _count(item, template_set.per_replica)
            found.append(TemplateCount(template, pods * factor))
    return found


def template_resources(template: Mapping[str, Any]) -> Resources:
    """What a pod template (``{metadata, spec}``, or a bare pod spec holder) requests."""
    spec = template.get("spec") if isinstance(template.get("spec"), Mapping) else template
    return pod_resources(spec, annotations(template))


def images_of(specs: Iterable[Mapping[str, Any]]) -> list[str]:
    """Distinct container images of pod specs, in order of appearance."""
    images: dict[str, None] = {}
    for spec in specs:
        for container in list_at(spec, "initContainers") + list_at(spec, "containers"):
            if isinstance(container, Mapping) and isinstance(container.get("image"), str):
                images[container["image"]] = None
    return list(images)
