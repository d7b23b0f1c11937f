"""Wire-shaped workload documents for tests, and a way to put them in the store.

``workload(**overrides)`` returns a dict in the reference's Workload shape with sensible
defaults (times as aware datetimes, as ``store.workloads.insert_workloads`` expects); any key
can be overridden, and ``None`` overrides are kept so nullable fields can be exercised.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine

from gpufleet.store.workload_documents import SecondsBefore
from gpufleet.store.workloads import insert_workloads

BASE_TIME = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
CLUSTER_ID = "d73a738f-fab3-430a-8fa3-5241493d7128"
_sequence = itertools.count(1)


def workload(**overrides: Any) -> dict[str, Any]:
    """One workload document; ``overrides`` replace (or add) top-level fields."""
    n = next(_sequence)
    created = BASE_TIME + timedelta(minutes=n)
    gpus = overrides.pop("gpus", 1.0)
    document: dict[str, Any] = {
        "tenantId": 1,
        "runningPods": 1,
        "phaseUpdatedAt": created + timedelta(seconds=30),
        "k8sPhaseUpdatedAt": created + timedelta(seconds=30),
        "updatedAt": created + timedelta(seconds=30),
        "source": "CLI",
        "deletedAt": None,
        "type": "Training",
        "name": f"workload-{n}",
        "id": str(uuid.uuid4()),
        "priority": 50,
        "priorityClassName": "train",
        "submittedBy": "alice@example.com",
        "clusterId": CLUSTER_ID,
        "projectName": "vision",
        "projectId": "10",
        "departmentName": "research",
        "departmentId": "2",
        "namespace": "runai-vision",
        "createdAt": created,
        "workloadRequestedResources": {"gpu": {"request": gpus}},
        "allocatedResources": {"gpu": gpus},
        "phase": "Running",
        "conditions": [],
        "k8sPhase": "Running",
        "currentNodePools": ["default"],
        "category": "Train",
        "idleGpus": 0,
        "idleAllocatedGpus": 0.0,
    }
    document.update(overrides)
    return document


def insert(
    engine: Engine,
    items: Iterable[Mapping[str, Any]],
    seconds_before: Mapping[str, SecondsBefore] | None = None,
) -> list[Mapping[str, Any]]:
    """Store ``items`` in one transaction and return them (as a list) for convenience.

    ``seconds_before`` gives, by id, the time workloads spent pending and running before.
    """
    items = list(items)
    with engine.begin() as conn:
        insert_workloads(conn, items, seconds_before)
    return items
