"""Stored rows read into the store's frozen row types."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any, TypeVar

T = TypeVar("T")


def row_as(cls: type[T], row: Mapping[str, Any], **computed: Any) -> T:
    """The dataclass ``cls`` filled from the row's columns of the same names; ``computed``
    gives the fields the row does not hold as they are. A field with a default may be absent
    from the row (a column only some statements select)."""
    names = (f.name for f in fields(cls))  # type: ignore[arg-type]
    taken = {name: row[name] for name in names if name not in computed and name in row}
    return cls(**taken, **computed)
