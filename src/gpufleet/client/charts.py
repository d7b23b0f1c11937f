"""Terminal line charts drawn with braille dots, one per metric series.

Each character cell holds 2 x 4 dots, so a chart ``width`` characters wide and ``height`` rows
high has ``2 * width`` x ``4 * height`` points. Consecutive samples are joined, so a series
reads as a line rather than scattered dots.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

_BRAILLE_BASE = 0x2800
# Dot bit for (column, row) inside one braille cell, rows counted from the top.
_DOT_BITS = ((0x01, 0x02, 0x04, 0x40), (0x08, 0x10, 0x20, 0x80))
_BYTE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


@dataclass(frozen=True)
class Series:
    """One line to draw: a title, its values in time order and the first/last timestamps."""

    title: str
    values: Sequence[float]
    first: str = ""
    last: str = ""
    unit: str = ""


def format_number(value: float, unit: str = "") -> str:
    """A short label: 1.5GiB, 2MiB/s, 42.1%, 0.25 cores, 0.3 s, 3260, 12.3k, 4.5M."""
    if unit in ("bytes", "bytes/s"):
        size, index = abs(value), 0
        while size >= 1024 and index < len(_BYTE_UNITS) - 1:
            size, index = size / 1024, index + 1
        sign = "-" if value < 0 else ""
        return f"{sign}{size:.3g}{_BYTE_UNITS[index]}{unit[5:]}"
    text = _short(value)
    if unit == "%":
        return text + "%"
    return f"{text} {unit}" if unit else text


def _short(value: float) -> str:
    """Three significant digits (whole numbers up to 9999), with k, M and G for the large."""
    if abs(value) < 10_000:
        return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"
    for suffix, size in (("k", 1e3), ("M", 1e6), ("G", 1e9)):
        if abs(value) / size < 999.5 or suffix == "G":
            break
    return f"{value / size:.3g}{suffix}"


def _dot_columns(values: Sequence[float], columns: int) -> list[float]:
    """Resample the values to one per dot column (bucket means, or stretched when few)."""
    count = len(values)
    if count >= columns:
        sampled = []
        for column in range(columns):
            start = column * count // columns
            end = max(start + 1, (column + 1) * count // columns)
            bucket = values[start:end]
            sampled.append(sum(bucket) / len(bucket))
        return sampled
    if count == 1:
        return [values[0]] * columns
    # Fewer samples than columns: interpolate linearly between neighbours.
    sampled = []
    for column in range(columns):
        position = column * (count - 1) / (columns - 1)
        left = int(position)
        right = min(left + 1, count - 1)
        fraction = position - left
        sampled.append(values[left] * (1 - fraction) + values[right] * fraction)
    return sampled


def braille_rows(values: Sequence[float], width: int, height: int) -> list[str]:
    """The chart body: ``height`` strings of ``width`` braille characters."""
    rows_of_dots = height * 4
    cells = [[0] * width for _ in range(height)]
    points = _dot_columns(values, width * 2)
    low, high = min(points), max(points)
    span = high - low

    def dot_row(value: float) -> int:
        # A flat series is drawn across the middle rather than along the floor.
        level = 0.5 if span == 0 else (value - low) / span
        return rows_of_dots - 1 - round(level * (rows_of_dots - 1))

    previous: int | None = None
    for x, value in enumerate(points):
        y = dot_row(value)
        top, bottom = (y, y) if previous is None else (min(y, previous), max(y, previous))
        for row in range(top, bottom + 1):
            cells[row // 4][x // 2] |= _DOT_BITS[x % 2][row % 4]
        previous = y
    return ["".join(chr(_BRAILLE_BASE + bits) for bits in line) for line in cells]


def render_chart(series: Series, width: int = 60, height: int = 6) -> list[str]:
    """A titled chart with min/max on the axis and min/max/last in the title line."""
    values = [v for v in series.values if math.isfinite(v)]
    if not values:
        return [f"{series.title}", "  (no data in this range)"]
    low, high, last = min(values), max(values), values[-1]
    labels = [format_number(high, series.unit), format_number(low, series.unit)]
    gutter = max(len(label) for label in labels)
    body = braille_rows(values, max(4, width - gutter - 2), max(1, height))
    title = (
        f"{series.title}  min {labels[1]}  max {labels[0]}  last {format_number(last, series.unit)}"
    )
    counted = f"{title}  ({len(values)} samples)"
    if len(counted) <= width:
        lines = [counted]
    elif len(title) <= width:
        lines = [title]
    else:
        lines = [series.title[:width], title[len(series.title) :].strip()[:width]]
    for index, row in enumerate(body):
        label = labels[0] if index == 0 else labels[1] if index == len(body) - 1 else ""
        lines.append(f"{label.rjust(gutter)} ┤{row}")
    if series.first or series.last:
        lines.append(" " * (gutter + 2) + _time_axis(series.first, series.last, len(body[0])))
    return lines


def _time_axis(first: str, last: str, width: int) -> str:
    """The first timestamp under the chart's start and the last under its end; when both do not
    fit with a space between them, the first alone."""
    if len(first) + 1 + len(last) <= width:
        return first + last.rjust(width - len(first))
    return first
