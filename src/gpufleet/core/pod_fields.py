"""The pod fields ``filterBy`` and ``sortBy`` may name, in the order of the reference's PodsSort.

Each is a column of ``workload_pods``; the parser, the SQL compiler, the OpenAPI enum and the
table's (column, id) indexes all read this table.
"""

from __future__ import annotations

from gpufleet.core.workload_fields import FieldKind, WorkloadField, catalogue

_T, _D = FieldKind.TEXT, FieldKind.DATE
POD_FIELDS = catalogue(
    WorkloadField("clusterId", _T, "cluster_id"),
    WorkloadField("workloadId", _T, "workload_id"),
    WorkloadField("revisionId", _T, "revision_id"),
    WorkloadField("nodeName", _T, "node_name"),
    WorkloadField("currentNodepool", _T, "nodepool"),
    WorkloadField("createdAt", _D, "created_at"),
    WorkloadField("completedAt", _D, "completed_at"),
    WorkloadField("deletedAt", _D, "deleted_at"),
)
DEFAULT_POD_SORT = "createdAt"
