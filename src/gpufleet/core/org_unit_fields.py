"""The project and department fields ``filterBy`` and ``sortBy`` may name, in the order of the
reference's ``ProjectFilterSortFields`` and ``DepartmentFilterSortFields``.

``column`` names the value in the store's listing statement (``store.org_units``), where each
is a column of the unit or a figure computed for it (quota, allocation).
"""

from __future__ import annotations

from gpufleet.core.workload_fields import FieldKind, WorkloadField, catalogue

_T, _N, _D = FieldKind.TEXT, FieldKind.NUMBER, FieldKind.DATE


PROJECT_FIELDS = catalogue(
    WorkloadField("name", _T, "name", 0),
    WorkloadField("clusterId", _T, "cluster_id", 1),
    WorkloadField("departmentId", _T, "department_id", 2),
    WorkloadField("parentId", _T, "department_id", 3),
    WorkloadField("parentName", _T, "department_name", 4),
    WorkloadField("phase", _T, "phase", 5),
    WorkloadField("totalGpuQuota", _N, "gpu_quota", 6),
    WorkloadField("gpuAllocated", _N, "gpu_allocated", 7),
    WorkloadField("createdAt", _D, "created_at", 8),
)
DEPARTMENT_FIELDS = catalogue(
    WorkloadField("name", _T, "name", 0),
    WorkloadField("clusterId", _T, "cluster_id", 1),
    WorkloadField("totalGpuQuota", _N, "gpu_quota", 2),
    WorkloadField("gpuAllocated", _N, "gpu_allocated", 3),
    WorkloadField("createdAt", _D, "created_at", 4),
)
DEFAULT_ORG_UNIT_SORT = "name"
# The phase of every project gpufleet knows: it exists as long as its agent reports it.
PROJECT_PHASE = "Ready"
