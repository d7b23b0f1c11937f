"""The node and node-pool fields ``filterBy`` and ``sortBy`` may name, in the order of the
reference's ``NodeFilterSortFields`` and ``NodepoolSortFilterFields``.

``column`` names the value in the store's listing statement (``store.nodes``,
``store.nodepools``): a column of the table, or a figure computed for each row.
"""

from __future__ import annotations

from gpufleet.core.workload_fields import FieldKind, WorkloadField, catalogue

_T, _D = FieldKind.TEXT, FieldKind.DATE


NODE_FIELDS = catalogue(
    WorkloadField("name", _T, "name", 0),
    WorkloadField("status", _T, "status", 1),
    WorkloadField("nodePool", _T, "nodepool", 2),
    WorkloadField("gpuType", _T, "gpu_type", 3),
    WorkloadField("nvLinkDomainUid", _T, "nvlink_domain_uid", 4),
    WorkloadField("nvLinkCliqueId", _T, "nvlink_clique_id", 5),
    WorkloadField("clusterUuid", _T, "cluster_id", 6),
)
NODEPOOL_FIELDS = catalogue(
    WorkloadField("name", _T, "name", 0),
    WorkloadField("phase", _T, "phase", 1),
    WorkloadField("clusterId", _T, "cluster_id", 2),
    WorkloadField("createdAt", _D, "created_at", 3),
    WorkloadField("updatedAt", _D, "updated_at", 4),
    WorkloadField("networkTopologyName", _T, "network_topology_name", 5),
    WorkloadField("gpuNetworkAccelerationDetection", _T, "acceleration_detection", 6),
    WorkloadField("gpuNetworkAccelerationDetected", _T, "acceleration_detected", 7),
    WorkloadField("gpuNetworkAccelerationLabelKey", _T, "acceleration_label_key", 8),
    WorkloadField("swapEnabled", _T, "swap_enabled", 9),
    WorkloadField("nodeLevelSchedulerEnabled", _T, "node_level_scheduler_enabled", 10),
)
DEFAULT_NODE_SORT = "name"
