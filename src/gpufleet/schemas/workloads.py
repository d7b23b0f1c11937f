"""Workload wire shapes, field for field as the reference ``Workload``/``WorkloadDetailed``.

Field names are the wire names (camelCase) on purpose: these classes are the contract, and the
store never uses them on its read path (rows are serialised straight to JSON there).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from gpufleet.schemas.enums import (
    AuthorizationType,
    GpuRequestType,
    OrgType,
    Phase,
    PhaseReason,
    ReplicaType,
    Source,
    SourceApi,
)

QUANTITY_PATTERN = r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
Quantity = Annotated[str, Field(pattern=QUANTITY_PATTERN, max_length=64)]


class WireModel(BaseModel):
    model_config = ConfigDict(extra="forbid", use_enum_values=True)


class Condition(WireModel):
    type: str
    status: str
    message: str | None = None
    reason: str | None = None
    lastTransitionTime: datetime | None = None


class ExtendedResource(WireModel):
    resource: str | None = Field(None, min_length=1)
    quantity: str | None = Field(None, min_length=1)
    exclude: bool | None = None


class RequestResourceCores(WireModel):
    limit: float | None = None
    request: float | None = None


class RequestResourceQuantity(WireModel):
    limit: Quantity | None = None
    request: Quantity | None = None


class WorkloadRequestResources(WireModel):
    gpuRequestType: GpuRequestType | None = None
    gpu: RequestResourceCores | None = None
    gpuMemory: RequestResourceQuantity | None = None
    cpu: RequestResourceCores | None = None
    cpuMemory: RequestResourceQuantity | None = None
    extendedResources: list[ExtendedResource | None] | None = None


class WorkloadAllocatedResources(WireModel):
    gpu: float | None = None
    gpuMemory: Quantity | None = None
    cpu: float | None = None
    cpuMemory: Quantity | None = None
    extendedResources: list[ExtendedResource | None] | None = None


class ActionsSupport(WireModel):
    delete: bool | None = None
    suspend: bool | None = None


class RequestedPods(WireModel):
    number: int | None = None
    min: int | None = None
    max: int | None = None
    parallelism: int | None = None
    completions: int | None = None


class WorkloadConnection(WireModel):
    name: str
    toolType: str
    connectionType: str
    url: str | None = None
    authorizationType: AuthorizationType | None = None
    authorizedUsers: list[str] | None = None
    authorizedGroups: list[str] | None = None
    containerPort: int | None = None


class Datasource(WireModel):
    type: str | None = None
    name: str
    id: UUID


class Environment(WireModel):
    connections: list[WorkloadConnection] | None = None
    name: str
    id: UUID
    replicaType: ReplicaType | None = None


class Topology(WireModel):
    name: str | None = None
    preferredPlacement: str | None = None
    requiredPlacement: str | None = None


class PendingSchedulingMessage(WireModel):
    nodePool: str
    phaseReason: PhaseReason
    reason: str
    orgType: OrgType | None = None
    userMessage: str | None = None


class Workload(WireModel):
    tenantId: int
    runningPods: int
    phaseUpdatedAt: datetime
    k8sPhaseUpdatedAt: datetime
    updatedAt: datetime
    source: Source
    deletedAt: datetime | None
    type: str
    name: str
    id: UUID
    priority: int | None
    priorityClassName: str
    submittedBy: str | None = None
    clusterId: UUID
    projectName: str
    projectId: str
    departmentName: str
    departmentId: str
    namespace: str
    createdAt: datetime
    workloadRequestedResources: WorkloadRequestResources | None = None
    podsRequestedResources: WorkloadRequestResources | None = None
    allocatedResources: WorkloadAllocatedResources | None = None
    actionsSupport: ActionsSupport | None = None
    phase: Phase
    conditions: list[Condition]
    phaseMessage: str | None = None
    k8sPhase: str
    requestedPods: RequestedPods | None = None
    requestedNodePools: list[str] | None = None
    currentNodePools: list[str] | None = None
    completedAt: datetime | None = None
    images: list[str] | None = None
    urls: list[str] | None = None
    datasources: list[Datasource] | None = None
    environments: list[Environment] | None = None
    externalConnections: list[WorkloadConnection] | None = None
    distributedFramework: str | None = None
    additionalFields: dict[str, Any] | None = None
    preemptible: bool | None = None
    environmentVariables: dict[str, str] | None = None
    command: str | None = None
    arguments: str | None = None
    phaseReason: PhaseReason | None = None
    idleGpus: int | None = Field(None, json_schema_extra={"deprecated": True})
    idleAllocatedGpus: float | None = None
    totalPendingTimeSeconds: int | None = None
    totalRunningTimeSeconds: int | None = None
    category: str
    guaranteedRuntimeEndsAt: datetime | None = None
    aiApplicationId: str | None = None
    aiApplicationName: str | None = None
    sourceApi: SourceApi | None = None
    topology: Topology | None = None


class WorkloadDetailed(Workload):
    pendingSchedulingMessages: list[PendingSchedulingMessage] | None = None


class WorkloadList(BaseModel):
    next: int | None = Field(None, description="Offset of the next page; absent on the last.")
    workloads: list[Workload]


class WorkloadCount(BaseModel):
    count: int
