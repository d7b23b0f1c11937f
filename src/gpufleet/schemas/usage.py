"""Wire shapes of ``GET /api/v1/usage`` (a gpufleet extension, not a Run:ai schema)."""

from __future__ import annotations

from pydantic import BaseModel, Field

# Wire name of each figure -> attribute of ``query.usage.UsageFigures``, in wire order; the
# CSV columns of the usage answer and of report files follow it.
FIGURE_FIELDS: dict[str, str] = {
    "allocatedGpuHours": "allocated_gpu_hours",
    "usedGpuHours": "used_gpu_hours",
    "idleGpuHours": "idle_gpu_hours",
    "cpuCoreHours": "cpu_core_hours",
    "memoryGibHours": "memory_gib_hours",
    "pendingWorkloadHours": "pending_workload_hours",
}


class UsageGroup(BaseModel):
    key: str = Field(examples=["project"])
    value: str = Field(examples=["17"])
    name: str = Field(examples=["team-a"])


class UsageValue(BaseModel):
    start: str | None = Field(
        None,
        description="Start of the value's hour or UTC day (only with bucket).",
        examples=["2025-03-01T00:00:00Z"],
    )
    groups: list[UsageGroup] = Field(max_length=2)
    allocatedGpuHours: float = Field(description="GPU-hours allocated.")
    usedGpuHours: float = Field(
        description="Allocated GPU-hours weighted by measured GPU utilisation (measured hours)."
    )
    idleGpuHours: float = Field(description="Allocated GPU-hours idle by the idle-GPU rule.")
    cpuCoreHours: float = Field(description="CPU core-hours allocated.")
    memoryGibHours: float = Field(description="Memory GiB-hours allocated.")
    pendingWorkloadHours: float = Field(description="Hours workloads spent Pending.")


class UsageResponse(BaseModel):
    values: list[UsageValue]
