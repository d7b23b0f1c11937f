"""CSV cells that a spreadsheet cannot run as formulas.

A cell starting with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage return, which some
spreadsheets skip before looking for those) is read as a formula when the file is opened, so a
workload or project named ``=HYPERLINK(...)`` would run in the reader's spreadsheet. As OWASP
recommends, such a text cell is written with a leading single quote, which spreadsheets show
as text. Numbers stay numbers: a cell that is a plain number (``-1.5``, ``+3``, ``2e-3``) is
written as it is (the infinities of histogram bucket bounds, ``+Inf``, too), as are the
values of numeric types.

Lines end with CRLF (RFC 4180): Python's writer quotes a field only for the characters of its
line terminator, so with a bare LF a lone CR inside a name would split the row for readers.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Sequence
from typing import TextIO

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(
    r"[+-]?(?:(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|inf|infinity|nan)", re.IGNORECASE
)


def csv_cell(value: object) -> object:
    """``value`` as it may be written into a CSV cell; text that could be a formula is quoted."""
    if not isinstance(value, str) or not value.startswith(FORMULA_PREFIXES):
        return value
    if _NUMBER.fullmatch(value):
        return value
    return "'" + value


def csv_row(values: Iterable[object]) -> list[object]:
    """Every cell of a row through ``csv_cell``."""
    return [csv_cell(value) for value in values]


def write_csv(stream: TextIO, header: Sequence[str], rows: Iterable[Iterable[object]]) -> None:
    """A header row and the rows, every cell through ``csv_cell``."""
    writer = csv.writer(stream, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(csv_row(row) for row in rows)
