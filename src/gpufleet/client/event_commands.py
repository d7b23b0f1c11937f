"""``gpufleet workloads events``, and the latest events ``workloads get`` shows."""

from __future__ import annotations

import argparse
from typing import Any
from urllib.parse import quote

from gpufleet.client.http import ApiClient
from gpufleet.client.lookup import resolve_workload
from gpufleet.client.output import FORMATS, Printer, print_list
from gpufleet.client.session import add_connection_flags, guarded, open_client

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
