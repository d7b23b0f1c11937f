"""Event and history wire shapes (the reference ``Event`` and ``HistoryRecord``), and events
as a cluster agent reports them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from gpufleet.schemas.enums import Phase
from gpufleet.schemas.storable import StorableModel


class EventType(StrEnum):
    """The types Kubernetes gives events."""

    NORMAL = "Normal"
    WARNING = "Warning"


class InvolvedObject(BaseModel):
    model_config = ConfigDict(extra="forbid")

    uid: UUID
    kind: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=253)
    namespace: str = Field(max_length=253)


class Event(BaseModel):
    id: UUID | None = None
    createdAt: datetime
    type: str
    reason: str | None = None
    message: str
    source: str | None = None
    involvedObject: InvolvedObject | None = None
    clusterId: UUID


class EventList(BaseModel):
    next: int | None = Field(None, description="Offset of the next page; absent on the last.")
    events: list[Event]


class FleetEvent(Event):
    """An event of the fleet-wide list (a gpufleet extension): the reference ``Event`` with
    the workload it belongs to and that workload's project."""

    count: int = Field(description="How often the event occurred (its repeats coalesced).")
    workloadId: UUID
    workloadName: str
    projectId: str
    projectName: str


class FleetEventList(BaseModel):
    next: int | None = Field(None, description="Offset of the next page; absent on the last.")
    events: list[FleetEvent]


class FleetEventCount(BaseModel):
    count: int


class HistoryRecordType(StrEnum):
    EVENT = "Event"
    PHASE_UPDATE = "PhaseUpdate"


class HistoryRecordMeta(BaseModel):
    creationTimestamp: datetime
    type: HistoryRecordType


class PhaseUpdate(BaseModel):
    phase: Phase
    phaseMessage: str


class HistoryRecordSpec(BaseModel):
    phaseUpdate: PhaseUpdate | None = None
    event: Event | None = None


class HistoryRecord(BaseModel):
    meta: HistoryRecordMeta
    spec: HistoryRecordSpec


class HistoryList(BaseModel):
    next: int | None = Field(None, description="Offset of the next page; absent on the last.")
    records: list[HistoryRecord]


class IngestEvent(BaseModel):
    """One Kubernetes event, its repeats coalesced: ``createdAt`` is the latest occurrence."""

    model_config = ConfigDict(extra="forbid")

    id: UUID = Field(description="The Kubernetes event's uid.")
    workloadId: UUID
    createdAt: AwareDatetime
    type: str = Field(min_length=1, max_length=32)
    reason: str = Field("", max_length=128)
    message: str = Field("", max_length=32_768)
    source: str = Field("", max_length=253)
    count: int = Field(1, ge=1, le=2**31 - 1)
    involvedObject: InvolvedObject


class IngestEventBatch(StorableModel):
    model_config = ConfigDict(extra="forbid")

    events: list[IngestEvent]


class IngestEventResult(BaseModel):
    accepted: int = Field(description="Events written (new, or newer than the stored report).")
    ignored: int = Field(
        description=(
            "Events not written: of a workload unknown here or of another cluster, or not "
            "newer than what is stored."
        )
    )
