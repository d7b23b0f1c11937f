"""Columns that several tables define alike, one function each.

A SQLAlchemy ``Column`` belongs to the one table it is given to, so shared definitions are
functions that build a fresh column per call. Widths follow what the values are: a UUID is 36
characters, a Kubernetes name at most 253, an organisation unit's id at most 64.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, Column, Float, ForeignKey, Integer, String

from gpufleet.store.types import UtcDateTime

UUID_WIDTH = 36
NAME_WIDTH = 253
UNIT_ID_WIDTH = 64


def _now() -> datetime:
    return datetime.now(UTC)


def serial_id() -> Column:
    """An autoincrementing primary key: BIGINT on PostgreSQL, SQLite's INTEGER rowid alias."""
    return Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )


def workload_id(*constraints: Any, **options: Any) -> Column:
    """A workload's id, without a foreign key unless one is given."""
    return Column("workload_id", String(UUID_WIDTH), *constraints, **options)


def workload_reference() -> Column:
    """A workload's id whose rows go with the workload (deleted with it)."""
    return workload_id(ForeignKey("workloads.id", ondelete="CASCADE"), nullable=False)


def cluster_id(**options: Any) -> Column:
    """The id (a UUID) of the cluster a row belongs to."""
    return Column("cluster_id", String(UUID_WIDTH), nullable=False, **options)


def org_unit_columns() -> list[Column]:
    """Id, name, cluster and times of a unit of the organisation (department, project, ...)."""
    return [
        Column("id", String(UNIT_ID_WIDTH), primary_key=True),
        Column("name", String(NAME_WIDTH), nullable=False),
        cluster_id(index=True),
        Column("updated_at", UtcDateTime, nullable=False),
        # When the unit was first reported (the reference's createdAt); a writer that does not
        # know it (an administrator's insert) records the time of writing.
        Column("created_at", UtcDateTime, nullable=False, default=_now),
    ]


def sample_columns(series_width: int) -> list[Column]:
    """Metric type, series, epoch-millisecond time and value of one sample (key: all but value).

    ``series`` tells apart the series of one metric type ("" for a total, ``gpu=0``, ...).
    """
    return [
        Column("metric_type", String(64), primary_key=True),
        Column("series", String(series_width), primary_key=True),
        Column("ts_ms", BigInteger, primary_key=True),
        Column("value", Float, nullable=False),
    ]


def usage_owner_columns() -> list[Column]:
    """Who a piece of usage belongs to, copied beside it so grouping needs no join."""
    return [
        cluster_id(),
        Column("department_id", String(UNIT_ID_WIDTH), nullable=False),
        Column("project_id", String(UNIT_ID_WIDTH), nullable=False),
        Column("submitter", String(NAME_WIDTH), nullable=False),
        Column("type", String(128), nullable=False),
    ]


def measured_utilisation_columns(*, nullable: bool) -> list[Column]:
    """Mean GPU utilisation in percent over an hour and the share of its samples that were idle."""
    return [
        Column("gpu_utilisation", Float, nullable=nullable),
        Column("idle_share", Float, nullable=nullable),
    ]
