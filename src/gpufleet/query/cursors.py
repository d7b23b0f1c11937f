"""Opaque paging cursors: where the previous page ended, for the next request to resume there.

A cursor is base64url JSON, opaque to clients. For a sort with an index it holds the last
row's sort value and id, so the next page seeks past that row through the index (keyset
paging): it costs what the first page costs, and rows added or removed meanwhile neither
repeat nor skip a row. A sort computed per request (the time totals) has no index to seek
in; its cursor holds the next offset. Either way the cursor carries a digest of the filters,
search, ``deleted`` and sort it was issued for, and is refused with other ones.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson

from gpufleet.core.workload_fields import FieldKind
from gpufleet.query.errors import QueryError

if TYPE_CHECKING:
    from gpufleet.query.listing import SortSpec, WorkloadSelection

MAX_CURSOR_LENGTH = 2048
_VERSION = 1


@dataclass(frozen=True, slots=True)
class Keyset:
    """Where the previous page ended: its last row's sort value and id."""

    value: Any
    id: str


def cursor_digest(selection: WorkloadSelection, sort: SortSpec) -> str:
    """What a cursor is valid for: the same filters, search, deleted and sort."""
    terms = [term.raw for term in selection.filters]
    key = [terms, selection.search, selection.deleted, sort.field.name, sort.descending]
    return hashlib.sha256(orjson.dumps(key)).hexdigest()[:16]


def encode_cursor(
    selection: WorkloadSelection, sort: SortSpec, *, after: Keyset | None, offset: int
) -> str:
    """The cursor of the page that follows: after a row, or (computed sorts) at an offset."""
    body: dict[str, Any] = {"v": _VERSION, "d": cursor_digest(selection, sort)}
    if after is not None and sort.field.sort_indexed:
        value = after.value.isoformat() if isinstance(after.value, datetime) else after.value
        body |= {"k": value, "i": after.id}
    else:
        body["o"] = offset
    return base64.urlsafe_b64encode(orjson.dumps(body)).decode().rstrip("=")


def decode_cursor(text: str, selection: WorkloadSelection, sort: SortSpec) -> Keyset | int:
    """The row to resume after, or the offset to resume at; ``QueryError`` if not ours."""
    body = _body(text)
    if body.get("v") != _VERSION or body.get("d") != cursor_digest(selection, sort):
        raise QueryError("cursor", "was issued for other filterBy, search, deleted or sort")
    if "o" in body:
        offset = body["o"]
        if not isinstance(offset, int) or offset < 0:
            raise QueryError("cursor", "is not a cursor this server issued")
        return offset
    row_id, value = body.get("i"), body.get("k")
    if not isinstance(row_id, str) or not sort.field.sort_indexed:
        raise QueryError("cursor", "is not a cursor this server issued")
    return Keyset(_typed(value, sort.field.kind), row_id)


def _body(text: str) -> dict[str, Any]:
    if len(text) > MAX_CURSOR_LENGTH:
        raise QueryError("cursor", f"is longer than {MAX_CURSOR_LENGTH} characters")
    try:
        body = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (binascii.Error, ValueError):
        raise QueryError("cursor", "is not a cursor this server issued") from None
    if not isinstance(body, dict):
        raise QueryError("cursor", "is not a cursor this server issued")
    return body


def _typed(value: Any, kind: FieldKind) -> Any:
    """The sort value as the column compares it (a date back to an aware datetime)."""
    if value is None:
        return None
    valid = {
        FieldKind.DATE: str,
        FieldKind.TEXT: str,
        FieldKind.NUMBER: (int, float),
        FieldKind.INTEGER: int,
    }[kind]
    if isinstance(value, bool) or not isinstance(value, valid):
        raise QueryError("cursor", "is not a cursor this server issued")
    if kind is FieldKind.DATE:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise QueryError("cursor", "is not a cursor this server issued") from None
        if moment.tzinfo is None:
            raise QueryError("cursor", "is not a cursor this server issued")
        return moment
    return value
