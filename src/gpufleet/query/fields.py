"""The one table of workload fields that ``filterBy`` and ``sortBy`` may name.

Adding a filterable field means adding a row here (and a column in ``store.tables``);
the parser, the validator, the SQL compiler and the OpenAPI enum all read this table.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class FieldKind(StrEnum):
    TEXT = "text"
    NUMBER = "number"
    INTEGER = "integer"
    DATE = "date"


class Operator(StrEnum):
    EQ = "=="
    NE = "!="
    LE = "<="
    GE = ">="
    CONTAINS = "=@"
    NOT_CONTAINS = "!@"
    STARTS_WITH = "=^"
    ENDS_WITH = "=$"


COMPARISON_OPERATORS = frozenset({Operator.EQ, Operator.NE, Operator.LE, Operator.GE})
ALLOWED_OPERATORS: dict[FieldKind, frozenset[Operator]] = {
    FieldKind.TEXT: frozenset(Operator),
    FieldKind.NUMBER: COMPARISON_OPERATORS,
    FieldKind.INTEGER: COMPARISON_OPERATORS,
    FieldKind.DATE: COMPARISON_OPERATORS,
}


@dataclass(frozen=True, slots=True)
class WorkloadField:
    name: str
    kind: FieldKind
    column: str
    # Computed against the request's "now" rather than read from a column.
    time_dependent: bool = False
    # Matches when any of the workload's values matches (current node pools).
    multi_valued: bool = False


def _f(name: str, kind: FieldKind, column: str, **flags: bool) -> WorkloadField:
    return WorkloadField(name, kind, column, **flags)


T, N, INT, D = FieldKind.TEXT, FieldKind.NUMBER, FieldKind.INTEGER, FieldKind.DATE

# Order matches the reference's sortBy enum.
WORKLOAD_FIELDS: dict[str, WorkloadField] = {
    f.name: f
    for f in (
        _f("type", T, "type"),
        _f("name", T, "name"),
        _f("clusterId", T, "cluster_id"),
        _f("projectId", T, "project_id"),
        _f("projectName", T, "project_name"),
        _f("departmentId", T, "department_id"),
        _f("departmentName", T, "department_name"),
        _f("createdAt", D, "created_at"),
        _f("deletedAt", D, "deleted_at"),
        _f("submittedBy", T, "submitted_by"),
        _f("phase", T, "phase"),
        _f("completedAt", D, "completed_at"),
        _f("nodepool", T, "nodepool", multi_valued=True),
        _f("distributedFramework", T, "distributed_framework"),
        _f("allocatedGPU", N, "allocated_gpu"),
        _f("idleGpus", INT, "idle_gpus"),
        _f("idleAllocatedGpus", N, "idle_allocated_gpus"),
        _f("phaseUpdatedAt", D, "phase_updated_at"),
        _f("category", T, "category"),
        _f("priority", INT, "priority"),
        _f("totalPendingTimeSeconds", INT, "pending_seconds_before", time_dependent=True),
        _f("totalRunningTimeSeconds", INT, "running_seconds_before", time_dependent=True),
        _f("priorityClassName", T, "priority_class_name"),
        _f("guaranteedRuntimeEndsAt", D, "guaranteed_runtime_ends_at"),
        _f("aiApplicationId", T, "ai_application_id"),
        _f("aiApplicationName", T, "ai_application_name"),
    )
}
del T, N, INT, D

# Fields the free-text ``search`` looks in, in the order they are joined into search_text.
SEARCH_FIELDS = ("name", "projectName", "departmentName", "type", "phase", "submittedBy")
