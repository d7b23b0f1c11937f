"""usage rollups keyed by hour first

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05

A window of hours becomes one range of the rollups' primary key (hour, workload, node pool);
on SQLite the table has no rowid, so the rows lie in that order and a grouped answer reads them
sequentially instead of looking each one up through a secondary index. The rows are copied.
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_MEASURES = (
    "cluster_id",
    "department_id",
    "project_id",
    "submitter",
    "type",
    "gpu_seconds",
    "cpu_core_seconds",
    "memory_gib_seconds",
    "pending_seconds",
    "gpu_utilisation",
    "idle_share",
)


def _create(name: str, key: tuple[str, ...], with_rowid: bool) -> None:
    op.create_table(
        name,
        sa.Column("hour_ms", sa.BigInteger(), nullable=False),
        sa.Column("workload_id", sa.String(length=36), nullable=False),
        sa.Column("nodepool", sa.String(length=253), nullable=False),
        sa.Column("cluster_id", sa.String(length=36), nullable=False),
        sa.Column("department_id", sa.String(length=64), nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("submitter", sa.String(length=253), nullable=False),
        sa.Column("type", sa.String(length=128), nullable=False),
        sa.Column("gpu_seconds", sa.Float(), nullable=False),
        sa.Column("cpu_core_seconds", sa.Float(), nullable=False),
        sa.Column("memory_gib_seconds", sa.Float(), nullable=False),
        sa.Column("pending_seconds", sa.Float(), nullable=False),
        sa.Column("gpu_utilisation", sa.Float(), nullable=True),
        sa.Column("idle_share", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint(*key, name=op.f(f"pk_{name}")),
        sqlite_with_rowid=with_rowid,
    )


def _move(key: tuple[str, ...], with_rowid: bool) -> None:
    _create("usage_hourly_moved", key, with_rowid)
    columns = ", ".join(("hour_ms", "workload_id", "nodepool", *_MEASURES))
    op.execute(f"INSERT INTO usage_hourly_moved ({columns}) SELECT {columns} FROM usage_hourly")
    op.drop_table("usage_hourly")
    op.rename_table("usage_hourly_moved", "usage_hourly")
    if op.get_bind().dialect.name == "postgresql":
        # The primary key keeps the name it was created with; give it the table's.
        op.execute(
            "ALTER TABLE usage_hourly RENAME CONSTRAINT pk_usage_hourly_moved TO pk_usage_hourly"
        )


def upgrade() -> None:
    _move(("hour_ms", "workload_id", "nodepool"), with_rowid=False)


def downgrade() -> None:
    _move(("workload_id", "hour_ms", "nodepool"), with_rowid=True)
    op.create_index(
        op.f("ix_usage_hourly_hour_ms_project_id"),
        "usage_hourly",
        ["hour_ms", "project_id"],
        unique=False,
    )
