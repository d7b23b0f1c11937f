"""``/api/v1/org-unit/reports``: Run:ai's consumption reports, built from the usage ledger.

Anyone who may read workloads may ask for a report; it shows what its creator could see when
it was created. A caller sees and deletes the reports it created; a caller who may read the
whole tenant sees all of them.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from gpufleet.api.authorization import ReadScope
from gpufleet.api.deps import CurrentPrincipal, Db, Now, State
from gpufleet.api.parameters import (
    LimitParam,
    OffsetParam,
    SearchParam,
    SortOrderParam,
    parse_uuid,
)
from gpufleet.api.responses import json_response
from gpufleet.api.routing import OffLoopJsonRoute
from gpufleet.core.errors import Invalid, NotFound
from gpufleet.core.report_fields import REPORT_FIELDS, ReportStatus
from gpufleet.core.roles import TENANT_ID
from gpufleet.query.reports import ReportSelection, build_report_page, build_report_selection
from gpufleet.schemas.enums import SortOrder
from gpufleet.schemas.errors import error_responses
from gpufleet.schemas.reports import (
    Report,
    ReportCount,
    ReportList,
    ReportRequestFields,
    ReportsAvailability,
)
from gpufleet.store import reports as store

router = APIRouter(
    prefix="/api/v1/org-unit/reports", tags=["Reports"], route_class=OffLoopJsonRoute
)

ReportIdParam = Annotated[
    str, Path(description="The report id", json_schema_extra={"format": "uuid"})
]
ReportFilterParam = Annotated[
    list[str] | None,
    Query(
        description=(
            "Filter results by a parameter, as field-name operator value. Fields: "
            + ", ".join(REPORT_FIELDS)
            + ". Operators: `==` `!=` `<=` `>=` `=@` `!@` `=^` `=$` (createdAt: the first four)."
        ),
        examples=["name!=some-name"],
    ),
]
ReportSortField = Annotated[
    str | None,
    Query(
        description="Sort results by a parameter.",
        json_schema_extra={"enum": list(REPORT_FIELDS)},
    ),
]


async def report_owner(scope: ReadScope, principal: CurrentPrincipal) -> str | None:
    """Whose reports the caller sees: everyone's (None) when it reads the whole tenant."""
    return None if scope.everything else principal.subject


ReportOwner = Annotated[str | None, Depends(report_owner)]


def get_report_or_404(conn: Db, owner: ReportOwner, reportId: ReportIdParam) -> dict:
    """The guard every route taking a report id goes through: another caller's report is
    answered like an unknown one."""
    report = store.get_report(conn, parse_uuid("reportId", reportId), owner)
    if report is None:
        raise NotFound(f"Report {reportId} not found.")
    return report


VisibleReport = Annotated[dict, Depends(get_report_or_404)]


async def report_selection(
    owner: ReportOwner, filterBy: ReportFilterParam = None, search: SearchParam = None
) -> ReportSelection:
    """The reports a list or count is about: the caller's, narrowed by filterBy and search."""
    return build_report_selection(filter_by=filterBy, search=search, created_by=owner)


Selection = Annotated[ReportSelection, Depends(report_selection)]


@router.post(
    "",
    status_code=202,
    summary="Create a new report request.",
    operation_id="create_report",
    response_model=Report,
    response_model_exclude_none=True,
    responses=error_responses(400, 401, 403, 503),
)
def create_report(
    scope: ReadScope,
    principal: CurrentPrincipal,
    conn: Db,
    now: Now,
    body: ReportRequestFields,
) -> Response:
    if body.end <= body.start:
        raise Invalid("Invalid request body field 'end': must be after start")
    row = {
        "id": str(uuid.uuid4()),
        "tenant_id": TENANT_ID,
        "name": body.name,
        "description": body.description,
        "start_at": body.start,
        "end_at": body.end,
        "group_by": body.groupBy.value if body.groupBy else None,
        "filter_by": list(body.filterBy),
        "scope": store.scope_document(scope),
        "created_at": now,
        "created_by": principal.subject,
    }
    report = store.create_report(conn, row)
    conn.commit()
    return json_response(report, status_code=202)


@router.get(
    "",
    summary="List reports",
    operation_id="list_reports",
    response_model=ReportList,
    response_model_exclude_none=True,
    responses=error_responses(400, 401, 403, 503),
)
def list_reports(
    selection: Selection,
    conn: Db,
    sortBy: ReportSortField = None,
    sortOrder: SortOrderParam = SortOrder.ASC,
    offset: OffsetParam = 0,
    limit: LimitParam = 50,
) -> Response:
    page = build_report_page(
        selection, sort_by=sortBy, sort_order=sortOrder.value, offset=offset, limit=limit
    )
    return json_response({"reports": store.list_reports(conn, page)})


@router.get(
    "/count",
    summary="Count reports",
    operation_id="count_reports",
    response_model=ReportCount,
    responses=error_responses(400, 401, 403, 503),
)
def count_reports(selection: Selection, conn: Db) -> Response:
    return json_response({"count": store.count_reports(conn, selection)})


@router.get(
    "/availability",
    summary="Reports availability",
    operation_id="are_reports_available",
    response_model=ReportsAvailability,
    responses=error_responses(401, 503),
)
def reports_availability(_principal: CurrentPrincipal, state: State) -> Response:
    # Reports are available when this deployment runs the report worker.
    return json_response({"isAvailable": state.settings.report_interval_seconds > 0})


@router.get(
    "/{reportId}",
    summary="Get report",
    operation_id="get_report_by_id",
    response_model=Report,
    response_model_exclude_none=True,
    responses=error_responses(400, 401, 403, 404, 503),
)
def get_report(report: VisibleReport) -> Response:
    return json_response(report)


@router.delete(
    "/{reportId}",
    status_code=204,
    summary="Delete report",
    operation_id="delete_report_by_id",
    responses=error_responses(400, 401, 403, 404, 503),
)
def delete_report(report: VisibleReport, owner: ReportOwner, conn: Db) -> Response:
    store.delete_report(conn, report["id"], owner)
    conn.commit()
    return Response(status_code=204)


@router.get(
    "/{reportId}/file",
    summary="Download report",
    operation_id="download_report_by_id",
    responses={
        200: {"content": {"text/csv": {}}, "description": "Executed successfully."},
        **error_responses(400, 401, 403, 404, 503),
    },
)
def download_report(report: VisibleReport, conn: Db, request: Request) -> Response:
    if report["status"] != ReportStatus.READY.value:
        raise Invalid(f"Report {report['id']} has no file yet: it is {report['status']}.")
    text = store.report_file(conn, report["id"]) or ""
    if "accept" not in request.headers:
        # The official SDK sends no Accept header and decodes every answer as JSON: it gets
        # the same CSV text as one JSON string. Anything that accepts text/csv gets the file.
        return json_response(text)
    filename = f"report-{report['id']}.csv"
    return Response(
        text,
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
