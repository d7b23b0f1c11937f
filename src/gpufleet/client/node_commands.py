"""``gpufleet nodes list|get`` and ``gpufleet nodepools``: capacity, allocation and health."""

from __future__ import annotations

import argparse
from typing import Any

from gpufleet.client.exit_codes import ExitCode
from gpufleet.client.http import ApiClient, ClientError
from gpufleet.client.listing import add_filter_flag, add_page_flags, add_sort_flags, list_parameters
from gpufleet.client.lookup import cluster_label, cluster_names, resolve_cluster
from gpufleet.client.output import FORMATS, TABLES, Printer, print_list
from gpufleet.client.session import add_connection_flags, guarded, open_client
from gpufleet.core.identifiers import is_uuid


def _by_group(client: ApiClient, kind: str, group_by: str, **params: Any) -> dict[tuple, float]:
    body = client.get_json(
        "/api/v1/nodes/telemetry", {"telemetryType": kind, "groupBy": group_by, **params}
    )
    # A null value (a figure the server could not give) is left out like a missing group.
    return {
        tuple(g["value"] for g in item.get("groups", ())): float(item["value"])
        for item in body["values"]
        if item.get("value") is not None
    }


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def _cordoned(node: dict[str, Any]) -> bool:
    return any(t.get("key") == "node.kubernetes.io/unschedulable" for t in node["taints"])


def _status(node: dict[str, Any]) -> str:
    return f"{node['status']},SchedulingDisabled" if _cordoned(node) else node["status"]


def takes_work(node: dict[str, Any]) -> bool:
    """Whether the scheduler may place new work on the node: ready and not cordoned."""
    return node["status"] == "Ready" and not _cordoned(node)


def _gpus(node: dict[str, Any]) -> float:
    return (node.get("gpuInfo") or {}).get("gpuCount") or 0


def schedulable_free(node: dict[str, Any], held: float) -> float:
    """The node's free GPUs new work can be placed on, as the dashboard counts them: its GPUs
    less those allocated when it takes work, none when it is not ready or cordoned."""
    return _gpus(node) - held if takes_work(node) else 0.0


def schedulable_free_by_pool(
    nodes: list[dict[str, Any]], allocated: dict[tuple, float]
) -> dict[tuple, float]:
    """``schedulable_free`` summed by (cluster id, node pool), from ``allocated`` by (cluster
    id, node)."""
    free: dict[tuple, float] = {}
    for node in nodes:
        key = (node["clusterUuid"], node["nodePool"])
        held = allocated.get((node["clusterUuid"], node["name"]), 0.0)
        free[key] = free.get(key, 0.0) + schedulable_free(node, held)
    return free


NODE_HEADERS = ["NAME", "NODEPOOL", "STATUS", "GPUS", "ALLOCATED", "FREE", "GPU TYPE", "CLUSTER"]
NODEPOOL_HEADERS = [
    "NAME", "CLUSTER", "PHASE", "NODES", "READY GPU NODES", "GPUS", "ALLOCATED", "FREE",
]  # fmt: skip
NUMERIC = {"NODES", "GPUS", "ALLOCATED", "FREE"}
# The free GPUs of a pool's nodes that take work, which no telemetry type gives: counted here.
SCHEDULABLE_FREE = "SCHEDULABLE_FREE"
PAGE = 500


def node_rows(
    nodes: list[dict[str, Any]], allocated: dict[tuple, float], clusters: dict[str, str]
) -> list[list[Any]]:
    """One row of ``NODE_HEADERS`` per node; a cluster the caller cannot name shows its id."""
    rows = []
    for node in nodes:
        held = allocated.get((node["clusterUuid"], node["name"]), 0.0)
        gpu_type = (node.get("gpuInfo") or {}).get("gpuType")
        cluster = clusters.get(node["clusterUuid"], node["clusterUuid"])
        rows.append(
            [node["name"], node["nodePool"], _status(node), _gpus(node), _number(held),
             _number(schedulable_free(node, held)), gpu_type, cluster]
        )  # fmt: skip
    return rows


def _list(args: argparse.Namespace) -> int:
    params = list_parameters(args)
    with open_client(args) as client:
        if args.cluster:
            cluster_id = resolve_cluster(client, args.cluster)
            params["filterBy"] = [*params.get("filterBy", []), f"clusterUuid=={cluster_id}"]
        nodes = client.get_json("/api/v1/nodes", params)["nodes"]
        allocated = _by_group(client, "ALLOCATED_GPUS", "ClusterId,Node") if nodes else {}
        clusters = cluster_names(client) if nodes and args.output in TABLES else {}
    rows = node_rows(nodes, allocated, clusters)
    print_list(Printer(), "nodes", nodes, args.output, NODE_HEADERS, rows, numeric=NUMERIC)
    return 0


def _find(client: ApiClient, name_or_id: str) -> dict[str, Any]:
    """The node of this name (in one cluster) or id; ids are looked for page by page, as
    ``filterBy`` cannot name them."""
    if is_uuid(name_or_id):
        offset = 0
        while True:
            page = client.get_json("/api/v1/nodes", {"limit": 500, "offset": offset})["nodes"]
            found = [n for n in page if n.get("id") == name_or_id]
            if found or len(page) < 500:
                break
            offset += 500
    else:
        params = {"filterBy": f"name=={name_or_id}", "limit": 10}
        found = client.get_json("/api/v1/nodes", params)["nodes"]
    if not found:
        raise ClientError(f"no node {name_or_id!r}", ExitCode.NOT_FOUND)
    if len(found) > 1:
        names = cluster_names(client)
        clusters = ", ".join(cluster_label(names, n["clusterUuid"]) or "" for n in found)
        raise ClientError(
            f"node name {name_or_id!r} is in several clusters: {clusters}; give the node's id",
            ExitCode.USAGE,
        )
    return found[0]


