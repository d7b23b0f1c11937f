"""The mapping between a stored workload row and its wire document.

``workload_row`` splits a wire-shaped dict into indexed columns plus the nested ``document``;
``workload_wire`` joins a row back into the wire shape, in the reference's field order, without
pydantic on the way (listing 500 workloads is 500 dict builds, not 500 model validations).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson

from gpufleet.core.times import format_rfc3339, truncate_to_ms
from gpufleet.query.fields import SEARCH_FIELDS

# Scalar wire fields and the column each lives in.
SCALAR_COLUMNS: dict[str, str] = {
    "tenantId": "tenant_id",
    "runningPods": "running_pods",
    "phaseUpdatedAt": "phase_updated_at",
    "k8sPhaseUpdatedAt": "k8s_phase_updated_at",
    "updatedAt": "updated_at",
    "source": "source",
    "deletedAt": "deleted_at",
    "type": "type",
    "name": "name",
    "id": "id",
    "priority": "priority",
    "priorityClassName": "priority_class_name",
    "submittedBy": "submitted_by",
    "clusterId": "cluster_id",
    "projectName": "project_name",
    "projectId": "project_id",
    "departmentName": "department_name",
    "departmentId": "department_id",
    "namespace": "namespace",
    "createdAt": "created_at",
    "phase": "phase",
    "phaseMessage": "phase_message",
    "k8sPhase": "k8s_phase",
    "completedAt": "completed_at",
    "distributedFramework": "distributed_framework",
    "idleGpus": "idle_gpus",
    "idleAllocatedGpus": "idle_allocated_gpus",
    "category": "category",
    "guaranteedRuntimeEndsAt": "guaranteed_runtime_ends_at",
    "aiApplicationId": "ai_application_id",
    "aiApplicationName": "ai_application_name",
}

# Every field of WorkloadDetailed in the reference's order; None marks a document field.
WIRE_ORDER: tuple[str, ...] = (
    "tenantId",
    "runningPods",
    "phaseUpdatedAt",
    "k8sPhaseUpdatedAt",
    "updatedAt",
    "source",
    "deletedAt",
    "type",
    "name",
    "id",
    "priority",
    "priorityClassName",
    "submittedBy",
    "clusterId",
    "projectName",
    "projectId",
    "departmentName",
    "departmentId",
    "namespace",
    "createdAt",
    "workloadRequestedResources",
    "podsRequestedResources",
    "allocatedResources",
    "actionsSupport",
    "phase",
    "conditions",
    "phaseMessage",
    "k8sPhase",
    "requestedPods",
    "requestedNodePools",
    "currentNodePools",
    "completedAt",
    "images",
    "urls",
    "datasources",
    "environments",
    "externalConnections",
    "distributedFramework",
    "additionalFields",
    "preemptible",
    "environmentVariables",
    "command",
    "arguments",
    "phaseReason",
    "idleGpus",
    "idleAllocatedGpus",
    "totalPendingTimeSeconds",
    "totalRunningTimeSeconds",
    "category",
    "guaranteedRuntimeEndsAt",
    "aiApplicationId",
    "aiApplicationName",
    "sourceApi",
    "topology",
)
REQUIRED_NULLABLE = frozenset({"deletedAt", "priority"})
DETAIL_ONLY = ("pendingSchedulingMessages",)
TIME_FIELDS = frozenset(
    {
        "phaseUpdatedAt",
        "k8sPhaseUpdatedAt",
        "updatedAt",
        "deletedAt",
        "createdAt",
        "completedAt",
        "guaranteedRuntimeEndsAt",
    }
)
COMPUTED_FIELDS = frozenset({"totalPendingTimeSeconds", "totalRunningTimeSeconds"})
DOCUMENT_FIELDS = (
    tuple(name for name in WIRE_ORDER if name not in SCALAR_COLUMNS and name not in COMPUTED_FIELDS)
    + DETAIL_ONLY
)
_SEARCH_SEPARATOR = "\x1f"
_SCALAR_ORDER = tuple((name, SCALAR_COLUMNS[name]) for name in WIRE_ORDER if name in SCALAR_COLUMNS)


def search_text(values: Mapping[str, Any]) -> str:
    parts = (str(values.get(name) or "") for name in SEARCH_FIELDS)
    return _SEARCH_SEPARATOR.join(parts).lower()


def workload_row(
    wire: Mapping[str, Any],
    *,
    pending_seconds_before: int = 0,
    running_seconds_before: int = 0,
) -> dict[str, Any]:
    """Column values for one workload given in wire shape (times as aware datetimes)."""
    row: dict[str, Any] = {}
    for field, column in SCALAR_COLUMNS.items():
        value = wire.get(field)
        if field in TIME_FIELDS and value is not None:
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
    row["pending_seconds_before"] = pending_seconds_before
    row["running_seconds_before"] = running_seconds_before
    row["search_text"] = search_text(wire)
    row["document"] = {
        name: _jsonable(wire[name]) for name in DOCUMENT_FIELDS if wire.get(name) is not None
    }
    # conditions is required on the wire; keeping it in every document lets listings splice
    # the stored document in without looking inside it.
    row["document"].setdefault("conditions", [])
    return row


def workload_wire(
    row: Mapping[str, Any],
    *,
    total_pending_seconds: int,
    total_running_seconds: int,
    detailed: bool = False,
) -> dict[str, Any]:
    """The wire document for one stored row; the time-dependent totals come from the query."""
    document = row["document"]
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
        wire["pendingSchedulingMessages"] = document.get("pendingSchedulingMessages")
    return wire


def workload_listing_json(
    row: Mapping[str, Any], *, total_pending_seconds: int, total_running_seconds: int
) -> bytes:
    """The wire JSON of one workload in a listing, as bytes.

    The scalar columns are serialised here; ``row["document_text"]`` (the stored nested
    document without detail-only fields, as text from the database) is spliced in without being
    decoded, which is most of the cost of a 500-item page otherwise.
    """
    scalars: dict[str, Any] = {}
    for field, column in _SCALAR_ORDER:
        value = row[column]
        if value is None and field not in REQUIRED_NULLABLE:
            continue
        scalars[field] = format_rfc3339(value) if isinstance(value, datetime) else value
    scalars["totalPendingTimeSeconds"] = total_pending_seconds
    scalars["totalRunningTimeSeconds"] = total_running_seconds
    head = orjson.dumps(scalars)
    document = row["document_text"].strip()
    if document in ("{}", ""):
        return head
    return head[:-1] + b"," + document[1:].encode()


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_rfc3339(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, UUID):
        return str(value)
    return value
