"""``gpufleet usage`` (GPU-hours from the ledger) and ``gpufleet reports create|list|get|
download`` (Run:ai's consumption reports)."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from gpufleet.client.http import ClientError
from gpufleet.client.listing import add_filter_flag, list_parameters
from gpufleet.client.metric_commands import parse_since
from gpufleet.client.output import FORMATS, Printer, print_list
from gpufleet.client.session import add_connection_flags, guarded, open_client
from gpufleet.core.exit_codes import ExitCode
from gpufleet.core.times import format_rfc3339

REPORTS = "/api/v1/org-unit/reports"
GROUPINGS = ("cluster", "nodepool", "department", "project", "submitter", "type")
REPORT_GROUPINGS = ("Project", "Department", "Nodepool", "Cluster")
# The longest window the dashboard draws by the hour; a longer one it draws by UTC day.
HOURLY_UP_TO = timedelta(days=7)
# (wire figure, column header), in the API's order.
FIGURES = (
    ("allocatedGpuHours", "ALLOCATED GPU-H"),
    ("usedGpuHours", "USED GPU-H"),
    ("idleGpuHours", "IDLE GPU-H"),
    ("cpuCoreHours", "CPU CORE-H"),
    ("memoryGibHours", "MEMORY GIB-H"),
    ("pendingWorkloadHours", "PENDING H"),
)


# A figure the server could not give (null) is shown as unknown, never as a zero.
UNKNOWN = "-"


def _hours(value: float | None) -> str:
    return UNKNOWN if value is None else f"{value:,.1f}"


def _efficiency(value: dict[str, Any]) -> str:
    allocated, used = value.get("allocatedGpuHours"), value.get("usedGpuHours")
    if allocated is None or used is None:
        return UNKNOWN
    return f"{100 * used / allocated:.0f}%" if allocated else ""


def _most_allocated_first(value: dict[str, Any]) -> tuple[bool, float]:
    """Sort key: most allocated GPU-hours first, rows of unknown allocation last."""
    allocated = value.get("allocatedGpuHours")
    return allocated is None, -(allocated or 0.0)


def groupings(text: str) -> list[str]:
    """An argparse ``type``: ``cluster,nodepool`` (any case) as the groupings it names, as the
    API's ``groupBy`` and ``telemetry --group-by`` take them."""
    names = [piece.strip().lower() for piece in text.split(",") if piece.strip()]
    unknown = [name for name in names if name not in GROUPINGS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"invalid choice: {text!r} (choose from {', '.join(GROUPINGS)})"
        )
    return names


def usage_start(now: datetime, since: timedelta) -> datetime:
    """Where ``usage --since`` starts, as the dashboard's Usage view starts the same window:
    ``since`` ago (which the API rounds down to the hour), or, beyond a week, where the dashboard
    draws whole days, at the UTC midnight before."""
    start = now - since
    if since > HOURLY_UP_TO:
        return start.replace(hour=0, minute=0, second=0, microsecond=0)
    return start


def _usage(args: argparse.Namespace) -> int:
    end = datetime.now(UTC)
    params: dict[str, Any] = {
        "start": format_rfc3339(usage_start(end, parse_since(args.since))),
        "end": format_rfc3339(end),
    }
    if args.usage_group_by:
        params["groupBy"] = ",".join(args.usage_group_by)
    params.update(list_parameters(args))
    with open_client(args) as client:
        if args.output == "csv":
            sys.stdout.write(client.get("/api/v1/usage", params, accept="text/csv").text)
            return 0
        values = client.get_json("/api/v1/usage", params)["values"]
    printer = Printer()
    if printer.data_if_asked(values, args.output):
        return 0
    groups = [g.upper() for g in args.usage_group_by or ()]
    headers = [*groups, *(header for _, header in FIGURES), "EFFICIENCY"]
    printer.table(
        headers, usage_rows(values), numeric={header for _, header in FIGURES} | {"EFFICIENCY"}
    )
    return 0


def usage_rows(values: list[dict[str, Any]]) -> list[list[str]]:
    """One row per value of ``GET /api/v1/usage``: its group names, figures and efficiency,
    most allocated first; a null figure reads ``UNKNOWN``."""
    return [
        [*(g["name"] for g in v["groups"]), *(_hours(v.get(f)) for f, _ in FIGURES), _efficiency(v)]
        for v in sorted(values, key=_most_allocated_first)
    ]


def _report_rows(reports: list[dict[str, Any]]) -> list[list[Any]]:
    return [
        [r["id"], r["name"], r["status"], r.get("groupBy") or "", r["start"], r["end"],
         r["createdBy"], r["createdAt"]]
        for r in reports
    ]  # fmt: skip


