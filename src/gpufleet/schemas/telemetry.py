"""Wire shapes of ``GET /api/v1/workloads/telemetry`` (the reference ``TelemetryResponse``)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class TelemetryGroup(BaseModel):
    key: str = Field(examples=["DepartmentId"])
    value: str = Field(examples=["1"])
    name: str | None = Field(None, examples=["department-A"])


class TelemetryValue(BaseModel):
    value: str = Field(examples=["85"])
    groups: list[TelemetryGroup] | None = Field(
        None, max_length=2, description="columns the data is grouped by"
    )


class TelemetryResponse(BaseModel):
    type: str = Field(description="specifies what data returned", examples=["WORKLOADS_COUNT"])
    timestamp: str = Field(examples=["2023-06-06T12:09:18.211Z"])
    values: list[TelemetryValue]
