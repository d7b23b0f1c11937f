"""Nodes and scheduler queues as a cluster agent reports them (gpufleet's ingest extension).

A node report is what the agent read from one Kubernetes ``Node``: capacity and allocatable
GPUs, CPU and memory, the GPU model and memory published by GPU feature discovery, readiness,
cordoning, taints, its node pool and NVLink labels, MIG devices. A queue report is one of the
scheduler's queues with its quota per node pool, and the project or department it stands for.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from gpufleet.core.quantities import MAX_AMOUNT
from gpufleet.schemas.enums import NodeStatus
from gpufleet.schemas.node_names import NodeName
from gpufleet.schemas.storable import StorableModel

_NAME = 253
_INT64 = 2**63 - 1


class NodeCondition(BaseModel):
    """A node condition (the reference ``NodeStatusConditionDetails``, plus its status)."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(min_length=1, max_length=128)
    status: str = Field("Unknown", max_length=16)
    reason: str = Field("", max_length=256)
    message: str = Field("", max_length=4096)


class NodeTaint(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(min_length=1, max_length=_NAME)
    value: str | None = Field(None, max_length=_NAME)
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]


class IngestNode(BaseModel):
    """One Kubernetes node. ``gpuCount`` is the physical GPUs (``nvidia.com/gpu`` capacity, or
    GPU feature discovery's count on a MIG node); ``migDevices`` counts MIG slices by profile."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    id: UUID = Field(description="The node's uid.")
    name: NodeName
    observedAt: AwareDatetime
    createdAt: AwareDatetime
    status: NodeStatus
    unschedulable: bool = False
    nodePool: str = Field("default", min_length=1, max_length=_NAME)
    gpuType: str | None = Field(None, max_length=_NAME)
    gpuCount: int = Field(0, ge=0, le=1_000_000)
    allocatableGpus: float = Field(0.0, ge=0, le=MAX_AMOUNT)
    gpuMemoryBytes: int | None = Field(None, ge=0, le=_INT64)
    migDevices: dict[str, int] = Field(default_factory=dict, max_length=64)
    cpuCores: float = Field(0.0, ge=0, le=MAX_AMOUNT)
    allocatableCpuCores: float = Field(0.0, ge=0, le=MAX_AMOUNT)
    memoryBytes: int = Field(0, ge=0, le=_INT64)
    allocatableMemoryBytes: int = Field(0, ge=0, le=_INT64)
    nvLinkCliqueId: str | None = Field(None, max_length=_NAME)
    nvLinkDomainUid: str | None = Field(None, max_length=_NAME)
    conditions: list[NodeCondition] = Field(default_factory=list, max_length=64)
    taints: list[NodeTaint] = Field(default_factory=list, max_length=256)

    @model_validator(mode="after")
    def _mig_counts(self) -> IngestNode:
        for profile, count in self.migDevices.items():
            if not profile or len(profile) > 128 or not 0 <= count <= 1_000_000:
                raise ValueError(f"migDevices[{profile[:64]!r}] must be a count of 0 or more")
        return self


class IngestNodeBatch(StorableModel):
    """Nodes of one cluster; ``fullSync`` marks every other live node of it deleted."""

    model_config = ConfigDict(extra="forbid")

    nodes: list[IngestNode] = Field(default_factory=list)
    deletedIds: list[UUID] = Field(default_factory=list)
    fullSync: bool = False
    nodePoolLabelKey: str = Field("run.ai/node-pool", min_length=1, max_length=_NAME)


class IngestNodeResult(BaseModel):
    accepted: int = Field(description="Nodes written.")
    stale: int = Field(description="Nodes not written: an equal or newer report is stored.")
    deleted: int = Field(description="Nodes marked deleted.")
    refused: list[str] = Field(
        default_factory=list,
        description="Node ids of the batch (reported or in deletedIds) of another cluster.",
    )


class QueueSource(StrEnum):
    KAI = "kai"
    KUEUE_CLUSTER_QUEUE = "kueue-clusterqueue"
    KUEUE_LOCAL_QUEUE = "kueue-localqueue"
    FILE = "file"


class OrgUnitType(StrEnum):
    PROJECT = "project"
    DEPARTMENT = "department"


class ResourceQuota(BaseModel):
    """Deserved (guaranteed), limit and over-quota weight of one resource; ``used`` is what
    the scheduler reports in use."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    deserved: float | None = Field(None, ge=0, le=MAX_AMOUNT)
    limit: float | None = Field(None, ge=-1, le=MAX_AMOUNT)
    overQuotaWeight: float | None = Field(None, ge=0, le=MAX_AMOUNT)
    used: float | None = Field(None, ge=0, le=MAX_AMOUNT)


class NodePoolQuota(BaseModel):
    """A queue's quota in one node pool: GPUs (devices), CPU (millicores), memory (MB)."""

    model_config = ConfigDict(extra="forbid")

    nodePool: str = Field(min_length=1, max_length=_NAME)
    gpu: ResourceQuota = Field(default_factory=ResourceQuota)
    cpu: ResourceQuota | None = None
    memory: ResourceQuota | None = None


class OrgUnit(BaseModel):
    """The project or department a queue stands for, as the workloads name them."""

    model_config = ConfigDict(extra="forbid")

    type: OrgUnitType
    id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=_NAME)
    departmentId: str | None = Field(None, min_length=1, max_length=64)
    departmentName: str | None = Field(None, min_length=1, max_length=_NAME)
    namespace: str | None = Field(None, max_length=_NAME)

    @model_validator(mode="after")
    def _project_has_department(self) -> OrgUnit:
        if self.type is OrgUnitType.PROJECT and not (self.departmentId and self.departmentName):
            raise ValueError("a project needs departmentId and departmentName")
        return self


class IngestQueue(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: QueueSource
    name: str = Field(min_length=1, max_length=_NAME)
    parentName: str | None = Field(None, min_length=1, max_length=_NAME)
    priority: int | None = Field(None, ge=-(2**31), le=2**31 - 1)
    orgUnit: OrgUnit | None = None
    quotas: list[NodePoolQuota] = Field(default_factory=list, max_length=1024)
    details: dict[str, str] = Field(
        default_factory=dict,
        max_length=16,
        description="Source-specific facts kept as reported (e.g. a Kueue cohort).",
    )

    @model_validator(mode="after")
    def _pools_once(self) -> IngestQueue:
        pools = [quota.nodePool for quota in self.quotas]
        if len(set(pools)) != len(pools):
            raise ValueError("each node pool may have one quota per queue")
        return self


class IngestQueueBatch(StorableModel):
    """Every queue of one cluster as observed at ``observedAt``: queues of the cluster not in
    the batch and last observed before it are removed."""

    model_config = ConfigDict(extra="forbid")

    observedAt: AwareDatetime
    queues: list[IngestQueue] = Field(default_factory=list)

    @model_validator(mode="after")
    def _queues_once(self) -> IngestQueueBatch:
        keys = [(queue.source, queue.name) for queue in self.queues]
        if len(set(keys)) != len(keys):
            raise ValueError("each queue (source and name) may appear once")
        return self


class IngestQueueResult(BaseModel):
    accepted: int = Field(description="Queues written.")
    stale: int = Field(description="Queues not written: a newer report is stored.")
    removed: int = Field(description="Queues of the cluster no longer reported.")
    refused: list[str] = Field(
        default_factory=list,
        description="Names of queues whose project or department is another cluster's.",
    )