_REPORT_HEADERS = ["ID", "NAME", "STATUS", "GROUP BY", "START", "END", "CREATED BY", "CREATED"]


def _show(printer: Printer, reports: list[dict[str, Any]], fmt: str, *, one: bool = False) -> None:
    if one and fmt in ("json", "yaml"):
        printer.data(reports[0], fmt)
    else:
        print_list(printer, "reports", reports, fmt, _REPORT_HEADERS, _report_rows(reports))


def _create(args: argparse.Namespace) -> int:
    end = datetime.now(UTC)
    body: dict[str, Any] = {
        "name": args.name,
        "start": format_rfc3339(end - parse_since(args.since)),
        "end": format_rfc3339(end),
        "filterBy": args.filter or [],
    }
    if args.group_by:
        body["groupBy"] = args.group_by
    if args.description:
        body["description"] = args.description
    with open_client(args) as client:
        report = client.send("POST", REPORTS, body=body).json()
        while args.wait and report["status"] in ("Pending", "Processing"):
            time.sleep(1)
            report = client.get_json(f"{REPORTS}/{report['id']}")
    _show(Printer(), [report], args.output, one=True)
    if report["status"] == "Failed":
        raise ClientError(report.get("statusMessage") or "the report failed", ExitCode.ERROR)
    return 0


def _list(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"limit": args.limit, "sortBy": "createdAt", "sortOrder": "desc"}
    with open_client(args) as client:
        reports = client.get_json(REPORTS, params)["reports"]
    _show(Printer(), reports, args.output)
    return 0


def _get(args: argparse.Namespace) -> int:
    with open_client(args) as client:
        report = client.get_json(f"{REPORTS}/{args.report_id}")
    _show(Printer(), [report], args.output, one=True)
    return 0


def _download(args: argparse.Namespace) -> int:
    with open_client(args) as client:
        text = client.get(f"{REPORTS}/{args.report_id}/file", accept="text/csv").text
    if args.file and args.file != "-":
        with open(args.file, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
    else:
        sys.stdout.write(text)
    return 0


def _delete(args: argparse.Namespace) -> int:
    with open_client(args) as client:
        client.send("DELETE", f"{REPORTS}/{args.report_id}")
    return 0


def _leaf(parent, name: str, help_text: str, handler, *, output: bool = True):
    parser = parent.add_parser(name, help=help_text)
    if output:
        parser.add_argument("-o", "--output", choices=FORMATS, default="table")
    add_connection_flags(parser)
    parser.set_defaults(handler=guarded(handler))
    return parser


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``usage`` and ``reports``."""
    usage = commands.add_parser("usage", help="GPU-hours allocated, used and idle")
    usage.add_argument("--since", default="30d", help="how far back, e.g. 24h, 7d, 30d (30d)")
    usage.add_argument(
        "--group-by",
        dest="usage_group_by",
        action="extend",
        type=groupings,
        metavar="FIELD",
        help=f"at most two of {', '.join(GROUPINGS)} (comma-separated or repeated)",
    )
    add_filter_flag(usage, "nodepool==a100 or clusterName==NAME")
    usage.add_argument("-o", "--output", choices=FORMATS, default="table")
    add_connection_flags(usage)
    usage.set_defaults(handler=guarded(_usage))

    reports = commands.add_parser("reports", help="consumption reports (CSV per group and day)")
    actions = reports.add_subparsers(dest="reports_command", required=True)
    create = _leaf(actions, "create", "ask for a report", _create)
    create.add_argument("name", help="the report's name")
    create.add_argument("--since", default="30d", help="how far back, e.g. 7d, 90d (30d)")
    create.add_argument("--group-by", choices=REPORT_GROUPINGS, help="one row per this and day")
    create.add_argument(
        "-f",
        "--filter",
        action="append",
        metavar="EXPR",
        help="projectName==NAME, departmentName==NAME or clusterId==ID",
    )
    create.add_argument("--description", help="what the report is for")
    create.add_argument("--wait", action="store_true", help="wait until it is ready")
    listing = _leaf(actions, "list", "list reports, newest first", _list)
    listing.add_argument("--limit", type=int, default=50, help="rows to show (default 50)")
    _leaf(actions, "get", "show one report", _get).add_argument("report_id")
    download = _leaf(actions, "download", "write a report's CSV", _download, output=False)
    download.add_argument("report_id")
    download.add_argument("--file", help="write it here instead of to stdout")
    _leaf(actions, "delete", "delete a report", _delete, output=False).add_argument("report_id")
