"""Query and path parameters that several routes take, declared once.

Each is an ``Annotated`` type a route names in its signature; the descriptions are the ones
the reference gives the same parameters, so every route documents them alike.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Annotated
from uuid import UUID

from fastapi import Query

from gpufleet.core.errors import Invalid
from gpufleet.query.listing import MAX_LIMIT, MAX_OFFSET
from gpufleet.schemas.enums import SortOrder

_OFFSET = "The offset of the first item returned in the collection."

OffsetParam = Annotated[int, Query(ge=0, le=MAX_OFFSET, description=_OFFSET)]
# The workloads list documents its offset as optional (absent means 0).
OptionalOffsetParam = Annotated[int | None, Query(ge=0, le=MAX_OFFSET, description=_OFFSET)]
LimitParam = Annotated[
    int, Query(ge=1, le=MAX_LIMIT, description="The maximum number of entries to return.")
]
SortOrderParam = Annotated[
    SortOrder, Query(description="Sort results in descending or ascending order.")
]
DeletedParam = Annotated[
    bool | None, Query(description="Return only deleted resources when `true`.")
]
SearchParam = Annotated[
    str | None,
    Query(description="Filter results by a free text search.", examples=["test project"]),
]


def sort_field_enum(name: str, fields: Iterable[str]) -> type[StrEnum]:
    """The enum ``sortBy`` documents for a catalogue: its field names, in its order."""
    return StrEnum(name, {field: field for field in fields})


def parse_uuid(parameter: str, value: str) -> str:
    """The canonical form of a UUID given in the path parameter ``parameter``, or ``Invalid``."""
    try:
        return str(UUID(value))
    except ValueError:
        raise Invalid(
            f"Invalid path parameter '{parameter}': {value[:64]!r} is not a UUID."
        ) from None
