"""The one catalogue of workload fields: every other list of them is derived from this table.

A row is a field of the reference ``WorkloadDetailed`` (in the reference's order) or a name that
only ``filterBy``/``sortBy`` know (``nodepool``, ``allocatedGPU``). It says where the value is
stored (a column, or the nested JSON document), its kind, the longest value a column holds,
and whether ``filterBy`` and ``sortBy`` may name it, and at which place of the reference's
``sortBy`` enum. ``query.fields``, ``store.workload_documents``, ``store.tables`` and
``schemas.ingest`` read it, and ``GET /api/v1/workloads/fields`` serves it to the dashboard.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class FieldKind(StrEnum):
    TEXT = "text"
    NUMBER = "number"
    INTEGER = "integer"
    DATE = "date"
    # Nested values kept in the workload's JSON document; returned, never filtered.
    DOCUMENT = "document"


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
PATTERNS = frozenset(Operator) - COMPARISON_OPERATORS
ALLOWED_OPERATORS: dict[FieldKind, frozenset[Operator]] = {
    FieldKind.TEXT: frozenset(Operator),
    FieldKind.NUMBER: COMPARISON_OPERATORS,
    FieldKind.INTEGER: COMPARISON_OPERATORS,
    FieldKind.DATE: COMPARISON_OPERATORS,
    FieldKind.DOCUMENT: frozenset(),
}


@dataclass(frozen=True, slots=True)
class WorkloadField:
    """One row of the catalogue."""

    name: str
    kind: FieldKind
    # The scalar column holding it; None for document fields.
    column: str | None = None
    # Place in the reference's sortBy enum; None when filterBy and sortBy cannot name it.
    sort_rank: int | None = None
    # The longest string the column holds; None for no limit.
    max_length: int | None = None
    # Required on the wire (a NOT NULL column), or always sent, as null when unknown.
    required: bool = False
    null_on_wire: bool = False
    # Not a wire field of its own: only filterBy/sortBy name it.
    query_only: bool = False
    # Only in the single-workload answer, not in listings.
    detail_only: bool = False
    # A total of time in a phase (the column holds the seconds accumulated before the current
    # stretch); for a workload in ``timed_phase`` the request's "now" adds the stretch.
    timed_phase: str | None = None
    # Matches when any of the workload's values matches (current node pools).
    multi_valued: bool = False
    # Few distinct values, each shared by many workloads (phase, project, cluster, ...): a
    # sorted page finds its rows fastest by walking the sort's index and checking this field
    # row by row, stopping after the page, rather than gathering every match and sorting.
    coarse: bool = False

    @property
    def filterable(self) -> bool:
        return self.sort_rank is not None

    @property
    def sortable(self) -> bool:
        return self.sort_rank is not None

    @property
    def time_dependent(self) -> bool:
        """Computed against the request's "now"."""
        return self.timed_phase is not None

    @property
    def sort_indexed(self) -> bool:
        """Sorting by it walks an index of (column, id): a stored column, not a computed total."""
        return self.sortable and self.column is not None and not self.time_dependent

    @property
    def stored_scalar(self) -> bool:
        """A wire field kept as it is in its own column."""
        return self.column is not None and not self.query_only and not self.time_dependent


def catalogue(*fields: WorkloadField) -> dict[str, WorkloadField]:
    """The fields keyed by wire name, in the order given (the order of the reference's enum)."""
    return {f.name: f for f in fields}


T, N, INT, D, J = (
    FieldKind.TEXT,
    FieldKind.NUMBER,
    FieldKind.INTEGER,
    FieldKind.DATE,
    FieldKind.DOCUMENT,
)
NAME, UUID_TEXT = 253, 36

