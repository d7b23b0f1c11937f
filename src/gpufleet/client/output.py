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
from rich.console import Console
from rich.table import Table
from rich.text import Text

from gpufleet.schemas.csv_cells import write_csv

FORMATS = ("table", "wide", "json", "yaml", "csv")
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


SHRINKABLE = {"NAME", "PROJECT", "DEPARTMENT", "SUBMITTED BY", "NODEPOOLS", "CLUSTER", "ID"}
SHRINKABLE |= {"REASON", "MESSAGE"}
SHRINK_TO = 8
# Columns of numbers, right-aligned so their digits line up.
NUMERIC = {"GPUS", "REQUESTED GPUS", "IDLE GPUS"}


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


def duration(seconds: float | None) -> str:
    """A kubectl-like short duration: 45s, 12m, 5h, 3d."""
    if seconds is None:
        return ""
    seconds = int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
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
        numeric: Collection[str] = NUMERIC,
        footer: Sequence[Any] | None = None,
    ) -> None:
        """Rows under headers, ``numeric`` columns right-aligned, an optional totals row last;
        a ``PHASE`` column is coloured on a terminal."""
        cells = [["" if v is None else str(v) for v in row] for row in rows]
        last = None if footer is None else ["" if v is None else str(v) for v in footer]
        right = [header in numeric for header in headers]
        if not self.is_terminal:
            self._plain_table(list(headers), cells + ([last] if last else []), right)
            return
        table = Table(
            box=box.SIMPLE_HEAD,
            show_edge=False,
            pad_edge=False,
            header_style="bold",
            show_footer=last is not None,
            footer_style="bold",
        )
        widths = self._fitted_widths(headers, cells + ([last] if last else []))
        for index, (header, width) in enumerate(zip(headers, widths, strict=True)):
            table.add_column(
                header,
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
            table.add_row(*styled)
        self.console.print(table)

    def _fitted_widths(self, headers: Sequence[str], cells: list[list[str]]) -> list[int]:
        """Natural widths, with the widest free-text columns cut until the row fits."""
        widths = [max([len(h), *(len(row[i]) for row in cells)]) for i, h in enumerate(headers)]
        # Between two columns: one space of padding each side and the box's divider.
        excess = sum(widths) + 3 * (len(widths) - 1) - self.console.width
        # First free text down to SHRINK_TO, then (on narrow terminals) types too, to 4.
        for names, floor in ((SHRINKABLE, SHRINK_TO), (SHRINKABLE | {"TYPE"}, 4)):
            while excess > 0:
                candidates = [i for i, h in enumerate(headers) if h in names and widths[i] > floor]
                if not candidates:
                    break
                widest = max(candidates, key=lambda i: widths[i])
                widths[widest] -= 1
                excess -= 1
        return widths

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


def print_workloads(printer: Printer, workloads: Sequence[dict[str, Any]], fmt: str) -> None:
    """A list of workloads in one of ``FORMATS``."""
    if fmt in ("json", "yaml"):
        printer.data(list(workloads), fmt)
    elif fmt == "csv":
        printer.csv(
            [name for name, _ in WORKLOAD_CSV_FIELDS],
            [[read(w) for _, read in WORKLOAD_CSV_FIELDS] for w in workloads],
        )
    elif not workloads:
        # Like kubectl: the note goes to stderr, so a script reading stdout sees no rows.
        print("No workloads found.", file=sys.stderr)
    else:
        columns = [c for c in WORKLOAD_COLUMNS if fmt == "wide" or not c.wide_only]
        printer.table(
            [c.header for c in columns], [[c.read(w) for c in columns] for w in workloads]
        )
