"""The report fields ``filterBy`` and ``sortBy`` may name (the reference's
ReportFilterAndSortFields), each a column of ``reports``."""

from __future__ import annotations

from enum import StrEnum

from gpufleet.core.workload_fields import FieldKind, WorkloadField, catalogue

_T, _D = FieldKind.TEXT, FieldKind.DATE
REPORT_FIELDS = catalogue(
    WorkloadField("name", _T, "name"),
    WorkloadField("createdAt", _D, "created_at"),
    WorkloadField("createdBy", _T, "created_by"),
    WorkloadField("status", _T, "status"),
)
DEFAULT_REPORT_SORT = "createdAt"


class ReportStatus(StrEnum):
    PENDING = "Pending"
    PROCESSING = "Processing"
    READY = "Ready"
    FAILED = "Failed"


class ReportGroupBy(StrEnum):
    """What a report's rows are per (besides the day); the reference's ReportGroupByOptions."""

    NODEPOOL = "Nodepool"
    PROJECT = "Project"
    DEPARTMENT = "Department"
    CLUSTER = "Cluster"
