"""The pods of a workload, as the cluster agent reports them and the pods route returns them."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

# The longest pod phase a report may carry.
POD_PHASE_MAX_LENGTH = 32


class WorkloadPod(BaseModel):
    """A pod of a workload as the agent reports it; extra keys are kept and returned as given."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(min_length=1, max_length=253)
    uid: str = Field(min_length=1, max_length=64)
    nodeName: str | None = Field(None, max_length=253)
    phase: str = Field(min_length=1, max_length=POD_PHASE_MAX_LENGTH)
    gpuIndices: list[str] = Field(default_factory=list, max_length=1024)
    nodepool: str | None = Field(None, max_length=253)


class WorkloadPods(BaseModel):
    pods: list[WorkloadPod]
