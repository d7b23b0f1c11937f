"""``gpufleet pods list``: pods across the clusters the caller may see."""

from __future__ import annotations

import argparse
from typing import Any

from gpufleet.client.listing import (
    add_filter_flag,
    add_page_flags,
    add_sort_flags,
    list_parameters,
)
from gpufleet.client.output import FORMATS, Printer, print_list
from gpufleet.client.session import add_connection_flags, guarded, open_client


def _gpus(pod: dict[str, Any]) -> str:
    value = (pod.get("allocatedResources") or {}).get("gpu")
    return "" if value is None else f"{value:g}"


HEADERS = ["NAME", "WORKLOAD", "PROJECT", "PHASE", "NODE", "NODEPOOL", "GPUS", "CREATED"]


def pod_rows(pods: list[dict[str, Any]]) -> list[list[Any]]:
    """One row of ``HEADERS`` per pod."""
    return [
        [p.get("name"), p.get("workloadName"), p.get("projectName"), p.get("k8sPhase"),
         p.get("nodeName"), p.get("currentNodePool"), _gpus(p), p.get("createdAt")]
        for p in pods
    ]  # fmt: skip


def _list(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {**list_parameters(args), "verbosity": "full"}
    if args.deleted:
        params["deleted"] = "true"
    with open_client(args) as client:
        pods = client.get_json("/api/v1/workloads/pods", params)["pods"]
    print_list(Printer(), "pods", pods, args.output, HEADERS, pod_rows(pods))
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``pods list``."""
    pods = commands.add_parser("pods", help="list pods")
    actions = pods.add_subparsers(dest="pods_command", required=True)
    listing = actions.add_parser("list", help="list pods (one page)")
    add_filter_flag(listing, "'nodeName==gpu-node-1' or 'currentNodepool==a100'")
    add_sort_flags(listing, "createdAt")
    add_page_flags(listing)
    listing.add_argument("--deleted", action="store_true", help="only deleted pods")
    listing.add_argument("-o", "--output", choices=FORMATS, default="table")
    add_connection_flags(listing)
    listing.set_defaults(handler=guarded(_list))
