"""Quotas of projects and departments per node pool, from the scheduler's queues."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gpufleet.store.org_figures import UnitKind


@dataclass(frozen=True, slots=True)
class PoolQuota:
    """One unit's quota in one node pool: GPUs (devices), CPU (millicores), memory (MB)."""

    gpu_deserved: float
    gpu_limit: float | None = None
    gpu_over_quota_weight: float | None = None
    cpu_deserved: float | None = None
    cpu_limit: float | None = None
    cpu_over_quota_weight: float | None = None
    memory_deserved: float | None = None
    memory_limit: float | None = None
    memory_over_quota_weight: float | None = None


def gpu_quota(kind: UnitKind, unit_id: sa.ColumnElement[str]) -> sa.ColumnElement[float]:
    """The unit's GPU quota over all node pools; NULL when no queue gives it one."""
    return sa.null()


def quota_statement(kind: UnitKind, unit_ids: Collection[str] | None) -> sa.Select:
    """Quota per (unit, node pool): ``unit``, ``nodepool`` and the ``*_deserved`` columns."""
    return sa.select(
        sa.literal("").label("unit"),
        sa.literal("").label("nodepool"),
        sa.literal(0.0).label("gpu_deserved"),
        sa.literal(0.0).label("cpu_deserved"),
        sa.literal(0.0).label("memory_deserved"),
    ).where(sa.false())


def unit_quotas(
    conn: Connection, kind: UnitKind, unit_ids: Collection[str]
) -> dict[str, dict[str, PoolQuota]]:
    """The quotas of each unit that has any, by node pool name."""
    return {}
