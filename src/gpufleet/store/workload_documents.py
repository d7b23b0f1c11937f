"""The mapping between a stored workload row and its wire document.

``workload_row`` splits a wire-shaped dict into indexed columns plus the nested ``document``;
``workload_wire`` joins a row back into the wire shape, in the reference's field order, without
pydantic on the way (listing 500 workloads is 500 dict builds, not 500 model validations).

The document holds only the nested fields, which no column holds, packed (see
``store.packed_documents``: about a third of the JSON's size). The fields a listing returns
come first and the detail-only ones after a newline, so a listing unpacks the document and
splices its first part into the answer without parsing it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson

from gpufleet.core.times import format_rfc3339, truncate_to_ms
from gpufleet.core.workload_fields import (
    SEARCH_FIELDS,
    WIRE_ORDER,
    WORKLOAD_CATALOGUE,
    FieldKind,
    is_nodepool_name,
)
from gpufleet.store.packed_documents import pack, unpack

# Scalar wire fields and the column each lives in, in the reference's order.
SCALAR_COLUMNS: dict[str, str] = {
    f.name: f.column for f in WORKLOAD_CATALOGUE if f.stored_scalar and f.column
}
REQUIRED_NULLABLE = frozenset(f.name for f in WORKLOAD_CATALOGUE if f.null_on_wire)
TIME_FIELDS = frozenset(
    f.name for f in WORKLOAD_CATALOGUE if f.stored_scalar and f.kind is FieldKind.DATE
)
DOCUMENT_FIELDS = tuple(f.name for f in WORKLOAD_CATALOGUE if f.kind is FieldKind.DOCUMENT)
DETAIL_ONLY = tuple(f.name for f in WORKLOAD_CATALOGUE if f.detail_only)
# Each scalar field, its column, and whether it is a time (kept to the millisecond).
_SCALAR_FIELDS = tuple(
    (field, column, field in TIME_FIELDS) for field, column in SCALAR_COLUMNS.items()
)
_SEARCH_SEPARATOR = "\x1f"


def search_text(values: Mapping[str, Any]) -> str:
    parts = (str(values.get(name) or "") for name in SEARCH_FIELDS)
    return _SEARCH_SEPARATOR.join(parts).lower()


@dataclass(frozen=True, slots=True)
class SecondsBefore:
    """Seconds a workload spent pending and running before its current phase began.

    The totals on the wire add the time in the current phase to these; a workload whose
    history is known from elsewhere (the demo's simulated ones) starts with them.
    """

    pending: int = 0
    running: int = 0


NO_HISTORY = SecondsBefore()


def workload_row(wire: Mapping[str, Any], before: SecondsBefore = NO_HISTORY) -> dict[str, Any]:
    """Column values for one workload given in wire shape (times as aware datetimes)."""
    row: dict[str, Any] = {}
    for field, column, is_time in _SCALAR_FIELDS:
        value = wire.get(field)
        if is_time and value is not None:
            value = truncate_to_ms(value)
        row[column] = value
    row["id"] = str(row["id"])
    row["cluster_id"] = str(row["cluster_id"])
    row["running_pods"] = row["running_pods"] or 0
    allocated = wire.get("allocatedResources") or {}
    requested = (wire.get("workloadRequestedResources") or {}).get("gpu") or {}
    row["allocated_gpu"] = float(allocated.get("gpu") or 0.0)
    row["requested_gpu"] = float(requested.get("request") or 0.0)
    nodepools = wire.get("currentNodePools") or []
    row["nodepool"] = nodepools[0] if nodepools else None
    row["requested_nodepool"] = first_requested_pool(wire)
    row["pending_seconds_before"] = before.pending
    row["running_seconds_before"] = before.running
    row["search_text"] = search_text(wire)
    row["id_key"] = row["id"]
    document = {
        name: _jsonable(value) for name in DOCUMENT_FIELDS if (value := wire.get(name)) is not None
    }
    # conditions is required on the wire; keeping it in every document lets listings splice
    # the stored document in without looking inside it.
    document.setdefault("conditions", [])
    row["document"] = pack_document(document)
    return row


def pack_document(document: Mapping[str, Any]) -> bytes:
    """The stored form of a workload's nested fields (see the module's docstring)."""
    listed = {k: v for k, v in document.items() if k not in DETAIL_ONLY}
    text = orjson.dumps(listed)
    detail = {k: document[k] for k in DETAIL_ONLY if document.get(k) is not None}
    if detail:
        text += b"\n" + orjson.dumps(detail)
    return pack(text)


def unpack_document(packed: bytes) -> tuple[bytes, bytes | None]:
    """The JSON of a stored document's listed fields, and of its detail-only ones if any."""
    listed, _, detail = unpack(packed).partition(b"\n")
    return listed, detail or None


