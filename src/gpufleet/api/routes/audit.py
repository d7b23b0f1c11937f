"""Run:ai's audit log (``/api/v1/audit/log``) and its download as a CSV or JSON file."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, Query
from fastapi.responses import Response

from gpufleet.api.authorization import AuditAccess
from gpufleet.api.deps import Db
from gpufleet.api.parameters import OffsetParam
from gpufleet.api.responses import json_response
from gpufleet.api.routing import OffLoopJsonRoute
from gpufleet.core.access_fields import AUDIT_FILTER_FIELDS, AUDIT_SORT_FIELDS
from gpufleet.query.access import MAX_AUDIT_SAMPLES, build_audit_query
from gpufleet.schemas.access import AuditLogPage
from gpufleet.schemas.csv_cells import write_csv
from gpufleet.schemas.enums import SortOrder
from gpufleet.schemas.errors import error_responses
from gpufleet.store import audit

router = APIRouter(prefix="/api/v1/audit", tags=["AuditLogs"], route_class=OffLoopJsonRoute)

StartParam = Annotated[
    datetime, Query(description="Start of the time range, an ISO 8601 timestamp.")
]
EndParam = Annotated[datetime, Query(description="End of the time range, an ISO 8601 timestamp.")]
SamplesParam = Annotated[
    int,
    Query(ge=0, le=MAX_AUDIT_SAMPLES, description="The number of entries to return."),
]
AuditFilterParam = Annotated[
    list[str] | None,
    Query(
        description=(
            "Filter results by a parameter, as field-name operator value. Fields: "
            + ", ".join(AUDIT_FILTER_FIELDS)
            + ". Operators: `==` `!=` `<=` `>=` `=@` `!@` `=^` `=$` (timestamp: the first four)."
        ),
        examples=["entity_type==service-account"],
    ),
]
AuditSort = Literal[AUDIT_SORT_FIELDS]  # type: ignore[valid-type]
CSV_COLUMNS = (
    "timestamp",
    "subject",
    "subject_type",
    "action",
    "result",
    "entity_type",
    "entity_id",
    "entity_name",
    "source_ip",
)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@router.get(
    "/log",
    operation_id="getAuditLogs",
    summary="Get audit logs",
    response_model=AuditLogPage,
    responses=error_responses(400, 401, 403, 500, 503),
)
def get_audit_logs(
    _access: AuditAccess,
    conn: Db,
    start: StartParam,
    end: EndParam,
    offset: OffsetParam = 0,
    numberOfSamples: SamplesParam = 20,
    sortOrder: Annotated[SortOrder, Query()] = SortOrder.ASC,
    sortBy: Annotated[AuditSort | None, Query()] = None,
    filterBy: AuditFilterParam = None,
) -> Response:
    query = build_audit_query(
        start=_utc(start),
        end=_utc(end),
        filter_by=filterBy,
        sort_by=sortBy,
        sort_order=sortOrder.value,
        offset=offset,
        limit=numberOfSamples,
    )
    entries = audit.list_entries(conn, query)
    total = audit.count_entries(conn, query)
    # The reference requires "logs" while naming the list "audit_logs" (which the official
    # SDK reads): both carry it.
    body: dict = {"logs": entries, "audit_logs": entries, "total": total}
    if query.offset + len(entries) < total and entries:
        body["next"] = query.offset + len(entries)
    return json_response(body)


@router.get(
    "/log/file",
    operation_id="downloadAuditLogs",
    summary="Download audit logs",
    response_class=Response,
    responses={
        200: {"content": {"application/octet-stream": {}}, "description": "File downloaded"},
        **error_responses(400, 401, 403, 500, 503),
    },
)
def download_audit_logs(
    _access: AuditAccess,
    conn: Db,
    file_type: Annotated[Literal["CSV", "JSON"] | None, Query()] = None,
    *,
    start: StartParam,
    end: EndParam,
    numberOfSamples: SamplesParam = 20,
    filterBy: AuditFilterParam = None,
    # The official SDK sends the file type under this name.
    fileType: Annotated[Literal["CSV", "JSON"] | None, Query(include_in_schema=False)] = None,
) -> Response:
    query = build_audit_query(
        start=_utc(start), end=_utc(end), filter_by=filterBy, limit=numberOfSamples
    )
    entries = audit.list_entries(conn, query)
    if (file_type or fileType or "CSV") == "JSON":
        content, suffix = orjson.dumps(entries), "json"
    else:
        buffer = io.StringIO()
        write_csv(buffer, CSV_COLUMNS, ([e.get(c) for c in CSV_COLUMNS] for e in entries))
        content, suffix = buffer.getvalue().encode(), "csv"
    disposition = f'attachment; filename="audit-log.{suffix}"'
    return Response(
        content,
        media_type="application/octet-stream",
        headers={"Content-Disposition": disposition},
    )
