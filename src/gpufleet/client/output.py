"""Printing API answers: tables sized to the terminal, or json, yaml and csv for scripts.

On a terminal, tables are drawn by rich with coloured phases and squeezed to its width; when
stdout is not a terminal (a pipe, a file) they are plain aligned text with no colour, so
``grep``/``awk`` see exactly the values.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

import yaml
from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from gpufleet.client.table_layout import ColumnKind, column_kind, distinct_width, fit_columns
from gpufleet.schemas.csv_cells import write_csv

FORMATS = ("table", "wide", "json", "yaml", "csv")
# The formats a person reads, which show names where the API gives ids.
TABLES = ("table", "wide")
PHASE_STYLES = {
    "Running": "green",
    "Completed": "blue",
    "Pending": "yellow",
    "Creating": "cyan",
    "Initializing": "cyan",
    "Resuming": "cyan",
    "Updating": "cyan",
    "Degraded": "magenta",
    "Failed": "bold red",
    "Stopping": "dim",
    "Stopped": "dim",
    "Deleting": "dim",
    "Terminating": "dim",
    "Unknown": "dim",
}


@dataclass(frozen=True)
class Column:
    """A table column: its header and how a value is read from a record."""

    header: str
    read: Callable[[dict[str, Any]], Any]
    wide_only: bool = False


def _age(value: str | None, now: datetime | None = None) -> str:
    if not value:
        return ""
    try:
        then = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    seconds = max(0, int(((now or datetime.now(UTC)) - then).total_seconds()))
    return duration(seconds)


_DURATION_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def duration(seconds: float | None) -> str:
    """A short duration in its two largest units, like kubectl's: 45s, 12m5s, 2h52m, 3d4h."""
    if seconds is None:
        return ""
    seconds = int(seconds)
    for index, (unit, size) in enumerate(_DURATION_UNITS[:-1]):
        if seconds >= size:
            text = f"{seconds // size}{unit}"
            smaller, smaller_size = _DURATION_UNITS[index + 1]
            rest = seconds % size // smaller_size
            return f"{text}{rest}{smaller}" if rest else text
    return f"{seconds}s"


def _number(value: Any) -> str:
    return "" if value is None else f"{value:g}"


def allocated_gpus(record: dict[str, Any]) -> float | None:
    return (record.get("allocatedResources") or {}).get("gpu")


def requested_gpus(record: dict[str, Any]) -> float | None:
    """GPUs the workload asked for (``workloadRequestedResources.gpu.request``)."""
    requested = (record.get("workloadRequestedResources") or {}).get("gpu") or {}
    return requested.get("request")


def idle_gpus(record: dict[str, Any]) -> float | None:
    """Idle allocated GPUs; the deprecated whole-GPU count when only that is known."""
    idle = record.get("idleAllocatedGpus")
    return record.get("idleGpus") if idle is None else idle


WORKLOAD_COLUMNS = (
    Column("NAME", lambda w: w.get("name")),
    Column("TYPE", lambda w: w.get("type")),
    Column("PROJECT", lambda w: w.get("projectName")),
    Column("PHASE", lambda w: w.get("phase")),
    Column("GPUS", lambda w: _number(allocated_gpus(w))),
    Column("AGE", lambda w: _age(w.get("createdAt"))),
    Column("REQUESTED GPUS", lambda w: _number(requested_gpus(w)), wide_only=True),
    Column("IDLE GPUS", lambda w: _number(idle_gpus(w)), wide_only=True),
    Column("ID", lambda w: w.get("id"), wide_only=True),
    Column("DEPARTMENT", lambda w: w.get("departmentName"), wide_only=True),
    Column("CLUSTER", lambda w: w.get("clusterId"), wide_only=True),
    Column("NODEPOOLS", lambda w: ",".join(w.get("currentNodePools") or []), wide_only=True),
    Column("SUBMITTED BY", lambda w: w.get("submittedBy"), wide_only=True),
    Column("PENDING", lambda w: duration(w.get("totalPendingTimeSeconds")), wide_only=True),
    Column("RUNNING", lambda w: duration(w.get("totalRunningTimeSeconds")), wide_only=True),
)

# csv carries raw values (seconds, timestamps), not the humanised ones of the table.
WORKLOAD_CSV_FIELDS = (
    ("id", lambda w: w.get("id")),
    ("name", lambda w: w.get("name")),
    ("type", lambda w: w.get("type")),
    ("phase", lambda w: w.get("phase")),
    ("projectName", lambda w: w.get("projectName")),
    ("departmentName", lambda w: w.get("departmentName")),
    ("clusterId", lambda w: w.get("clusterId")),
    ("submittedBy", lambda w: w.get("submittedBy")),
    ("allocatedGPU", allocated_gpus),
    ("requestedGPU", requested_gpus),
    ("idleAllocatedGpus", idle_gpus),
    ("currentNodePools", lambda w: ",".join(w.get("currentNodePools") or [])),
    ("createdAt", lambda w: w.get("createdAt")),
    ("totalPendingTimeSeconds", lambda w: w.get("totalPendingTimeSeconds")),
    ("totalRunningTimeSeconds", lambda w: w.get("totalRunningTimeSeconds")),
)


