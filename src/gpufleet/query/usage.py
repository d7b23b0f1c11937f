"""Usage questions as typed values: a window of whole UTC hours, groupings, time buckets,
filters, scope."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from gpufleet.core.times import to_ms
from gpufleet.core.workload_fields import NODEPOOL_NAME_RULE, is_nodepool_name
from gpufleet.query.choices import by_value, parse_choices, split_values
from gpufleet.query.errors import QueryError
from gpufleet.query.filters import parse_timestamp
from gpufleet.query.scope import UNRESTRICTED, WorkloadScope

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
MAX_GROUP_BY = 2
# Hourly buckets over a longer window would answer thousands of rows per group; days do.
MAX_HOURLY_WINDOW_MS = 31 * DAY_MS


class UsageGroupBy(StrEnum):
    CLUSTER = "cluster"
    NODEPOOL = "nodepool"
    DEPARTMENT = "department"
    PROJECT = "project"
    SUBMITTER = "submitter"
    TYPE = "type"


class UsageBucket(StrEnum):
    """A time bucket of the answer: each value is one group's figures in one hour or UTC day."""

    HOUR = "hour"
    DAY = "day"

    @property
    def ms(self) -> int:
        return HOUR_MS if self is UsageBucket.HOUR else DAY_MS


class UsageFilterField(StrEnum):
    """What a usage ``filterBy`` may name (only ``==``); a report's takes the first three."""

    PROJECT_NAME = "projectName"
    DEPARTMENT_NAME = "departmentName"
    CLUSTER_ID = "clusterId"
    PROJECT_ID = "projectId"
    DEPARTMENT_ID = "departmentId"
    CLUSTER_NAME = "clusterName"
    NODEPOOL = "nodepool"


@dataclass(frozen=True, slots=True)
class UsageWindow:
    """``[start_ms, end_ms)``, both on whole UTC hours."""

    start_ms: int
    end_ms: int

    @classmethod
    def covering(cls, start: datetime, end: datetime) -> UsageWindow:
        """The whole hours that hold [start, end): start rounds down, end rounds up."""
        start_ms, end_ms = to_ms(start), to_ms(end)
        return cls(start_ms - start_ms % HOUR_MS, end_ms + (-end_ms) % HOUR_MS)

    def split(self, at_ms: int) -> tuple[UsageWindow, UsageWindow]:
        return UsageWindow(self.start_ms, at_ms), UsageWindow(at_ms, self.end_ms)


@dataclass(frozen=True, slots=True)
class UsageQuery:
    window: UsageWindow
    group_by: tuple[UsageGroupBy, ...] = ()
    scope: WorkloadScope = UNRESTRICTED
    filters: tuple[tuple[UsageFilterField, str], ...] = ()
    # Also group by hour or UTC day (reports: one row per group and day).
    bucket: UsageBucket | None = None


@dataclass(frozen=True, slots=True)
class UsageFigures:
    """GPU-, CPU core-, memory GiB- and workload-hours of one group."""

    allocated_gpu_hours: float = 0.0
    used_gpu_hours: float = 0.0
    idle_gpu_hours: float = 0.0
    cpu_core_hours: float = 0.0
    memory_gib_hours: float = 0.0
    pending_workload_hours: float = 0.0


@dataclass(frozen=True, slots=True)
class UsageGroup:
    key: UsageGroupBy
    value: str
    name: str | None = None


@dataclass(frozen=True, slots=True)
class UsageRow:
    groups: tuple[UsageGroup, ...]
    figures: UsageFigures
    # Start of the row's bucket, when the question has one.
    bucket_ms: int | None = None


def parse_usage_group_by(values: Sequence[str] | None) -> tuple[UsageGroupBy, ...]:
    """Up to two distinct groupings, comma-separated or repeated."""
    groups = parse_choices("groupBy", values, by_value(UsageGroupBy), distinct=True)
    if len(groups) > MAX_GROUP_BY:
        raise QueryError("groupBy", f"at most {MAX_GROUP_BY} values allowed")
    return groups


def parse_usage_window(start: str | None, end: str | None, now: datetime) -> UsageWindow:
    """``start`` is required, ``end`` defaults to now; both ISO 8601."""
    if not start:
        raise QueryError("start", "is required")
    begin = parse_timestamp(start, parameter="start")
    finish = parse_timestamp(end, parameter="end") if end else now
    if finish <= begin:
        raise QueryError("end", "must be after start")
    return UsageWindow.covering(begin, finish)


def parse_usage_bucket(value: str | None, window: UsageWindow) -> UsageBucket | None:
    """``hour`` or ``day``; hours only for windows of at most 31 days."""
    if not value:
        return None
    bucket = by_value(UsageBucket).get(value)
    if bucket is None:
        raise QueryError("bucket", f"{value[:64]!r} is not one of hour, day")
    if bucket is UsageBucket.HOUR and window.end_ms - window.start_ms > MAX_HOURLY_WINDOW_MS:
        raise QueryError("bucket", "hour is allowed for windows of at most 31 days; use day")
    return bucket


def parse_usage_filters(values: Sequence[str] | None) -> tuple[tuple[UsageFilterField, str], ...]:
    """``field==value`` terms (AND-ed), comma-separated or repeated."""
    allowed = by_value(UsageFilterField)
    terms = []
    for term in split_values(values):
        name, operator, value = term.partition("==")
        field = allowed.get(name.strip())
        if field is None or not operator or not value.strip():
            fields = ", ".join(allowed)
            raise QueryError(
                "filterBy", f"{term[:64]!r} is not field==value with a field of {fields}"
            )
        value = value.strip()
        # Ingest refuses any other pool name, so no other can name a pool the ledger holds.
        if field is UsageFilterField.NODEPOOL and not is_nodepool_name(value):
            raise QueryError("filterBy", f"{term[:64]!r}: a node pool name {NODEPOOL_NAME_RULE}")
        terms.append((field, value))
    return tuple(terms)
