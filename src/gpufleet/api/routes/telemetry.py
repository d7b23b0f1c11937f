"""``GET /api/v1/workloads/telemetry``: workload counts and GPUs, grouped, as of now.

Included before the workloads router so ``/telemetry`` is never taken for a workload id.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from gpufleet.api.authorization import ReadScope
from gpufleet.api.concurrency import ExpensiveRead
from gpufleet.api.csv_responses import csv_response, wants_csv
from gpufleet.api.deps import Db, Now
from gpufleet.api.responses import json_response
from gpufleet.api.routing import OffLoopJsonRoute
from gpufleet.core.times import format_rfc3339
from gpufleet.core.workload_fields import Operator
from gpufleet.metrics.types import format_value
from gpufleet.query.choices import by_value, parse_choices, parse_uuid_choice
from gpufleet.query.errors import QueryError
from gpufleet.query.fields import WORKLOAD_FIELDS
from gpufleet.query.filters import FilterTerm
from gpufleet.query.listing import WorkloadSelection
from gpufleet.schemas.enums import Phase
from gpufleet.schemas.errors import error_responses
from gpufleet.schemas.telemetry import TelemetryResponse
from gpufleet.store.telemetry import (
    TelemetryGroupBy,
    TelemetryQuery,
    TelemetryType,
    TelemetryValueRow,
    workload_telemetry,
)

router = APIRouter(prefix="/api/v1/workloads", tags=["Workloads"], route_class=OffLoopJsonRoute)

MAX_GROUP_BY = 2
MAX_ID_LENGTH = 253

TELEMETRY_DESCRIPTION = (
    "Retrieves workload data by telemetry type, as of the request. Types: WORKLOADS_COUNT "
    "(workloads per group), GPU_ALLOCATION (allocated GPUs per group), "
    "PENDING_TIME_DISTRIBUTION (Pending workloads by time since entering Pending, in the buckets "
    "0-15m, 15m-1h, 1h-24h and 24h+, plus at most one groupBy) and ALLOCATION_RATIO "
    "(100 x allocated GPUs / requested GPUs per group, of the workloads not finished or "
    "stopped unless filterByPhases names the phases)."
)


def parse_group_by(values: Sequence[str] | None, kind: TelemetryType) -> tuple:
    groups = parse_choices("groupBy", values, by_value(TelemetryGroupBy), distinct=True)
    limit = MAX_GROUP_BY - (1 if kind is TelemetryType.PENDING_TIME_DISTRIBUTION else 0)
    if len(groups) > limit:
        reason = " (the pending-time bucket is the first group)" if limit < MAX_GROUP_BY else ""
        raise QueryError("groupBy", f"at most {limit} value(s) allowed for {kind}{reason}")
    return groups


def parse_phases(values: Sequence[str] | None) -> tuple[Phase, ...]:
    return parse_choices(
        "filterByPhases", values, by_value(Phase), unknown="is not a workload phase"
    )


def _text_filter(parameter: str, field: str, value: str | None) -> list[FilterTerm]:
    if value is None:
        return []
    if not value or len(value) > MAX_ID_LENGTH or any(ord(c) < 0x20 for c in value):
        raise QueryError(parameter, f"must be 1 to {MAX_ID_LENGTH} printable characters")
    return [FilterTerm(WORKLOAD_FIELDS[field], Operator.EQ, value, f"{field}=={value}")]


def _cluster_filter(value: str | None) -> list[FilterTerm]:
    cluster_id = parse_uuid_choice("clusterId", value)
    return _text_filter("clusterId", "clusterId", cluster_id)


def telemetry_body(kind: TelemetryType, now, values: list[TelemetryValueRow]) -> dict:
    items = []
    for item in values:
        entry: dict = {"value": format_value(item.value)}
        if item.groups:
            entry["groups"] = [
                {"key": g.key, "value": g.value, **({"name": g.name} if g.name else {})}
                for g in item.groups
            ]
        items.append(entry)
    return {"type": kind.value, "timestamp": format_rfc3339(now), "values": items}


def telemetry_csv(body: dict, group_keys: Sequence[str]) -> Response:
    header = ["type", "timestamp"]
    for key in group_keys:
        header += [key, f"{key}Name"]
    header.append("value")
    rows = []
    for item in body["values"]:
        row = [body["type"], body["timestamp"]]
        for group in item.get("groups", ()):
            row += [group["value"], group.get("name", "")]
        rows.append([*row, item["value"]])
    return csv_response(header, rows)


@router.get(
    "/telemetry",
    summary="Get the workloads telemetry.",
    description=TELEMETRY_DESCRIPTION,
    operation_id="get_workloads_telemetry",
    response_model=TelemetryResponse,
    response_model_exclude_none=True,
    responses={
        200: {"content": {"text/csv": {}}},
        **error_responses(400, 401, 403, 404, 500, 503),
    },
)
def get_workloads_telemetry(
    _slot: ExpensiveRead,
    request: Request,
    scope: ReadScope,
    conn: Db,
    now: Now,
    telemetryType: Annotated[TelemetryType, Query(description="Specifies the telemetry type.")],
    clusterId: Annotated[
        str | None,
        Query(description="Filter using the Universally Unique Identifier (UUID) of the cluster."),
    ] = None,
    nodepoolName: Annotated[str | None, Query(description="Filter using the nodepool.")] = None,
    departmentId: Annotated[
        str | None, Query(description="Filter using the department id.")
    ] = None,
    groupBy: Annotated[
        list[str] | None,
        Query(description="Group workloads by field (at most 2, comma-separated or repeated)."),
    ] = None,
    filterByPhases: Annotated[
        list[str] | None,
        Query(description="Filter workloads by specific phases. If not given, all phases."),
    ] = None,
) -> Response:
    group_by = parse_group_by(groupBy, telemetryType)
    terms = [
        *_cluster_filter(clusterId),
        *_text_filter("departmentId", "departmentId", departmentId),
        *_text_filter("nodepoolName", "nodepool", nodepoolName),
    ]
    query = TelemetryQuery(
        type=telemetryType,
        selection=WorkloadSelection(now=now, filters=tuple(terms), scope=scope),
        group_by=group_by,
        phases=parse_phases(filterByPhases),
    )
    body = telemetry_body(telemetryType, now, workload_telemetry(conn, query))
    if wants_csv(request):
        keys = [g.value for g in group_by]
        if telemetryType is TelemetryType.PENDING_TIME_DISTRIBUTION:
            keys.insert(0, "PendingTime")
        return telemetry_csv(body, keys)
    return json_response(body)
