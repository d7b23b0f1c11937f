"""``gpufleet workloads list | get | count`` (``events`` is in ``event_commands``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.text import Text

from gpufleet.client.event_commands import (
    LATEST,
    print_events_section,
    register_events,
    workload_events,
)
from gpufleet.client.exit_codes import ExitCode
from gpufleet.client.http import ApiClient, ClientError
from gpufleet.client.listing import add_filter_flag, add_sort_flags, list_parameters
from gpufleet.client.lookup import cluster_label, cluster_names, resolve_workload
from gpufleet.client.output import (
    FORMATS,
    PHASE_STYLES,
    Printer,
    allocated_gpus,
    duration,
    idle_gpus,
    print_workloads,
    requested_gpus,
)
from gpufleet.client.session import (
    add_connection_flags,
    add_param_flag,
    extra_parameters,
    guarded,
    open_client,
)

LIST_DEFAULT_LIMIT = 50
PAGE_SIZE_ALL = 500


def _selection(args: argparse.Namespace) -> dict[str, Any]:
    """The filterBy/search/deleted parameters shared by list and count."""
    params: dict[str, Any] = {}
    if args.filter:
        params["filterBy"] = args.filter
    if args.search:
        params["search"] = args.search
    if args.deleted:
        params["deleted"] = "true"
    return {**params, **extra_parameters(args.param)}


@contextmanager
def _progress(total: int) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr when it is a terminal; silence otherwise."""
    if not sys.stderr.isatty():
        yield lambda _done: None
        return
    columns = (TextColumn("fetching workloads"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=Console(file=sys.stderr), transient=True) as progress:
        task = progress.add_task("fetch", total=total)
        yield lambda done: progress.update(task, completed=done)


def walk_pages(client: ApiClient, params: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
    """Every page of a listing, following ``next`` until the server gives none."""
    offset = params.get("offset") or 0
    while True:
        body = client.get_json("/api/v1/workloads", {**params, "offset": offset})
        yield body["workloads"]
        following = body.get("next")
        if following is None or not body["workloads"]:
            return
        offset = following


def _or_default(limit: int | None, default: int) -> int:
    # Not ``limit or default``: a limit given is sent as given.
    return default if limit is None else limit


def _list(args: argparse.Namespace) -> int:
    params = {**_selection(args), **list_parameters(args)}
    with open_client(args) as client:
        if not args.all:
            params.update(limit=_or_default(args.limit, LIST_DEFAULT_LIMIT), offset=args.offset)
            workloads = client.get_json("/api/v1/workloads", params)["workloads"]
        else:
            total = client.get_json("/api/v1/workloads/count", _selection(args))["count"]
            params.update(limit=_or_default(args.limit, PAGE_SIZE_ALL), offset=args.offset)
            workloads = []
            with _progress(total) as advance:
                for page in walk_pages(client, params):
                    workloads.extend(page)
                    advance(len(workloads))
        # Clusters by name, as every other table shows them; csv keeps the API's ids.
        names = cluster_names(client) if workloads and args.output == "wide" else {}
    print_workloads(Printer(), workloads, args.output, names)
    return 0


def _count(args: argparse.Namespace) -> int:
    with open_client(args) as client:
        body = client.get_json("/api/v1/workloads/count", _selection(args))
    printer = Printer()
    if args.output in ("json", "yaml"):
        printer.data(body, args.output)
    else:
        printer.text(str(body["count"]))
    return 0


def _gpus(value: float | None) -> str | None:
    return None if value is None else f"{value:g}"


def _describe(printer: Printer, workload: dict[str, Any], clusters: dict[str, str]) -> None:
    fields = [
        ("Name", workload.get("name")),
        ("ID", workload.get("id")),
        ("Type", workload.get("type")),
        ("Phase", workload.get("phase")),
        ("Phase message", workload.get("phaseMessage")),
        ("Project", workload.get("projectName")),
        ("Department", workload.get("departmentName")),
        ("Cluster", cluster_label(clusters, workload.get("clusterId"))),
        ("Namespace", workload.get("namespace")),
        ("Nodepools", ", ".join(workload.get("currentNodePools") or [])),
        ("Submitted by", workload.get("submittedBy")),
        ("Created", workload.get("createdAt")),
        ("Phase updated", workload.get("phaseUpdatedAt")),
        ("Completed", workload.get("completedAt")),
        ("GPUs requested", _gpus(requested_gpus(workload))),
        ("GPUs allocated", _gpus(allocated_gpus(workload))),
        ("GPUs idle", _gpus(idle_gpus(workload))),
        ("Running pods", workload.get("runningPods")),
        ("Pending for", duration(workload.get("totalPendingTimeSeconds"))),
        ("Running for", duration(workload.get("totalRunningTimeSeconds"))),
    ]
    width = max(len(label) for label, _ in fields) + 2
    for label, value in fields:
        if value in (None, ""):
            continue
        line = Text(f"{label + ':':<{width}}")
        style = PHASE_STYLES.get(str(value), "") if label == "Phase" else ""
        line.append(str(value), style=style)
        printer.styled(line)
    messages = workload.get("pendingSchedulingMessages") or []
    if messages:
        printer.text("\nPending scheduling messages:")
        rows = [[m.get("nodePool"), m.get("reason"), m.get("userMessage")] for m in messages]
        printer.table(["NODEPOOL", "REASON", "MESSAGE"], rows)
    conditions = workload.get("conditions") or []
    if conditions:
        printer.text("\nConditions:")
        rows = [
            [c.get("type"), c.get("status"), c.get("reason"), c.get("message")] for c in conditions
        ]
        printer.table(["TYPE", "STATUS", "REASON", "MESSAGE"], rows)


def _get(args: argparse.Namespace) -> int:
    with open_client(args) as client:
        workload_id = resolve_workload(client, args.workload, args.project)
        workload = client.get_json(f"/api/v1/workloads/{quote(workload_id, safe='')}")
        if args.project and workload.get("projectName") != args.project:
            raise ClientError(
                f"workload {args.workload} is in project {workload.get('projectName')!r}, "
                f"not {args.project!r}",
                ExitCode.NOT_FOUND,
            )
        events = workload_events(client, workload_id, LATEST) if args.output == "table" else []
        names = cluster_names(client) if args.output == "table" else {}
    printer = Printer()
    if args.output in ("json", "yaml"):
        printer.data(workload, args.output)
    elif args.output == "csv":
        print_workloads(printer, [workload], "csv")
    else:
        _describe(printer, workload, names)
        print_events_section(printer, events)
    return 0


def _add_selection_flags(parser: argparse.ArgumentParser) -> None:
    add_filter_flag(parser, "'phase==Running' or 'projectName=@vision'")
    parser.add_argument("--search", help="free-text search")
    parser.add_argument("--deleted", action="store_true", help="only deleted workloads")
    add_param_flag(parser)


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``workloads list|get|count``."""
    workloads = commands.add_parser("workloads", help="list, count and show workloads")
    actions = workloads.add_subparsers(dest="workloads_command", required=True)

    listing = actions.add_parser("list", help="list workloads (one page, or --all)")
    _add_selection_flags(listing)
    add_sort_flags(listing, "createdAt")
    listing.add_argument(
        "--limit", type=int, help="rows to show (default 50); with --all, the page size (500)"
    )
    listing.add_argument("--offset", type=int, default=0, help="skip this many rows")
    listing.add_argument("--all", action="store_true", help="walk every page")
    listing.add_argument("-o", "--output", choices=FORMATS, default="table")
    add_connection_flags(listing)
    listing.set_defaults(handler=guarded(_list))

    get = actions.add_parser("get", help="show one workload, by name or id")
    get.add_argument("workload", metavar="NAME|ID", help="workload name or id")
    get.add_argument("--project", help="the project of the named workload, when names repeat")
    get.add_argument("-o", "--output", choices=FORMATS, default="table")
    add_connection_flags(get)
    get.set_defaults(handler=guarded(_get))

    count = actions.add_parser("count", help="count workloads")
    _add_selection_flags(count)
    count.add_argument("-o", "--output", choices=("table", "json", "yaml"), default="table")
    add_connection_flags(count)
    count.set_defaults(handler=guarded(_count))

    register_events(actions)
