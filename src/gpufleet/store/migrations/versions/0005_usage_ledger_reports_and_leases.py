"""usage ledger, consumption reports and leases

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04

The usage ledger keeps each workload's timeline of held resources and hourly rollups of
GPU, CPU, memory and pending time; reports are built from the rollups by one replica at a time,
which holds a lease.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import gpufleet.store.types

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=64), nullable=False),
        sa.Column("expires_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_leases")),
    )
    op.create_table(
        "reports",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=253), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("start_at", gpufleet.store.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("end_at", gpufleet.store.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("group_by", sa.String(length=32), nullable=True),
        sa.Column(
            "filter_by",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "scope",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", gpufleet.store.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=253), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_message", sa.Text(), nullable=True),
        sa.Column(
            "status_updated_at", gpufleet.store.types.UtcDateTime(timezone=True), nullable=False
        ),
        sa.Column("file", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reports")),
    )
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_reports_created_at_id"), ["created_at", "id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_reports_status_created_at"), ["status", "created_at"], unique=False
        )

    op.create_table(
        "usage_hourly",
        sa.Column("workload_id", sa.String(length=36), nullable=False),
        sa.Column("hour_ms", sa.BigInteger(), nullable=False),
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
        sa.PrimaryKeyConstraint("workload_id", "hour_ms", "nodepool", name=op.f("pk_usage_hourly")),
    )
    with op.batch_alter_table("usage_hourly", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_usage_hourly_hour_ms_project_id"),
            ["hour_ms", "project_id"],
            unique=False,
        )

    op.create_table(
        "usage_open",
        sa.Column("workload_id", sa.String(length=36), nullable=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("workload_id", name=op.f("pk_usage_open")),
    )
    op.create_table(
        "usage_states",
        sa.Column("workload_id", sa.String(length=36), nullable=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.Column("until_ms", sa.BigInteger(), nullable=False),
        sa.Column("cluster_id", sa.String(length=36), nullable=False),
        sa.Column("department_id", sa.String(length=64), nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("submitter", sa.String(length=253), nullable=False),
        sa.Column("type", sa.String(length=128), nullable=False),
        sa.Column("nodepools", sa.Text(), nullable=False),
        sa.Column("gpu", sa.Float(), nullable=False),
        sa.Column("cpu_cores", sa.Float(), nullable=False),
        sa.Column("memory_gib", sa.Float(), nullable=False),
        sa.Column("pending", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("workload_id", "at_ms", name=op.f("pk_usage_states")),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "usage_utilisation",
        sa.Column("workload_id", sa.String(length=36), nullable=False),
        sa.Column("hour_ms", sa.BigInteger(), nullable=False),
        sa.Column("gpu_utilisation", sa.Float(), nullable=False),
        sa.Column("idle_share", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("workload_id", "hour_ms", name=op.f("pk_usage_utilisation")),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("usage_utilisation")
    op.drop_table("usage_states")
    op.drop_table("usage_open")
    with op.batch_alter_table("usage_hourly", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_usage_hourly_hour_ms_project_id"))

    op.drop_table("usage_hourly")
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reports_status_created_at"))
        batch_op.drop_index(batch_op.f("ix_reports_created_at_id"))

    op.drop_table("reports")
    op.drop_table("leases")