def document_fields(packed: bytes) -> dict[str, Any]:
    """Every nested field of a stored document, listed and detail-only."""
    listed, detail = unpack_document(packed)
    fields = orjson.loads(listed)
    if detail is not None:
        fields.update(orjson.loads(detail))
    return fields


def nodepool_rows(wire: Mapping[str, Any]) -> list[dict[str, str]]:
    """The ``workload_nodepools`` rows of one workload in wire shape: its current pools."""
    workload_id = str(wire["id"])
    pools = dict.fromkeys(wire.get("currentNodePools") or [])
    return [{"workload_id": workload_id, "nodepool": pool} for pool in pools]


def workload_wire(
    row: Mapping[str, Any],
    *,
    total_pending_seconds: int,
    total_running_seconds: int,
    detailed: bool = False,
) -> dict[str, Any]:
    """The wire document for one stored row; the time-dependent totals come from the query."""
    document = document_fields(row["document"])
    wire: dict[str, Any] = {}
    for field in WIRE_ORDER:
        column = SCALAR_COLUMNS.get(field)
        if column is not None:
            value = row[column]
            if value is None and field not in REQUIRED_NULLABLE:
                continue
            wire[field] = format_rfc3339(value) if isinstance(value, datetime) else value
        elif field == "totalPendingTimeSeconds":
            wire[field] = total_pending_seconds
        elif field == "totalRunningTimeSeconds":
            wire[field] = total_running_seconds
        elif field in document:
            wire[field] = document[field]
        elif field == "conditions":
            wire[field] = []
    if detailed:
        for field in DETAIL_ONLY:
            wire[field] = document.get(field)
    return wire


def workload_listing_json(
    row: Mapping[str, Any], *, total_pending_seconds: int, total_running_seconds: int
) -> bytes:
    """The wire JSON of one workload in a listing, as bytes.

    The scalar columns are serialised here; the listed part of the stored document is
    inflated and spliced in without being parsed, which is most of the cost of a 500-item page
    otherwise.
    """
    scalars: dict[str, Any] = {}
    for field, column in SCALAR_COLUMNS.items():
        value = row[column]
        if value is None and field not in REQUIRED_NULLABLE:
            continue
        scalars[field] = format_rfc3339(value) if isinstance(value, datetime) else value
    scalars["totalPendingTimeSeconds"] = total_pending_seconds
    scalars["totalRunningTimeSeconds"] = total_running_seconds
    head = orjson.dumps(scalars)
    document, _ = unpack_document(row["document"])
    if document == b"{}":
        return head
    return head[:-1] + b"," + document[1:]


def _jsonable(value: Any) -> Any:
    kind = type(value)
    if kind is str or kind is float or kind is int or kind is bool:
        return value
    if isinstance(value, datetime):
        return format_rfc3339(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, UUID):
        return str(value)
    return value


def first_requested_pool(wire: dict) -> str | None:
    """The first node pool a workload asks for, where a pending workload's request is counted;
    None when it names none (or, in a document stored before ingest checked pool names, one
    that no pool column could hold)."""
    asked = wire.get("requestedNodePools") or []
    first = asked[0] if asked else None
    return first if isinstance(first, str) and is_nodepool_name(first) else None