class Printer:
    """Writes to one stream, choosing rich or plain output by whether it is a terminal."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self.is_terminal = self.stream.isatty()
        self.console = Console(file=self.stream, highlight=False, soft_wrap=False)

    def text(self, line: str = "") -> None:
        self.stream.write(line + "\n")

    def styled(self, renderable: Any) -> None:
        """Rich markup on a terminal, its plain text elsewhere."""
        if self.is_terminal:
            self.console.print(renderable)
        else:
            plain = renderable.plain if isinstance(renderable, Text) else str(renderable)
            self.text(plain)

    def table(
        self,
        headers: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        numeric: Collection[str] = (),
        footer: Sequence[Any] | None = None,
    ) -> None:
        """Rows under headers, an optional totals row last. Columns of numbers (and ``numeric``
        ones) are right-aligned; on a terminal a ``PHASE`` column is coloured and the columns
        share its width as ``table_layout`` says."""
        cells = [["" if v is None else str(v) for v in row] for row in rows]
        last = None if footer is None else ["" if v is None else str(v) for v in footer]
        every = cells + ([last] if last else [])
        kinds = [
            column_kind(header, [row[i] for row in cells], numeric)
            for i, header in enumerate(headers)
        ]
        right = [kind is ColumnKind.NUMBER for kind in kinds]
        if not self.is_terminal:
            self._plain_table(list(headers), every, right)
            return
        natural = [
            max([cell_len(h), *(cell_len(row[i]) for row in every)]) for i, h in enumerate(headers)
        ]
        key_floor = distinct_width([row[0] for row in cells]) if headers else 0
        layout = fit_columns(headers, kinds, natural, self.console.width, key_floor)
        table = Table(
            box=box.SIMPLE_HEAD,
            show_edge=False,
            pad_edge=False,
            header_style="bold",
            show_footer=last is not None,
            footer_style="bold",
        )
        for index, width in layout.widths.items():
            table.add_column(
                headers[index],
                footer=last[index] if last else "",
                overflow="ellipsis",
                no_wrap=True,
                width=width,
                justify="right" if right[index] else "left",
            )
        phase_at = list(headers).index("PHASE") if "PHASE" in headers else None
        for row in cells:
            styled: list[Any] = list(row)
            if phase_at is not None:
                styled[phase_at] = Text(row[phase_at], style=PHASE_STYLES.get(row[phase_at], ""))
            table.add_row(*(styled[index] for index in layout.widths))
        self.console.print(table)
        if layout.dropped:
            print(
                f"gpufleet: {', '.join(layout.dropped)} left out to fit {self.console.width} "
                "columns; widen the terminal, or pipe the output to see every column",
                file=sys.stderr,
            )

    def _plain_table(self, headers: list[str], rows: list[list[str]], right: list[bool]) -> None:
        widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
        for row in [headers, *rows]:
            line = "   ".join(
                cell.rjust(widths[i]) if right[i] else cell.ljust(widths[i])
                for i, cell in enumerate(row)
            )
            self.text(line.rstrip())

    def data(self, value: Any, fmt: str) -> None:
        """A JSON-shaped value as json or yaml, exactly as the API returned it."""
        if fmt == "yaml":
            self.stream.write(yaml.safe_dump(value, sort_keys=False, allow_unicode=True))
        else:
            self.stream.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")

    def data_if_asked(self, value: Any, fmt: str) -> bool:
        """``value`` as json or yaml when ``fmt`` is one of them; True if it was printed."""
        if fmt not in ("json", "yaml"):
            return False
        self.data(value, fmt)
        return True

    def csv(self, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        write_csv(self.stream, headers, (["" if v is None else v for v in row] for row in rows))


def print_list(
    printer: Printer,
    noun: str,
    records: Sequence[Any],
    fmt: str,
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    numeric: Collection[str] = (),
) -> None:
    """A list command's answer: the records as the API gave them in json or yaml, the rows as
    csv or a table. Like kubectl, an empty table is a note on stderr (``No pods found.``) and
    nothing on stdout, so a script reading stdout sees no rows; json, yaml and csv print an
    empty document."""
    if printer.data_if_asked(list(records), fmt):
        return
    if fmt == "csv":
        printer.csv(headers, rows)
    elif not rows:
        print(f"No {noun} found.", file=sys.stderr)
    else:
        printer.table(headers, rows, numeric=numeric)


def print_workloads(
    printer: Printer,
    workloads: Sequence[dict[str, Any]],
    fmt: str,
    clusters: dict[str, str] | None = None,
) -> None:
    """A list of workloads in one of ``FORMATS``; csv has raw values (``WORKLOAD_CSV_FIELDS``).
    A table's CLUSTER is the cluster's name in ``clusters`` (by id), else its id."""
    if fmt == "csv":
        printer.csv(
            [name for name, _ in WORKLOAD_CSV_FIELDS],
            [[read(w) for _, read in WORKLOAD_CSV_FIELDS] for w in workloads],
        )
        return
    columns = [c for c in WORKLOAD_COLUMNS if fmt == "wide" or not c.wide_only]
    names = clusters or {}
    shown = [
        {**w, "clusterId": names.get(w.get("clusterId"), w.get("clusterId"))} for w in workloads
    ]
    rows = [[c.read(w) for c in columns] for w in shown]
    print_list(printer, "workloads", workloads, fmt, [c.header for c in columns], rows)
