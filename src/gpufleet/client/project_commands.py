"""``gpufleet projects``: each project's GPU quota beside its allocation, over-quota flagged.

An empty QUOTA means no queue gives the project one; OVER holds the GPUs allocated beyond the
quota (borrowed from other projects' unused quota) and is empty within it.
"""

from __future__ import annotations

import argparse
from typing import Any

from gpufleet.client.http import ApiClient
from gpufleet.client.listing import add_filter_flag
from gpufleet.client.lookup import cluster_name, cluster_names, resolve_cluster, resolve_org_unit
from gpufleet.client.output import FORMATS, Printer, print_list
from gpufleet.client.session import add_connection_flags, guarded, open_client

HEADERS = [
    "PROJECT", "DEPARTMENT", "NODEPOOL", "QUOTA", "ALLOCATED", "NON-PREEMPTIBLE", "OVER", "CLUSTER",
]  # fmt: skip
OVER_AT = HEADERS.index("OVER")
NUMERIC = {"QUOTA", "ALLOCATED", "NON-PREEMPTIBLE", "OVER"}
PAGE = 500


def _every(client: ApiClient, path: str, key: str, params: dict[str, Any]) -> list[dict]:
    items: list[dict] = []
    offset = 0
    while True:
        body = client.get_json(path, {**params, "offset": offset, "limit": PAGE})
        items += body[key]
        if "next" not in body:
            return items
        offset = body["next"]


def over_quota(quota: float | None, allocated: float) -> float | None:
    """GPUs allocated beyond the quota (borrowed from others' unused quota); None within it."""
    if quota is None or allocated <= quota:
        return None
    return allocated - quota


def _row(project: dict, department: str, pool: str, quota: float | None, status: dict) -> list:
    allocated = float((status.get("allocated") or {}).get("gpu") or 0.0)
    non_preemptible = float((status.get("allocatedNonPreemptible") or {}).get("gpu") or 0.0)
    over = over_quota(quota, allocated)
    shown_quota = None if quota is None else f"{quota:g}"
    shown_over = None if over is None else f"{over:g}"
    return [
        project["name"],
        department,
        pool,
        shown_quota,
        f"{allocated:g}",
        f"{non_preemptible:g}",
        shown_over,
    ]


def project_rows(
    projects: list[dict],
    departments: dict[str, str],
    pools: bool,
    clusters: dict[str, str] | None = None,
) -> list[list]:
    """One row per project (all pools), or per project and node pool with ``pools``; its
    cluster by name from ``clusters`` (by id), else by id."""
    rows = []
    for project in projects:
        department = departments.get(project["parentId"], project["parentId"])
        cluster = cluster_name(clusters or {}, project.get("clusterId"))
        if not pools:
            quota = project["totalResources"].get("gpuQuota")
            status = project["status"].get("quotaStatus") or {}
            rows.append([*_row(project, department, "*", quota, status), cluster])
            continue
        quotas = {r["nodePool"]["name"]: r["gpu"]["deserved"] for r in project["resources"]}
        for status in project["status"].get("nodePoolQuotaStatuses") or []:
            pool = status["nodePoolName"]
            row = _row(project, department, pool, quotas.get(pool), status)
            rows.append([*row, cluster])
    return rows


def _list(args: argparse.Namespace) -> int:
    filters = list(args.filter or [])
    with open_client(args) as client:
        cluster_id = resolve_cluster(client, args.cluster) if args.cluster else None
        if cluster_id:
            filters.append(f"clusterId=={cluster_id}")
        if args.department:
            department = resolve_org_unit(client, "department", args.department, cluster_id)
            filters.append(f"departmentId=={department}")
        params: dict[str, Any] = {"filterBy": filters} if filters else {}
        projects = _every(client, "/api/v1/org-unit/projects", "projects", params)
        # A project reader sees no department: its id stands in for the name.
        departments = {
            d["id"]: d["name"]
            for d in _every(client, "/api/v1/org-unit/departments", "departments", {})
        }
        clusters = cluster_names(client) if projects else {}
    rows = project_rows(projects, departments, args.pools, clusters)
    if args.over:
        rows = [row for row in rows if row[OVER_AT]]
    print_list(Printer(), "projects", projects, args.output, HEADERS, rows, numeric=NUMERIC)
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``projects``."""
    projects = commands.add_parser(
        "projects", help="projects' GPU quota and allocation; OVER shows GPUs beyond the quota"
    )
    projects.add_argument("--pools", action="store_true", help="one row per node pool")
    projects.add_argument("--over", action="store_true", help="only rows over their quota")
    projects.add_argument("--cluster", metavar="NAME|ID", help="only this cluster's projects")
    projects.add_argument("--department", metavar="NAME|ID", help="only this department's projects")
    add_filter_flag(projects, "'name=@vision'")
    projects.add_argument("-o", "--output", choices=FORMATS, default="table")
    add_connection_flags(projects)
    projects.set_defaults(handler=guarded(_list))
