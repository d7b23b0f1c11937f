"""``gpufleet telemetry TYPE`` and ``gpufleet metrics ID``: numbers and terminal charts."""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from gpufleet.client.charts import Series, render_chart
from gpufleet.client.http import ApiClient, ClientError
from gpufleet.client.lookup import resolve_cluster, resolve_org_unit, resolve_workload
from gpufleet.client.output import Printer
from gpufleet.client.session import (
    add_connection_flags,
    add_param_flag,
    extra_parameters,
    guarded,
    open_client,
)
from gpufleet.core.exit_codes import ExitCode
from gpufleet.core.times import format_rfc3339
from gpufleet.metrics.types import METRIC_TYPES, MetricKind, WorkloadMetricType
from gpufleet.store.telemetry import PENDING_TIME_KEY, TelemetryGroupBy, TelemetryType

TELEMETRY_TYPES = tuple(kind.value for kind in TelemetryType)
TELEMETRY_GROUP_BY = tuple(group.value for group in TelemetryGroupBy)
# Column headers a person reads; the groups show names (project names, not ids) where known.
TELEMETRY_GROUP_HEADERS = {
    "ClusterId": "CLUSTER",
    "DepartmentId": "DEPARTMENT",
    "ProjectId": "PROJECT",
    "Type": "TYPE",
    "CurrentNodepools": "NODEPOOL",
    "Phase": "PHASE",
    "Category": "CATEGORY",
    PENDING_TIME_KEY: "PENDING FOR",
}
TELEMETRY_VALUE_HEADERS = {
    "WORKLOADS_COUNT": "WORKLOADS",
    "GPU_ALLOCATION": "GPUS",
    "PENDING_TIME_DISTRIBUTION": "WORKLOADS",
    "ALLOCATION_RATIO": "ALLOCATED %",
}
DEFAULT_METRIC_TYPES = (
    "GPU_UTILIZATION",
    "GPU_MEMORY_USAGE_BYTES",
    "CPU_USAGE_CORES",
    "CPU_MEMORY_USAGE_BYTES",
)
# Chart labels of the catalogue's units; other units (pods, requests, GPUs) are plain numbers.
_LABEL_UNITS = {
    "percent": "%",
    "bytes": "bytes",
    "bytes per second": "bytes/s",
    "cores": "cores",
    "seconds": "s",
}
_SINCE = re.compile(r"(\d+)([smhd])")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# Longer reaches past what a date can hold (a traceback); no window of the API is near it.
LONGEST_SINCE = timedelta(days=36500)


def parse_since(text: str) -> timedelta:
    """``90s``, ``30m``, ``6h``, ``2d`` or combinations such as ``1h30m``."""
    cleaned = text.strip().lower()
    if not cleaned or _SINCE.sub("", cleaned):
        raise ClientError(f"--since {text!r}: use a duration such as 30m, 6h, 2d", ExitCode.USAGE)
    seconds = sum(int(n) * _SECONDS[unit] for n, unit in _SINCE.findall(cleaned))
    if seconds <= 0:
        raise ClientError("--since must be longer than zero", ExitCode.USAGE)
    if seconds > LONGEST_SINCE.total_seconds():
        raise ClientError(f"--since {text!r}: at most {LONGEST_SINCE.days}d", ExitCode.USAGE)
    return timedelta(seconds=seconds)