def _get(args: argparse.Namespace) -> int:
    with open_client(args) as client:
        node = _find(client, args.node)
        scope = {"clusterId": node["clusterUuid"]}
        held = _by_group(client, "ALLOCATED_GPUS", "Node", **scope).get((node["name"],), 0.0)
        idle = _by_group(client, "IDLE_ALLOCATED_GPUS", "Node", **scope).get((node["name"],))
        names = cluster_names(client) if args.output == "table" else {}
    printer = Printer()
    if printer.data_if_asked(node, args.output):
        return 0
    gpus = _gpus(node)
    free = _number(schedulable_free(node, held))
    if not takes_work(node):
        free += " (the node is not ready or cordoned)"
    for label, value in (
        ("Name", node["name"]),
        ("Id", node.get("id")),
        ("Cluster", cluster_label(names, node["clusterUuid"])),
        ("Node pool", node["nodePool"]),
        ("Status", _status(node)),
        ("GPU type", (node.get("gpuInfo") or {}).get("gpuType") or "-"),
        ("GPUs", f"{gpus} ({_number(held)} allocated, {free} free)"),
        ("GPUs idle", _number(idle) or "-"),
        ("NVLink clique", node.get("nvLinkCliqueId") or "-"),
        ("Created", node["createdAt"]),
    ):
        printer.text(f"{label + ':':15} {value}")
    if node["conditions"]:
        printer.text("\nConditions:")
        rows = [[c["type"], c.get("reason"), c.get("message")] for c in node["conditions"]]
        printer.table(["TYPE", "REASON", "MESSAGE"], rows)
    if node["taints"]:
        printer.text("\nTaints:")
        rows = [[t["key"], t.get("value") or "", t["effect"]] for t in node["taints"]]
        printer.table(["KEY", "VALUE", "EFFECT"], rows)
    return 0


def _every_node(client: ApiClient) -> list[dict[str, Any]]:
    nodes: list[dict[str, Any]] = []
    while True:
        page = client.get_json("/api/v1/nodes", {"limit": PAGE, "offset": len(nodes)})["nodes"]
        nodes += page
        if len(page) < PAGE:
            return nodes


def _nodepools(args: argparse.Namespace) -> int:
    with open_client(args) as client:
        pools = client.get_json("/api/v1/node-pools", {"limit": PAGE})["nodepools"]
        by = "ClusterId,Nodepool"
        figures = {
            kind: _by_group(client, kind, by)
            for kind in ("TOTAL_GPUS", "ALLOCATED_GPUS", "READY_GPU_NODES", "TOTAL_GPU_NODES")
        }
        by_node = _by_group(client, "ALLOCATED_GPUS", "ClusterId,Node")
        figures[SCHEDULABLE_FREE] = schedulable_free_by_pool(_every_node(client), by_node)
    rows = nodepool_rows(pools, figures)
    print_list(Printer(), "node pools", pools, args.output, NODEPOOL_HEADERS, rows, numeric=NUMERIC)
    return 0


def nodepool_rows(
    pools: list[dict[str, Any]], figures: dict[str, dict[tuple, float]]
) -> list[list[Any]]:
    """One row of ``NODEPOOL_HEADERS`` per pool, from the telemetry ``figures`` by kind and the
    schedulable free GPUs (``SCHEDULABLE_FREE``, by cluster id and pool)."""
    rows = []
    for pool in pools:
        key = (pool["clusterId"], pool["name"])
        total = figures["TOTAL_GPUS"].get(key, 0.0)
        held = figures["ALLOCATED_GPUS"].get(key, 0.0)
        ready, nodes = figures["READY_GPU_NODES"].get(key), figures["TOTAL_GPU_NODES"].get(key)
        rows.append(
            [pool["name"], pool["clusterName"], pool["phase"], len(pool["status"]["nodes"]),
             f"{_number(ready or 0)}/{_number(nodes or 0)}", _number(total), _number(held),
             _number(figures[SCHEDULABLE_FREE].get(key, 0.0))]
        )  # fmt: skip
    return rows


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``nodes list``, ``nodes get`` and ``nodepools``."""
    nodes = commands.add_parser("nodes", help="list nodes and their GPUs")
    actions = nodes.add_subparsers(dest="nodes_command", required=True)
    listing = actions.add_parser("list", help="list nodes (one page)")
    add_filter_flag(listing, "'nodePool==a100' or 'status==NotReady'")
    add_sort_flags(listing, "nodePool")
    listing.add_argument("--cluster", metavar="NAME|ID", help="only this cluster's nodes")
    add_page_flags(listing)
    listing.add_argument("-o", "--output", choices=FORMATS, default="table")
    add_connection_flags(listing)
    listing.set_defaults(handler=guarded(_list))
    getting = actions.add_parser("get", help="one node: capacity, allocation, conditions, taints")
    getting.add_argument("node", metavar="NAME|ID")
    getting.add_argument("-o", "--output", choices=FORMATS, default="table")
    add_connection_flags(getting)
    getting.set_defaults(handler=guarded(_get))
    pools = commands.add_parser("nodepools", help="node pools with their GPUs")
    pools.add_argument("-o", "--output", choices=FORMATS, default="table")
    add_connection_flags(pools)
    pools.set_defaults(handler=guarded(_nodepools))
