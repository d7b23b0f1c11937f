"""Wire shapes of ``/api/v1/clusters`` (the reference ``DisplayedCluster``) and of the
grouped metrics of clusters (``GroupedMetricsResponse``)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field

from gpufleet.schemas.metrics import MeasurementValue


class ClusterState(StrEnum):
    WAITING_TO_CONNECT = "WaitingToConnect"
    CONNECTED = "Connected"
    DISCONNECTED = "Disconnected"
    MISSING_PREREQUISITES = "MissingPrerequisites"
    SERVICE_ISSUES = "ServiceIssues"
    UNKNOWN = "Unknown"


class ClusterVerbosity(StrEnum):
    METADATA = "metadata"
    FULL = "full"


class ClusterDisplayedStatus(BaseModel):
    """What gpufleet knows of a cluster's status: its connection state."""

    state: ClusterState | None = None


class DisplayedCluster(BaseModel):
    uuid: str = Field(json_schema_extra={"format": "uuid"})
    tenantId: int = Field(examples=[1001])
    name: str
    createdAt: str
    updatedAt: str | None = None
    lastLiveness: str | None = Field(
        None, description="When the cluster's agent last reported (null: never)."
    )
    status: ClusterDisplayedStatus | None = None
    domain: str | None = None
    version: str | None = None
    deletedAt: str | None = None
    deleteRequestedAt: str | None = None


class GroupedMeasurementGroup(BaseModel):
    key: str = Field(examples=["Nodepool"])
    value: str = Field(examples=["default"])


class GroupedMeasurementResponse(BaseModel):
    type: str = Field(description="specifies what data returned", examples=["ALLOCATED_GPU"])
    labels: dict[str, str] | None = None
    groups: list[GroupedMeasurementGroup] | None = None
    values: list[MeasurementValue] | None


class GroupedMetricsResponse(BaseModel):
    measurements: list[GroupedMeasurementResponse]
