"""Wire shapes of the cluster ingest API and the parsing of one ingest request.

A batch is ``{workloads, deletedIds, deletions, fullSync}``; each workload is the reference
``WorkloadDetailed`` plus ``observedAt`` (when the agent saw it) and its ``pods``; a deletion
says when the agent saw the workload go (``deletedIds`` are deleted at the request's time).
Fields the server maintains itself (``phaseUpdatedAt``, ``completedAt``, the time totals …) may
be sent but are optional. Parsing checks every item before anything is written and names the
first bad one.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from gpufleet.core.errors import Invalid, TooLarge
from gpufleet.core.workload_fields import (
    NODEPOOL_NAME_RULE,
    WORKLOAD_CATALOGUE,
    FieldKind,
    is_nodepool_name,
)
from gpufleet.schemas.amounts import amount_problem, resources_problem
from gpufleet.schemas.pods import IngestPod
from gpufleet.schemas.storable import (
    STRINGS_CHECKED,
    StorableModel,
    Unstorable,
    dotted,
    load_json,
)
from gpufleet.schemas.workloads import Condition, WorkloadDetailed

# Integers are stored in 32-bit columns; larger values are refused here, not by the database.
_INT32 = 2**31 - 1
_STORED = tuple(f for f in WORKLOAD_CATALOGUE if f.stored_scalar)
# The longest string each scalar column holds.
_MAX_LENGTHS = {f.name: f.max_length for f in _STORED if f.max_length}

# Node pool names a workload asks for or runs in: never empty, as long as the columns hold.
_POOL_LISTS = ("requestedNodePools", "currentNodePools")

# What names a workload and its project: Kubernetes names nothing with an empty name, and an
# empty project id would be a project no one can ask for.
_NAMED = ("name", "projectId", "projectName")
# The amounts of a workload: its resources, and counts that are never negative.
_RESOURCES = ("workloadRequestedResources", "podsRequestedResources", "allocatedResources")
_COUNTS = (
    "runningPods", "idleAllocatedGpus", "idleGpus", "totalPendingTimeSeconds",
    "totalRunningTimeSeconds",
)  # fmt: skip
_POD_COUNTS = ("number", "min", "max", "parallelism", "completions")

# How far ahead of the server's clock an agent's observedAt may be.
MAX_CLOCK_SKEW = timedelta(minutes=10)
_INT_FIELDS = tuple(f.name for f in _STORED if f.kind is FieldKind.INTEGER)
_NAIVE_CHECKED = tuple(sorted(f.name for f in _STORED if f.kind is FieldKind.DATE))


class IngestWorkload(StorableModel, WorkloadDetailed):
    """One reported workload: the reference shape, server-maintained fields optional."""

    model_config = ConfigDict(extra="forbid", use_enum_values=True, allow_inf_nan=False)

    observedAt: AwareDatetime
    pods: list[IngestPod] = Field(default_factory=list, max_length=10_000)
    phaseUpdatedAt: datetime | None = None
    k8sPhaseUpdatedAt: datetime | None = None
    updatedAt: datetime | None = None
    deletedAt: datetime | None = None
    priority: int | None = None
    conditions: list[Condition] = Field(default_factory=list)

    @model_validator(mode="after")
    def _storable(self) -> IngestWorkload:
        values = self.__dict__  # every field is an attribute of its wire name
        for field in _NAIVE_CHECKED:
            value = values[field]
            if value is not None and value.tzinfo is None:
                raise ValueError(f"{field} must carry a time zone (e.g. a trailing Z)")
        for field in _INT_FIELDS:
            value = values[field]
            if value is not None and abs(value) > _INT32:
                raise ValueError(f"{field} is out of range")
        for field in _NAMED:
            if not values[field]:
                raise ValueError(f"{field} must not be empty")
        for field, limit in _MAX_LENGTHS.items():
            value = values[field]
            if isinstance(value, str) and len(value) > limit:
                raise ValueError(f"{field} is longer than {limit} characters")
        for field in _POOL_LISTS:
            for index, name in enumerate(values[field] or ()):
                if not is_nodepool_name(name):
                    raise ValueError(f"{field}.{index} {NODEPOOL_NAME_RULE}")
        if problem := _amounts_problem(self):
            raise ValueError(problem)
        if len(self.pods) > 1 and len({pod.uid for pod in self.pods}) != len(self.pods):
            raise ValueError("pods must have distinct uids")
        return self


def _amounts_problem(workload: IngestWorkload) -> str | None:
    """The first amount of the workload or its pods out of bounds (``schemas.amounts``)."""
    for field in _RESOURCES:
        if problem := resources_problem(field, getattr(workload, field)):
            return problem
    for field in _COUNTS:
        if problem := amount_problem(field, getattr(workload, field)):
            return problem
    counts = workload.requestedPods
    for field in _POD_COUNTS if counts is not None else ():
        if problem := amount_problem(f"requestedPods.{field}", getattr(counts, field)):
            return problem
    for index, pod in enumerate(workload.pods):
        for field in ("requestedResources", "allocatedResources"):
            if problem := resources_problem(f"pods.{index}.{field}", getattr(pod, field)):
                return problem
    return None


class IngestDeletion(StorableModel):
    """A workload the agent saw deleted, and when."""

    model_config = ConfigDict(extra="forbid")

    id: UUID
    observedAt: AwareDatetime = Field(
        description="When the agent saw the workload deleted; a time ahead of the server's "
        "clock is taken as the server's time."
    )


class IngestBatch(StorableModel):
    model_config = ConfigDict(extra="forbid")

    workloads: list[IngestWorkload] = Field(default_factory=list)
    deletedIds: list[UUID] = Field(
        default_factory=list, description="Workloads deleted at the time of the request."
    )
    deletions: list[IngestDeletion] = Field(
        default_factory=list, description="Workloads deleted, each at the time it was observed."
    )
    fullSync: bool = False
    clusterName: str | None = Field(None, min_length=1, max_length=253)


class IngestRefusal(BaseModel):
    """An item of the batch that names something of another cluster and was not applied."""

    index: int = Field(
        description="Position of the item in `workloads`, `deletedIds` or `deletions`."
    )
    field: str = Field(examples=["workloads.3.projectId"])
    id: str = Field(description="The workload id of the item.")
    message: str


class IngestResult(BaseModel):
    accepted: int
    stale: int
    deleted: int
    refused: list[IngestRefusal] = Field(default_factory=list)


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    location = ".".join(str(part) for part in first.get("loc", ()))
    message = first.get("msg", "is invalid")
    return f"field {location!r}: {message}" if location else message


def _load(raw: bytes) -> Any:
    """The parsed body; a value the store cannot hold inside a workload names its index, so
    the agent can drop that one item and send the rest."""
    try:
        return load_json(raw)
    except Unstorable as exc:
        path = exc.path
        if len(path) >= 2 and path[0] == "workloads" and isinstance(path[1], int):
            where = f"field {dotted(path[2:])!r}: " if len(path) > 2 else ""
            raise Invalid(f"Invalid workload at index {path[1]}: {where}{exc.problem}") from None
        raise


def parse_ingest_batch(
    raw: bytes, *, cluster_id: str, max_items: int, now: datetime
) -> IngestBatch:
    """Parse and check a whole ingest request body, or raise ``Invalid`` or ``TooLarge``.

    An ``observedAt`` further ahead of ``now`` than ``MAX_CLOCK_SKEW`` is refused: stored, it
    would make every genuine later report look stale.
    """
    latest = now + MAX_CLOCK_SKEW
    body = _load(raw)
    if not isinstance(body, dict):
        raise Invalid("Request body must be a JSON object.")
    items = body.get("workloads", [])
    if not isinstance(items, list):
        raise Invalid("Invalid request body field 'workloads': must be a list.")
    if len(items) > max_items:
        raise TooLarge(
            f"Batch of {len(items)} workloads exceeds the limit of {max_items} per request."
        )
    parsed: list[IngestWorkload] = []
    for index, item in enumerate(items):
        try:
            workload = IngestWorkload.model_validate(item, context=STRINGS_CHECKED)
        except ValidationError as exc:
            raise Invalid(f"Invalid workload at index {index}: {_describe(exc)}") from None
        if workload.observedAt > latest:
            raise Invalid(
                f"Invalid workload at index {index}: field 'observedAt' is more than "
                f"{MAX_CLOCK_SKEW.total_seconds():.0f} seconds in the future.",
            )
        if str(workload.clusterId) != cluster_id:
            raise Invalid(
                f"Invalid workload at index {index}: clusterId {workload.clusterId} differs "
                f"from the cluster in the path ({cluster_id}).",
            )
        parsed.append(workload)
    try:
        batch = IngestBatch.model_validate({**body, "workloads": []})
    except ValidationError as exc:
        raise Invalid(f"Invalid request body {_describe(exc)}") from None
    batch.workloads = parsed
    for index, deletion in enumerate(batch.deletions):
        if deletion.observedAt > latest:
            raise Invalid(
                f"Invalid request body field 'deletions.{index}.observedAt': more than "
                f"{MAX_CLOCK_SKEW.total_seconds():.0f} seconds in the future."
            )
        # Within the allowed skew: a deletion is never stamped later than the server's now.
        deletion.observedAt = min(deletion.observedAt, now)
    reported = {w.id for w in parsed}
    for field, ids in (
        ("deletedIds", batch.deletedIds),
        ("deletions", [d.id for d in batch.deletions]),
    ):
        both = reported.intersection(ids)
        if both:
            raise Invalid(
                f"Workload {sorted(map(str, both))[0]} is both reported and listed in {field}."
            )
    return batch


def deletion_times(batch: IngestBatch, now: datetime) -> dict[str, datetime]:
    """Each deleted workload id with the time of its deletion: ``deletedIds`` at ``now``, a
    ``deletions`` entry at its ``observedAt``; an id listed twice at its earliest time."""
    times: dict[str, datetime] = {}
    listed = [(str(i), now) for i in batch.deletedIds]
    listed.extend((str(d.id), d.observedAt) for d in batch.deletions)
    for workload_id, moment in listed:
        known = times.get(workload_id)
        if known is None or moment < known:
            times[workload_id] = moment
    return times
