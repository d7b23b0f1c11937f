"""Rows of projects and departments, with their usage and quotas, in the reference shapes
(``Project``, ``Department``, ``DepartmentForList``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gpufleet.core.identifiers import is_uuid
from gpufleet.core.org_unit_fields import PROJECT_PHASE
from gpufleet.core.times import format_rfc3339
from gpufleet.store.node_ingest import nodepool_id
from gpufleet.store.org_figures import UnitKind, UnitUsage, Usage, unit_usage
from gpufleet.store.org_quotas import PoolQuota, unit_quotas
from gpufleet.store.tables import projects

P = projects.c


def _resource(deserved, limit, weight) -> dict[str, Any]:
    return {"deserved": deserved, "limit": limit, "overQuotaWeight": weight}


def _resources(cluster_id: str, quotas: Mapping[str, PoolQuota]) -> list[dict[str, Any]]:
    """The reference ``Resources`` of each node pool the unit has a quota in."""
    resources = []
    for pool, quota in sorted(quotas.items()):
        item: dict[str, Any] = {
            "nodePool": {"id": nodepool_id(cluster_id, pool), "name": pool},
            "gpu": _resource(quota.gpu_deserved, quota.gpu_limit, quota.gpu_over_quota_weight),
            "cpu": None,
            "memory": None,
        }
        if quota.cpu_deserved is not None:
            item["cpu"] = _resource(
                quota.cpu_deserved, quota.cpu_limit, quota.cpu_over_quota_weight
            )
        if quota.memory_deserved is not None:
            item["memory"] = {
                **_resource(
                    quota.memory_deserved, quota.memory_limit, quota.memory_over_quota_weight
                ),
                "units": "MB",
            }
        resources.append(item)
    return resources


def _total(quotas: Mapping[str, PoolQuota], attribute: str) -> float | None:
    values = [getattr(q, attribute) for q in quotas.values() if getattr(q, attribute) is not None]
    return float(sum(values)) if values else None


def _total_resources(quotas: Mapping[str, PoolQuota]) -> dict[str, float | None]:
    return {
        "gpuQuota": _total(quotas, "gpu_deserved"),
        "cpuQuota": _total(quotas, "cpu_deserved"),
        "memoryQuota": _total(quotas, "memory_deserved"),
    }


def _quota_status(usage: Usage) -> dict[str, Any]:
    return {
        "allocated": {"gpu": usage.allocated},
        "allocatedNonPreemptible": {"gpu": usage.non_preemptible},
        "requested": {"gpu": usage.requested},
    }


def _pool_statuses(
    cluster_id: str, usage: UnitUsage, quotas: Mapping[str, PoolQuota]
) -> list[dict[str, Any]]:
    """A status for every node pool the unit has a quota or an allocation in."""
    return [
        {
            "nodePoolId": nodepool_id(cluster_id, pool),
            "nodePoolName": pool,
            **_quota_status(usage.pools.get(pool, Usage())),
        }
        for pool in sorted(set(usage.pools) | set(quotas))
    ]


def _times(row: Mapping[str, Any]) -> dict[str, str]:
    return {
        "createdAt": format_rfc3339(row["created_at"]),
        "updatedAt": format_rfc3339(row["updated_at"]),
    }


def project_wire(
    row: Mapping[str, Any], usage: UnitUsage, quotas: Mapping[str, PoolQuota]
) -> dict[str, Any]:
    """The reference ``Project``; ``parent`` only when the department id is a UUID, as the
    reference requires of it."""
    cluster_id = row["cluster_id"]
    body: dict[str, Any] = {
        "id": row["id"],
        "name": row["name"],
        "description": "",
        "parentId": row["department_id"],
        "clusterId": cluster_id,
        **_times(row),
        "requestedNamespace": row["namespace"],
        "enforceRunaiScheduler": False,
        "resources": _resources(cluster_id, quotas),
        "totalResources": _total_resources(quotas),
        "effective": {},
        "status": {
            "namespace": row["namespace"],
            "phase": PROJECT_PHASE,
            "quotaStatus": _quota_status(usage.total),
            "nodePoolQuotaStatuses": _pool_statuses(cluster_id, usage, quotas),
        },
    }
    if is_uuid(row["department_id"]) and row["department_name"] is not None:
        body["parent"] = {"id": row["department_id"], "name": row["department_name"]}
    return body


def department_wire(
    row: Mapping[str, Any],
    usage: UnitUsage,
    quotas: Mapping[str, PoolQuota],
    project_quotas: Iterable[Mapping[str, PoolQuota]] | None = None,
) -> dict[str, Any]:
    """The reference ``DepartmentForList``, or ``Department`` with ``project_quotas`` (the
    quotas of its projects, added up per node pool)."""
    cluster_id = row["cluster_id"]
    body: dict[str, Any] = {
        "id": row["id"],
        "name": row["name"],
        "description": "",
        "clusterId": cluster_id,
        **_times(row),
        "resources": _resources(cluster_id, quotas),
        "totalResources": _total_resources(quotas),
        "status": {"quotaStatus": _quota_status(usage.total)},
    }
    if project_quotas is not None:
        body["status"]["nodePoolQuotaStatuses"] = _pool_statuses(cluster_id, usage, quotas)
        body["projectsAggregatedResources"] = _aggregated(cluster_id, project_quotas)
    return body


def _aggregated(
    cluster_id: str, project_quotas: Iterable[Mapping[str, PoolQuota]]
) -> list[dict[str, Any]]:
    deserved: dict[str, float] = {}
    for quotas in project_quotas:
        for pool, quota in quotas.items():
            deserved[pool] = deserved.get(pool, 0.0) + quota.gpu_deserved
    return [
        {
            "nodePool": {"id": nodepool_id(cluster_id, pool), "name": pool},
            "gpu": {"deserved": value},
        }
        for pool, value in sorted(deserved.items())
    ]


def projects_wire(conn: Connection, rows: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The reference ``Project`` of each row, with figures read for these rows only."""
    ids = [row["id"] for row in rows]
    usage = unit_usage(conn, UnitKind.PROJECT, ids)
    quotas = unit_quotas(conn, UnitKind.PROJECT, ids)
    return [
        project_wire(row, usage.get(row["id"], UnitUsage()), quotas.get(row["id"], {}))
        for row in rows
    ]


def departments_wire(
    conn: Connection, rows: list[Mapping[str, Any]], *, detailed: bool
) -> list[dict[str, Any]]:
    """``DepartmentForList`` of each row, or ``Department`` when ``detailed``."""
    ids = [row["id"] for row in rows]
    usage = unit_usage(conn, UnitKind.DEPARTMENT, ids)
    quotas = unit_quotas(conn, UnitKind.DEPARTMENT, ids)
    per_project: dict[str, list[Mapping[str, PoolQuota]]] = {}
    if detailed:
        children = conn.execute(
            sa.select(P.id, P.department_id).where(P.department_id.in_(ids))
        ).all()
        project_quotas = unit_quotas(conn, UnitKind.PROJECT, [c.id for c in children])
        for child in children:
            per_project.setdefault(child.department_id, []).append(project_quotas.get(child.id, {}))
    return [
        department_wire(
            row,
            usage.get(row["id"], UnitUsage()),
            quotas.get(row["id"], {}),
            per_project.get(row["id"], []) if detailed else None,
        )
        for row in rows
    ]
