"""Wire shapes of the nodes and node-pools endpoints (the reference ``Node``, ``Nodepool``)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from gpufleet.schemas.enums import NodepoolPhase, NodeStatus


class GpuInfo(BaseModel):
    gpuType: str = Field(examples=["NVIDIA-A100-SXM4-80GB"])
    gpuCount: int


class NodeConditionDetails(BaseModel):
    type: str
    reason: str
    message: str | None = None


class NodeTaint(BaseModel):
    key: str
    value: str | None = None
    effect: str = Field(examples=["NoSchedule"])


class Node(BaseModel):
    id: str = Field(description="The node's uid.")
    name: str
    clusterUuid: str
    status: NodeStatus
    nodePool: str
    gpuInfo: GpuInfo | None = None
    nvLinkDomainUid: str | None = None
    nvLinkCliqueId: str | None = None
    conditions: list[NodeConditionDetails] = Field(default_factory=list)
    taints: list[NodeTaint] = Field(default_factory=list)
    createdAt: datetime
    updatedAt: datetime


class NodeList(BaseModel):
    nodes: list[Node]


class Count(BaseModel):
    count: int


class NodepoolStatus(BaseModel):
    nodes: list[str] = Field(default_factory=list)
    conditions: list[dict] = Field(default_factory=list)
    gpuNetworkAccelerationDetected: bool = False


class Nodepool(BaseModel):
    id: str
    name: str
    clusterId: str
    clusterName: str
    tenantId: int
    labelKey: str
    labelValue: str
    isDefault: bool
    phase: NodepoolPhase
    phaseMessage: str | None = None
    status: NodepoolStatus
    createdAt: datetime
    createdBy: str
    updatedAt: datetime
    updatedBy: str
    deletedAt: datetime | None = None


class NodepoolList(BaseModel):
    nodepools: list[Nodepool]
