"""Wire shapes of ``/api/v1/org-unit/projects`` and ``/departments`` (the reference
``Project``, ``Department`` and ``DepartmentForList``), as gpufleet fills them."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field


class OrgUnitTelemetryType(StrEnum):
    GPU_QUOTA = "GPU_QUOTA"
    CPU_QUOTA = "CPU_QUOTA"
    MEMORY_QUOTA = "MEMORY_QUOTA"
    GPU_ALLOCATION = "GPU_ALLOCATION"
    CPU_ALLOCATION = "CPU_ALLOCATION"
    MEMORY_ALLOCATION = "MEMORY_ALLOCATION"
    GPU_ALLOCATION_NON_PREEMPTIBLE = "GPU_ALLOCATION_NON_PREEMPTIBLE"
    CPU_ALLOCATION_NON_PREEMPTIBLE = "CPU_ALLOCATION_NON_PREEMPTIBLE"
    MEMORY_ALLOCATION_NON_PREEMPTIBLE = "MEMORY_ALLOCATION_NON_PREEMPTIBLE"


class OrgUnitMetricType(StrEnum):
    GPU_QUOTA = "GPU_QUOTA"
    CPU_QUOTA_MILLICORES = "CPU_QUOTA_MILLICORES"
    CPU_MEMORY_QUOTA_MB = "CPU_MEMORY_QUOTA_MB"
    GPU_ALLOCATION = "GPU_ALLOCATION"
    CPU_ALLOCATION_MILLICORES = "CPU_ALLOCATION_MILLICORES"
    CPU_MEMORY_ALLOCATION_MB = "CPU_MEMORY_ALLOCATION_MB"
    GPU_MEMORY_UTILIZATION = "GPU_MEMORY_UTILIZATION"


class Resource(BaseModel):
    deserved: float | None = None
    limit: float | None = None
    overQuotaWeight: float | None = None


class MemoryResource(Resource):
    units: str = Field("MB", examples=["MB"])


class NodePoolReference(BaseModel):
    id: str
    name: str | None = None


class Resources(BaseModel):
    """A unit's quota in one node pool: GPUs (devices), CPU (millicores), memory."""

    nodePool: NodePoolReference | None = None
    gpu: Resource
    cpu: Resource | None = None
    memory: MemoryResource | None = None


class TotalResources(BaseModel):
    gpuQuota: float | None = None
    cpuQuota: float | None = None
    memoryQuota: float | None = None


class QuotaStatusResource(BaseModel):
    gpu: float | None = None


class QuotaStatus(BaseModel):
    allocated: QuotaStatusResource | None = None
    allocatedNonPreemptible: QuotaStatusResource | None = None
    requested: QuotaStatusResource | None = None


class QuotaStatusNodePool(QuotaStatus):
    nodePoolId: str
    nodePoolName: str


class ProjectStatus(BaseModel):
    namespace: str | None = None
    phase: str | None = Field(None, examples=["Ready"])
    quotaStatus: QuotaStatus | None = None
    nodePoolQuotaStatuses: list[QuotaStatusNodePool] | None = None


class ParentReference(BaseModel):
    id: str
    name: str


class Project(BaseModel):
    id: str = Field(examples=["33"])
    name: str
    description: str
    parentId: str = Field(description="The department's id.")
    parent: ParentReference | None = None
    clusterId: str = Field(json_schema_extra={"format": "uuid"})
    createdAt: str
    updatedAt: str
    requestedNamespace: str | None = None
    enforceRunaiScheduler: bool
    resources: list[Resources]
    totalResources: TotalResources
    effective: dict
    status: ProjectStatus


class ProjectList(BaseModel):
    projects: list[Project]
    next: int | None = None


class DepartmentStatus(BaseModel):
    quotaStatus: QuotaStatus | None = None
    nodePoolQuotaStatuses: list[QuotaStatusNodePool] | None = None


class AggregatedResources(BaseModel):
    nodePool: NodePoolReference
    gpu: Resource | None = None


class DepartmentForList(BaseModel):
    id: str = Field(examples=["1"])
    name: str
    description: str
    clusterId: str = Field(json_schema_extra={"format": "uuid"})
    createdAt: str
    updatedAt: str
    resources: list[Resources]
    totalResources: TotalResources | None
    status: DepartmentStatus | None = None


class Department(DepartmentForList):
    projectsAggregatedResources: list[AggregatedResources] | None = None


class DepartmentList(BaseModel):
    departments: list[DepartmentForList]
    next: int | None = None


class OrgUnitCount(BaseModel):
    count: int