# WorkloadDetailed's fields in the reference's order, then the names only queries use.
WORKLOAD_CATALOGUE: tuple[WorkloadField, ...] = (
    WorkloadField("tenantId", INT, "tenant_id", required=True),
    WorkloadField("runningPods", INT, "running_pods", required=True),
    WorkloadField("phaseUpdatedAt", D, "phase_updated_at", 17, required=True),
    WorkloadField("k8sPhaseUpdatedAt", D, "k8s_phase_updated_at", required=True),
    WorkloadField("updatedAt", D, "updated_at", required=True),
    WorkloadField("source", T, "source", max_length=32, required=True),
    WorkloadField("deletedAt", D, "deleted_at", 8, null_on_wire=True),
    WorkloadField("type", T, "type", 0, 128, required=True, coarse=True),
    WorkloadField("name", T, "name", 1, NAME, required=True),
    WorkloadField("id", T, "id", max_length=UUID_TEXT, required=True),
    WorkloadField("priority", INT, "priority", 19, null_on_wire=True),
    WorkloadField(
        "priorityClassName", T, "priority_class_name", 22, NAME, required=True, coarse=True
    ),
    WorkloadField("submittedBy", T, "submitted_by", 9, NAME),
    WorkloadField("clusterId", T, "cluster_id", 2, UUID_TEXT, required=True, coarse=True),
    WorkloadField("projectName", T, "project_name", 4, NAME, required=True, coarse=True),
    WorkloadField("projectId", T, "project_id", 3, 64, required=True, coarse=True),
    WorkloadField("departmentName", T, "department_name", 6, NAME, required=True, coarse=True),
    WorkloadField("departmentId", T, "department_id", 5, 64, required=True, coarse=True),
    WorkloadField("namespace", T, "namespace", max_length=NAME, required=True),
    WorkloadField("createdAt", D, "created_at", 7, required=True),
    WorkloadField("workloadRequestedResources", J),
    WorkloadField("podsRequestedResources", J),
    WorkloadField("allocatedResources", J),
    WorkloadField("actionsSupport", J),
    WorkloadField("phase", T, "phase", 10, 32, required=True, coarse=True),
    WorkloadField("conditions", J, required=True),
    WorkloadField("phaseMessage", T, "phase_message"),
    WorkloadField("k8sPhase", T, "k8s_phase", max_length=64, required=True),
    WorkloadField("requestedPods", J),
    WorkloadField("requestedNodePools", J),
    WorkloadField("currentNodePools", J),
    WorkloadField("completedAt", D, "completed_at", 11),
    WorkloadField("images", J),
    WorkloadField("urls", J),
    WorkloadField("datasources", J),
    WorkloadField("environments", J),
    WorkloadField("externalConnections", J),
    WorkloadField("distributedFramework", T, "distributed_framework", 13, 64, coarse=True),
    WorkloadField("additionalFields", J),
    WorkloadField("preemptible", J),
    WorkloadField("environmentVariables", J),
    WorkloadField("command", J),
    WorkloadField("arguments", J),
    WorkloadField("phaseReason", J),
    WorkloadField("idleGpus", INT, "idle_gpus", 15),
    WorkloadField("idleAllocatedGpus", N, "idle_allocated_gpus", 16),
    WorkloadField(
        "totalPendingTimeSeconds", INT, "pending_seconds_before", 20, timed_phase="Pending"
    ),
    WorkloadField(
        "totalRunningTimeSeconds", INT, "running_seconds_before", 21, timed_phase="Running"
    ),
    WorkloadField("category", T, "category", 18, 64, required=True, coarse=True),
    WorkloadField("guaranteedRuntimeEndsAt", D, "guaranteed_runtime_ends_at", 23),
    WorkloadField("aiApplicationId", T, "ai_application_id", 24, NAME),
    WorkloadField("aiApplicationName", T, "ai_application_name", 25, NAME),
    WorkloadField("sourceApi", J),
    WorkloadField("topology", J),
    WorkloadField("pendingSchedulingMessages", J, detail_only=True),
    # The first current node pool (membership lives in workload_nodepools) and the GPUs of
    # allocatedResources, as columns so they can be sorted on.
    WorkloadField(
        "nodepool", T, "nodepool", 12, NAME, query_only=True, multi_valued=True, coarse=True
    ),
    WorkloadField("allocatedGPU", N, "allocated_gpu", 14, query_only=True, required=True),
)
del T, N, INT, D, J

WORKLOAD_FIELDS_BY_NAME = catalogue(*WORKLOAD_CATALOGUE)
# The wire fields of a listed workload, in the reference's order.
WIRE_ORDER: tuple[str, ...] = tuple(
    f.name for f in WORKLOAD_CATALOGUE if not f.query_only and not f.detail_only
)
# What filterBy and sortBy may name, in the order of the reference's sortBy enum.
QUERY_FIELDS: tuple[WorkloadField, ...] = tuple(
    sorted((f for f in WORKLOAD_CATALOGUE if f.sortable), key=lambda f: f.sort_rank or 0)
)
# The totals of time in a phase, each counting while a workload is in its ``timed_phase``.
TIMED_FIELDS: tuple[WorkloadField, ...] = tuple(f for f in WORKLOAD_CATALOGUE if f.time_dependent)
# The longest node pool name a workload may ask for or run in (the pool columns' width).
NODEPOOL_NAME_MAX = 253
NODEPOOL_NAME_RULE = f"must be 1 to {NODEPOOL_NAME_MAX} characters long"
# Fields the free-text ``search`` looks in, in the order they are joined into search_text.
SEARCH_FIELDS = ("name", "projectName", "departmentName", "type", "phase", "submittedBy")


def is_nodepool_name(text: str) -> bool:
    """Whether ingest takes ``text`` as a node pool's name: never empty, as long as the pool
    columns hold."""
    return 0 < len(text) <= NODEPOOL_NAME_MAX
