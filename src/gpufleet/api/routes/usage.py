"""``GET /api/v1/usage``: GPU-hours allocated, used and idle over a window, from the ledger.

A gpufleet extension (Run:ai has no such path; its consumption reports are the asynchronous
form of the same figures, see ``routes.reports``). The caller's scope applies as for workloads.
"""

from __future__ import annotations

import functools
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from gpufleet.api.authorization import ReadScope
from gpufleet.api.concurrency import ExpensiveRead
from gpufleet.api.csv_responses import csv_response, wants_csv
from gpufleet.api.deps import Db, Now
from gpufleet.api.responses import json_response
from gpufleet.api.routing import OffLoopJsonRoute
from gpufleet.core.times import format_rfc3339, from_ms
from gpufleet.metrics.types import format_value
from gpufleet.query.usage import (
    UsageFigures,
    UsageGroup,
    UsageQuery,
    UsageRow,
    parse_usage_bucket,
    parse_usage_filters,
    parse_usage_group_by,
    parse_usage_window,
)
from gpufleet.schemas.errors import error_responses
from gpufleet.schemas.usage import FIGURE_FIELDS, UsageResponse
from gpufleet.store.usage import usage

router = APIRouter(prefix="/api/v1", tags=["Usage"], route_class=OffLoopJsonRoute)

DESCRIPTION = (
    "A gpufleet extension. GPU-hours allocated, used (allocation weighted by measured GPU "
    "utilisation) and idle (by the idle-GPU rule), CPU core-hours, memory GiB-hours and "
    "pending workload-hours over the whole UTC hours covering [start, end), from the usage "
    "ledger. groupBy takes up to two of cluster, nodepool, department, project, submitter, "
    "type. bucket=hour|day splits the window into hours or UTC days (each value then has "
    "its start). filterBy takes projectId, projectName, departmentId, departmentName, "
    "clusterId, clusterName, nodepool == terms (a node pool by its name, in every cluster "
    "unless a cluster term names one). Accept: text/csv gives the same figures as CSV."
)


def figures_json(figures: UsageFigures) -> dict[str, float]:
    """The six figures by wire name, rounded to millionths of an hour."""
    return {wire: round(getattr(figures, attr), 6) for wire, attr in FIGURE_FIELDS.items()}


# An answer by the hour repeats each hour's start in every group's row: formatted once.
@functools.lru_cache(maxsize=4096)
def _bucket_text(bucket_ms: int) -> str:
    return format_rfc3339(from_ms(bucket_ms), timespec="seconds")


def bucket_start(row: UsageRow) -> dict[str, str]:
    """``{"start": …}`` for a bucketed row, nothing otherwise."""
    if row.bucket_ms is None:
        return {}
    return {"start": _bucket_text(row.bucket_ms)}


def usage_values(rows: list[UsageRow]) -> list[dict]:
    """The answer's ``values``. Rows share their groups' tuples (``store.usage``), so each
    group's wire list is built once per answer."""
    groups: dict[tuple[UsageGroup, ...], list[dict]] = {}
    values = []
    for row in rows:
        wire = groups.get(row.groups)
        if wire is None:
            wire = [{"key": g.key.value, "value": g.value, "name": g.name} for g in row.groups]
            groups[row.groups] = wire
        values.append({**bucket_start(row), "groups": wire, **figures_json(row.figures)})
    return values


def usage_csv(query: UsageQuery, rows: list[UsageRow]) -> Response:
    header = ["start"] if query.bucket else []
    header += [column for g in query.group_by for column in (g.value, f"{g.value}Name")]
    header += list(FIGURE_FIELDS)
    lines = []
    for row in rows:
        cells: list[object] = list(bucket_start(row).values())
        cells += [c for g in row.groups for c in (g.value, g.name or "")]
        lines.append([*cells, *(format_value(v) for v in figures_json(row.figures).values())])
    return csv_response(header, lines)


@router.get(
    "/usage",
    summary="GPU, CPU and memory hours over a window (gpufleet extension).",
    description=DESCRIPTION,
    operation_id="get_usage",
    response_model=UsageResponse,
    responses={200: {"content": {"text/csv": {}}}, **error_responses(400, 401, 403, 500, 503)},
)
def get_usage(
    _slot: ExpensiveRead,
    request: Request,
    scope: ReadScope,
    conn: Db,
    now: Now,
    start: Annotated[
        str | None, Query(description="Start of the window (ISO 8601; rounded down to the hour).")
    ] = None,
    end: Annotated[
        str | None,
        Query(description="End of the window (ISO 8601; rounded up to the hour; default now)."),
    ] = None,
    groupBy: Annotated[
        list[str] | None,
        Query(description="Up to two groupings, comma-separated or repeated."),
    ] = None,
    bucket: Annotated[
        str | None,
        Query(description="hour or day: one value per group and bucket, with its start."),
    ] = None,
    filterBy: Annotated[
        list[str] | None,
        Query(
            description="field==value terms (AND-ed), comma-separated or repeated.",
            examples=["nodepool==a100", "clusterName==dgx-east,projectName==some-project"],
        ),
    ] = None,
) -> Response:
    window = parse_usage_window(start, end, now)
    query = UsageQuery(
        window=window,
        group_by=parse_usage_group_by(groupBy),
        scope=scope,
        filters=parse_usage_filters(filterBy),
        bucket=parse_usage_bucket(bucket, window),
    )
    rows = usage(conn, query)
    if wants_csv(request):
        return usage_csv(query, rows)
    return json_response({"values": usage_values(rows)})
