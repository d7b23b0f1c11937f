"""Wire shapes of the Reports API (the reference's ReportRequestFields and Report)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from pydantic import ConfigDict, Field, field_validator

from gpufleet.core.report_fields import ReportGroupBy, ReportStatus
from gpufleet.schemas.storable import StorableModel

REPORT_FILTER_PATTERN = re.compile(r"^(projectName|departmentName|clusterId)(==).+$")


class ReportRequestFields(StorableModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=253, examples=["2023 GPU report"])
    description: str | None = Field(None, max_length=4096)
    start: datetime = Field(description="timestamp from when to fetch data in UTC")
    end: datetime = Field(description="timestamp until when to fetch data in UTC")
    groupBy: ReportGroupBy | None = None
    filterBy: list[str] = Field(
        default_factory=list,
        max_length=20,
        description="Filter results by a parameter. Use the format field-name == value.",
        examples=[["projectName==some-name"]],
    )

    @field_validator("start", "end")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        # The reference documents both as UTC; a time without an offset is read as UTC, as the
        # SDK sends whatever datetime its caller built.
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value

    @field_validator("filterBy")
    @classmethod
    def _filters(cls, values: list[str]) -> list[str]:
        for value in values:
            if not REPORT_FILTER_PATTERN.match(value) or len(value) > 300:
                raise ValueError(
                    f"{value[:64]!r} is not projectName, departmentName or clusterId =="
                )
        return values


class Report(ReportRequestFields):
    model_config = ConfigDict(extra="forbid")

    id: str
    tenantId: int
    createdAt: datetime
    createdBy: str
    status: ReportStatus
    statusMessage: str | None = None
    statusUpdatedAt: datetime


class ReportList(StorableModel):
    reports: list[Report]


class ReportsAvailability(StorableModel):
    isAvailable: bool


class ReportCount(StorableModel):
    count: int
