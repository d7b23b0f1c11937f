"""How a table's columns share a terminal's width, one rule for every table the client prints.

Each column has a kind, read from its header and its cells. Numbers, states (a phase, a status)
and times (timestamps, durations) are never cut: a cut number or phase reads as another value.
Free text (names, types, messages) gives up width in proportion to how much it has above its
floor, the header's length or ``TEXT_FLOOR`` characters, whichever is more; the first column,
which names the row, is not cut below the width that still tells its values apart
(``distinct_width``): cut to a common prefix, ``inference-prod`` and ``inference-staging``
would both read ``inference-…``. When the floors
alone do not fit, columns are left out from the right (the lowest priority: the first columns
name the row) rather than drawn zero wide.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from enum import Enum

from rich.cells import cell_len

# Characters between two columns: a space of padding each side of the divider.
GAP = 3
TEXT_FLOOR = 8
# Headers of columns holding one word of a fixed set (a phase, a status, a flag).
STATE_HEADERS = frozenset({"PHASE", "STATUS", "STATE", "ENABLED", "ACTIVE", "RESULT"})

_NUMBER = re.compile(r"-?\d[\d,]*(\.\d+)?%?(/-?\d[\d,]*(\.\d+)?)?")
_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)?")
_DURATION = re.compile(r"(\d+[dhms]){1,2}")


class ColumnKind(Enum):
    NUMBER = "number"  # right-aligned, never cut
    STATE = "state"  # never cut
    TIME = "time"  # never cut
    TEXT = "text"  # cut with an ellipsis down to its floor


def column_kind(header: str, cells: Sequence[str], numeric: Collection[str] = ()) -> ColumnKind:
    """The kind of the column ``header`` with these cells; ``numeric`` headers are numbers even
    when every cell is empty."""
    if header in numeric:
        return ColumnKind.NUMBER
    if header in STATE_HEADERS:
        return ColumnKind.STATE
    filled = [cell for cell in cells if cell]
    if not filled:
        return ColumnKind.TEXT
    if all(_NUMBER.fullmatch(cell) for cell in filled):
        return ColumnKind.NUMBER
    if all(_TIMESTAMP.fullmatch(cell) or _DURATION.fullmatch(cell) for cell in filled):
        return ColumnKind.TIME
    return ColumnKind.TEXT


@dataclass(frozen=True)
class Layout:
    """Each shown column's index and width, and the headers of the columns left out."""

    widths: dict[int, int]
    dropped: tuple[str, ...]


def shown(value: str, width: int) -> str:
    """``value`` as a column ``width`` cells wide shows it: whole, or cut with an ellipsis."""
    if cell_len(value) <= width:
        return value
    cut = value
    while cut and cell_len(cut) > width - 1:
        cut = cut[:-1]
    return cut + "…"


def distinct_width(cells: Sequence[str]) -> int:
    """The fewest cells a column of these values can be cut to and still show different values
    differently (the width of the longest when no cut does)."""
    values = set(cells)
    longest = max((cell_len(value) for value in values), default=0)
    for width in range(1, longest):
        if len({shown(value, width) for value in values}) == len(values):
            return width
    return longest


def fit_columns(
    headers: Sequence[str],
    kinds: Sequence[ColumnKind],
    natural: Sequence[int],
    width: int,
    key_floor: int = 0,
) -> Layout:
    """The widths that fit the columns in ``width`` characters (see the module's rule);
    ``key_floor`` is the first column's ``distinct_width``."""
    floors = [
        min(size, max(TEXT_FLOOR, len(header))) if kind is ColumnKind.TEXT else size
        for header, kind, size in zip(headers, kinds, natural, strict=True)
    ]
    if floors:
        floors[0] = max(floors[0], min(natural[0], key_floor))
    kept = list(range(len(headers)))
    while len(kept) > 1 and _total(floors, kept) > width:
        kept.pop()
    widths = {i: natural[i] for i in kept}
    excess = _total(natural, kept) - width
    slack = {i: natural[i] - floors[i] for i in kept if natural[i] > floors[i]}
    if excess > 0 and slack:
        for i, cut in _shares(min(excess, sum(slack.values())), slack).items():
            widths[i] -= cut
    dropped = tuple(headers[i] for i in range(len(headers)) if i not in widths)
    return Layout(widths, dropped)


def _total(sizes: Sequence[int], kept: list[int]) -> int:
    return sum(sizes[i] for i in kept) + GAP * (len(kept) - 1)


def _shares(amount: int, slack: dict[int, int]) -> dict[int, int]:
    """``amount`` split in proportion to ``slack``, in whole characters (largest remainders)."""
    total = sum(slack.values())
    exact = {i: amount * s / total for i, s in slack.items()}
    shares = {i: int(value) for i, value in exact.items()}
    by_remainder = sorted(slack, key=lambda i: (shares[i] - exact[i], -slack[i]))
    for i in by_remainder[: amount - sum(shares.values())]:
        shares[i] += 1
    return shares
