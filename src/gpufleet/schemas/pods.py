"""Pod wire shapes: the reference ``Pod`` as served, and a pod as a cluster agent reports it."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from gpufleet.schemas.node_names import PodNodeName
from gpufleet.schemas.workloads import WorkloadAllocatedResources, WorkloadRequestResources

# The longest pod phase a report may carry (the width of the stored column).
POD_PHASE_MAX_LENGTH = 64


class PodVerbosity(StrEnum):
    BRIEF = "brief"
    FULL = "full"


class Container(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=253)
    image: str = Field(max_length=1024)
    startedAt: AwareDatetime | None = None


class Pod(BaseModel):
    """The reference ``Pod`` (sync, computed and verbosity fields)."""

    id: UUID
    name: str
    workloadId: UUID
    clusterId: UUID
    projectId: str | None = None
    nodeName: str | None = None
    currentNodePool: str | None = None
    requestedNodePools: list[str] | None = None
    k8sPhase: str
    priorityClassName: str
    revisionId: UUID | None = None
    ip: str | None = None
    createdAt: datetime
    completedAt: datetime | None = None
    containers: list[Container]
    requestedResources: WorkloadRequestResources | None = None
    allocatedResources: WorkloadAllocatedResources | None = None
    tolerations: list[dict[str, Any]] | None = None
    nodeAffinity: dict[str, Any] | None = None
    tenantId: int
    updatedAt: datetime
    k8sPhaseUpdatedAt: datetime
    deletedAt: datetime | None = None
    projectName: str | None = None
    workloadName: str | None = None


class PodList(BaseModel):
    next: int | None = Field(None, description="Offset of the next page; absent on the last.")
    pods: list[Pod]


class PodCount(BaseModel):
    count: int


class IngestPod(BaseModel):
    """A pod of a workload as the agent sees it; only ``name``, ``uid`` and ``phase`` are needed.

    ``createdAt`` defaults to the workload's ``observedAt`` the first time the pod is seen.
    Keys beyond these are kept and returned under the gpufleet extension ``gpuIndices``.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=253)
    uid: UUID
    nodeName: PodNodeName = None
    phase: str = Field(min_length=1, max_length=POD_PHASE_MAX_LENGTH)
    gpuIndices: list[str] = Field(default_factory=list, max_length=1024)
    nodepool: str | None = Field(None, max_length=253)
    requestedNodePools: list[str] | None = Field(None, max_length=64)
    ip: str | None = Field(None, max_length=64)
    revisionId: UUID | None = None
    priorityClassName: str | None = Field(None, max_length=253)
    createdAt: AwareDatetime | None = None
    completedAt: AwareDatetime | None = None
    containers: list[Container] = Field(default_factory=list, max_length=256)
    requestedResources: WorkloadRequestResources | None = None
    allocatedResources: WorkloadAllocatedResources | None = None
    tolerations: list[dict[str, Any]] | None = Field(None, max_length=256)
    nodeAffinity: dict[str, Any] | None = None