def _at_least_one(text: str) -> int:
    """An argparse ``type`` for the chart's size, which only the client reads."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _split(values: list[str] | None) -> list[str]:
    return [piece.strip() for value in values or () for piece in value.split(",") if piece.strip()]


def _telemetry_scope(client: ApiClient, args: argparse.Namespace) -> dict[str, str]:
    """``clusterId``, ``departmentId`` and ``nodepoolName`` of the flags, names resolved."""
    scope = {}
    if args.cluster:
        scope["clusterId"] = resolve_cluster(client, args.cluster)
    if args.department:
        scope["departmentId"] = resolve_org_unit(
            client, "department", args.department, scope.get("clusterId")
        )
    if args.nodepool:
        scope["nodepoolName"] = args.nodepool
    return scope


def _telemetry_params(
    args: argparse.Namespace, scope: dict[str, str], *, grouped: bool
) -> dict[str, Any]:
    params: dict[str, Any] = {"telemetryType": args.type, **scope}
    lists = (("groupBy", args.group_by if grouped else None), ("filterByPhases", args.phase))
    for name, values in lists:
        if values:
            params[name] = ",".join(_split(values))  # both are explode=false arrays
    return {**params, **extra_parameters(args.param)}


def _number(value: float) -> str:
    return str(int(value)) if value.is_integer() else str(round(value, 6))


def _total(body: dict[str, Any]) -> str:
    """The ungrouped answer as one number: the sum (over pending-time buckets), or the ratio;
    ``-`` when the server could not give one of them."""
    values = [item.get("value") for item in body.get("values") or []]
    if any(value is None for value in values):
        return "-"
    return _number(sum(float(value) for value in values)) if values else ""


def _telemetry(args: argparse.Namespace) -> int:
    url = "/api/v1/workloads/telemetry"
    with open_client(args) as client:
        scope = _telemetry_scope(client, args)
        body = client.get_json(url, _telemetry_params(args, scope, grouped=True))
        keys = telemetry_keys(args.type, _split(args.group_by))
        # Grouped rows may count a workload twice (one per node pool): the total is asked for.
        total = None
        if keys and args.output == "table":
            total = _total(client.get_json(url, _telemetry_params(args, scope, grouped=False)))
    printer = Printer()
    if printer.data_if_asked(body, args.output):
        return 0
    values = body.get("values") or []
    if args.output == "csv":
        header = [column for key in keys for column in (key, f"{key}Name")]
        rows = [
            [cell for g in item.get("groups") or [] for cell in (g["value"], g.get("name", ""))]
            + [item["value"]]
            for item in values
        ]
        printer.csv([*header, "value"], rows)
        return 0
    value_header = TELEMETRY_VALUE_HEADERS.get(args.type, "VALUE")
    headers = [TELEMETRY_GROUP_HEADERS.get(key, key.upper()) for key in keys] + [value_header]
    rows = telemetry_rows(values)
    footer = None if total is None else ["TOTAL", *[""] * (len(keys) - 1), total]
    printer.text(f"{body.get('type')} at {body.get('timestamp')}")
    printer.table(headers, rows, numeric={value_header}, footer=footer)
    return 0


def telemetry_rows(values: list[dict[str, Any]]) -> list[list[Any]]:
    """One table row per telemetry value: each group's name, then the value (``-`` when null).
    A name that stands for several ids in its column (two clusters' ``research`` departments)
    carries its id, ``research (10)``, so the rows can be told apart."""
    groups = [item.get("groups") or [] for item in values]
    ids_of: dict[tuple[int, str], set[str]] = {}
    for row in groups:
        for column, group in enumerate(row):
            if group.get("name"):
                ids_of.setdefault((column, group["name"]), set()).add(str(group.get("value")))
    rows = []
    for item, row in zip(values, groups, strict=True):
        cells: list[Any] = []
        for column, group in enumerate(row):
            name = group.get("name")
            if name and len(ids_of[(column, name)]) > 1:
                cells.append(f"{name} ({group.get('value')})")
            else:
                cells.append(name or group.get("value") or "(none)")
        rows.append([*cells, "-" if item.get("value") is None else item["value"]])
    return rows


def telemetry_keys(kind: str, group_by: list[str]) -> list[str]:
    """The group keys of each value, in order: the pending-time bucket comes first."""
    return (
        [PENDING_TIME_KEY] if kind == TelemetryType.PENDING_TIME_DISTRIBUTION else []
    ) + group_by


def metric_series(body: dict[str, Any]) -> list[Series]:
    """One chart per measurement series, and one per key of each histogram-shaped type."""
    charts: list[Series] = []
    for item in body.get("measurements") or []:
        points = item.get("values")
        labels = item.get("labels") or {}
        title = item["type"] + "".join(f" {k}={v}" for k, v in labels.items())
        if points is None:
            title += " (failed)"
        charts.append(_make_series(title, item["type"], points or [], "value"))
    for item in body.get("histogram") or []:
        keys: list[str] = []
        for point in item.get("values") or []:
            keys.extend(k for k in point["data"] if k not in keys)
        for key in keys:
            points = [
                {"timestamp": p.get("timestamp"), "value": p["data"][key]}
                for p in item.get("values") or []
                if key in p["data"]
            ]
            title = f"{item['type']} {_histogram_key(item['type'], key)}"
            charts.append(_make_series(title, item["type"], points, "value"))
    return charts


def _kind_and_unit(metric_type: str) -> tuple[MetricKind | None, str]:
    """The type's kind and its unit from the metric catalogue; (None, "") for a type this
    client does not know (a newer server's)."""
    try:
        info = METRIC_TYPES[WorkloadMetricType(metric_type)]
    except ValueError:
        return None, ""
    return info.kind, info.unit


def _histogram_key(metric_type: str, key: str) -> str:
    """A histogram's key is a bucket's upper bound in the type's unit (``le=0.01 s``); a
    percentile type's is the percentile (``p90``)."""
    kind, unit = _kind_and_unit(metric_type)
    if kind is not MetricKind.HISTOGRAM:
        return key
    shown = _LABEL_UNITS.get(unit, "")
    return f"bucket le={key}{' ' + shown if shown and key != '+Inf' else ''}"


def value_unit(metric_type: str) -> str:
    """The unit of a type's values, for chart labels. A histogram's values are counts of
    observations (requests) whatever the unit of its bucket bounds, so they have none."""
    kind, unit = _kind_and_unit(metric_type)
    return "" if kind is MetricKind.HISTOGRAM else _LABEL_UNITS.get(unit, "")


def _make_series(title: str, metric_type: str, points: list[dict], field: str) -> Series:
    values: list[float] = []
    for point in points:
        try:
            values.append(float(point[field]))
        except (TypeError, ValueError):
            continue
    first = points[0].get("timestamp") or "" if points else ""
    last = points[-1].get("timestamp") or "" if points else ""
    return Series(title, values, first, last, value_unit(metric_type))


def _metrics(args: argparse.Namespace) -> int:
    types = _split(args.type) or list(DEFAULT_METRIC_TYPES)
    end = datetime.now(UTC)
    start = end - parse_since(args.since)
    params = {
        "metricType": ",".join(types),
        "start": format_rfc3339(start, "seconds"),
        "end": format_rfc3339(end, "seconds"),
        "numberOfSamples": args.samples,
    }
    with open_client(args) as client:
        workload_id = resolve_workload(client, args.workload, args.project)
        response = client.get(f"/api/v1/workloads/{quote(workload_id, safe='')}/metrics", params)
    body = response.json()
    if response.status_code == 207:
        failed = response.headers.get("X-Gpufleet-Metric-Failures") or "some types failed"
        print(f"gpufleet: warning: partial result: {failed}", file=sys.stderr)
    printer = Printer()
    if printer.data_if_asked(body, args.output):
        return 0
    charts = metric_series(body)
    if args.output == "csv":
        rows = [
            [
                item["type"],
                ",".join(f"{k}={v}" for k, v in (item.get("labels") or {}).items()),
                point.get("timestamp"),
                point.get("value"),
            ]
            for item in body.get("measurements") or []
            for point in item.get("values") or []
        ]
        printer.csv(["type", "labels", "timestamp", "value"], rows)
        return 0
    width = min(args.width or shutil.get_terminal_size((100, 24)).columns, 200)
    for chart in charts:
        for line in render_chart(chart, width=width, height=args.height):
            printer.text(line)
        printer.text()
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``telemetry`` and ``metrics``."""
    telemetry = commands.add_parser("telemetry", help="workload telemetry, grouped")
    telemetry.add_argument(
        "type", choices=TELEMETRY_TYPES, metavar="TYPE", help=", ".join(TELEMETRY_TYPES)
    )
    telemetry.add_argument(
        "--group-by",
        action="append",
        metavar="FIELD",
        help=f"at most two of {', '.join(TELEMETRY_GROUP_BY)} (comma-separated or repeated)",
    )
    telemetry.add_argument("--phase", action="append", help="only these phases (repeatable)")
    telemetry.add_argument("--cluster", metavar="NAME|ID", help="only this cluster")
    telemetry.add_argument("--department", metavar="NAME|ID", help="only this department")
    telemetry.add_argument("--nodepool", help="only this nodepool")
    add_param_flag(telemetry)
    telemetry.add_argument(
        "-o", "--output", choices=("table", "json", "yaml", "csv"), default="table"
    )
    add_connection_flags(telemetry)
    telemetry.set_defaults(handler=guarded(_telemetry))

    metrics = commands.add_parser("metrics", help="metric charts of one workload")
    metrics.add_argument("workload", metavar="NAME|ID", help="workload name or id")
    metrics.add_argument("--project", help="the project of the named workload, when names repeat")
    metrics.add_argument(
        "--type",
        action="append",
        metavar="TYPE",
        help="metric type(s), comma-separated or repeated (default: GPU and CPU usage)",
    )
    metrics.add_argument("--since", default="6h", help="how far back, e.g. 30m, 6h, 2d (6h)")
    metrics.add_argument("--samples", type=int, default=60, help="points per series (60)")
    metrics.add_argument(
        "--width", type=_at_least_one, help="chart width in characters (terminal width)"
    )
    metrics.add_argument("--height", type=_at_least_one, default=6, help="chart height in rows (6)")
    metrics.add_argument(
        "-o", "--output", choices=("chart", "json", "yaml", "csv"), default="chart"
    )
    add_connection_flags(metrics)
    metrics.set_defaults(handler=guarded(_metrics))
