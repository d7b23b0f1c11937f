"""``gpufleet events`` (the fleet's events), ``gpufleet workloads events`` (one workload's), and
the latest events ``workloads get`` shows."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from gpufleet.client.http import ApiClient
from gpufleet.client.listing import add_page_flags
from gpufleet.client.lookup import resolve_cluster, resolve_org_unit, resolve_workload
from gpufleet.client.metric_commands import parse_since
from gpufleet.client.output import FORMATS, Printer, print_list
from gpufleet.client.session import add_connection_flags, guarded, open_client
from gpufleet.core.times import format_rfc3339

# How many of the newest events ``workloads get`` shows.
LATEST = 5


def workload_events(client: ApiClient, workload_id: str, limit: int) -> list[dict[str, Any]]:
    """The newest ``limit`` events of a workload, newest first."""
    body = client.get_json(
        f"/api/v1/workloads/{quote(workload_id, safe='')}/events",
        {"limit": limit, "sortOrder": "desc"},
    )
    return body.get("events") or []


EVENT_HEADERS = ["TIME", "TYPE", "REASON", "OBJECT", "MESSAGE"]


def event_rows(events: list[dict[str, Any]]) -> list[list[Any]]:
    """One row of ``EVENT_HEADERS`` per event: when, type, reason, the object it is about, the
    message."""
    return [
        [
            e.get("createdAt"),
            e.get("type"),
            e.get("reason"),
            "{}/{}".format(*((e.get("involvedObject") or {}).get(k) for k in ("kind", "name"))),
            e.get("message"),
        ]
        for e in events
    ]


def print_events_section(printer: Printer, events: list[dict[str, Any]]) -> None:
    """The section ``workloads get`` ends with, when the workload has events."""
    if events:
        printer.text("\nLatest events:")
        printer.table(EVENT_HEADERS, event_rows(events))


def _events(args: argparse.Namespace) -> int:
    with open_client(args) as client:
        workload_id = resolve_workload(client, args.workload, args.project)
        events = workload_events(client, workload_id, args.limit)
    print_list(Printer(), "events", events, args.output, EVENT_HEADERS, event_rows(events))
    return 0


def register_events(actions: argparse._SubParsersAction) -> None:
    """Add ``workloads events``."""
    events = actions.add_parser("events", help="show a workload's Kubernetes events, newest first")
    events.add_argument("workload", metavar="NAME|ID", help="workload name or id")
    events.add_argument("--project", help="the project of the named workload, when names repeat")
    events.add_argument("--limit", type=int, default=50, help="how many (default 50, at most 500)")
    events.add_argument("-o", "--output", choices=FORMATS, default="table")
    add_connection_flags(events)
    events.set_defaults(handler=guarded(_events))


FLEET_EVENT_HEADERS = ["TIME", "TYPE", "REASON", "PROJECT", "WORKLOAD", "OBJECT", "MESSAGE"]


def fleet_event_rows(events: list[dict[str, Any]]) -> list[list[Any]]:
    """One row of ``FLEET_EVENT_HEADERS`` per event of ``GET /api/v1/events``."""
    return [
        [time, kind, reason, e.get("projectName"), e.get("workloadName"), subject, message]
        for e, (time, kind, reason, subject, message) in zip(
            events, event_rows(events), strict=True
        )
    ]


def _fleet_parameters(client: ApiClient, args: argparse.Namespace) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if args.since:
        params["since"] = format_rfc3339(datetime.now(UTC) - parse_since(args.since))
    if args.type:
        params["type"] = args.type
    if args.cluster:
        params["clusterId"] = resolve_cluster(client, args.cluster)
    if args.project:
        params["projectId"] = resolve_org_unit(
            client, "project", args.project, params.get("clusterId")
        )
    if args.reason:
        params["reason"] = args.reason
    if args.workload:
        params["workloadId"] = resolve_workload(client, args.workload, None)
    return params


def _fleet_events(args: argparse.Namespace) -> int:
    printer = Printer()
    with open_client(args) as client:
        params = _fleet_parameters(client, args)
        page = {"limit": args.limit, "offset": args.offset}
        events = client.get_json("/api/v1/events", {**params, **page}).get("events") or []
        total = client.get_json("/api/v1/events/count", params)["count"] if events else 0
    rows = fleet_event_rows(events)
    print_list(printer, "events", events, args.output, FLEET_EVENT_HEADERS, rows)
    if args.output == "table" and len(events) < total:
        first = args.offset + 1
        printer.text(
            f"\n{first}-{args.offset + len(events)} of {total:,} events, newest first "
            "(--offset and --limit show others)"
        )
    return 0


def register_fleet_events(commands: argparse._SubParsersAction) -> None:
    """Add ``events``: the Kubernetes events of every workload the key may see."""
    events = commands.add_parser(
        "events", help="the fleet's Kubernetes events, newest first (filter by type, project...)"
    )
    events.add_argument("--since", metavar="DURATION", help="only the last 30m, 6h, 2d, ...")
    events.add_argument("--type", choices=["Normal", "Warning"], help="only events of this type")
    events.add_argument("--cluster", metavar="NAME|ID", help="only this cluster's events")
    events.add_argument("--project", metavar="NAME|ID", help="only this project's events")
    events.add_argument("--reason", help="only events with this reason, e.g. BackOff")
    events.add_argument("--workload", metavar="NAME|ID", help="only this workload's events")
    add_page_flags(events)
    events.add_argument("-o", "--output", choices=FORMATS, default="table")
    add_connection_flags(events)
    events.set_defaults(handler=guarded(_fleet_events))
