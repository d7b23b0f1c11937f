"""cluster liveness, creation times of departments and projects, inventory samples

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04

A cluster's connection state is read from when its agent last reported. Departments and
projects gain the time they were first reported (existing rows take their last update, the
earliest time the store knows of). Inventory samples keep allocation, capacity and quota of
clusters, projects and departments over time.
"""

import sqlalchemy as sa
from alembic import op

import gpufleet.store.types

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_UNIT_TABLES = ("departments", "projects")


def upgrade() -> None:
    with op.batch_alter_table("clusters", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "last_report_at", gpufleet.store.types.UtcDateTime(timezone=True), nullable=True
            )
        )
    for table in _UNIT_TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column(
                    "created_at", gpufleet.store.types.UtcDateTime(timezone=True), nullable=True
                )
            )
        op.execute(f"UPDATE {table} SET created_at = updated_at")
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(
                "created_at",
                existing_type=gpufleet.store.types.UtcDateTime(timezone=True),
                nullable=False,
            )
    op.create_table(
        "inventory_samples",
        sa.Column("unit_type", sa.String(length=16), nullable=False),
        sa.Column("unit_id", sa.String(length=64), nullable=False),
        sa.Column("metric_type", sa.String(length=64), nullable=False),
        sa.Column("series", sa.String(length=300), nullable=False),
        sa.Column("ts_ms", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint(
            "unit_type",
            "unit_id",
            "metric_type",
            "series",
            "ts_ms",
            name=op.f("pk_inventory_samples"),
        ),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("inventory_samples")
    for table in _UNIT_TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("created_at")
    with op.batch_alter_table("clusters", schema=None) as batch_op:
        batch_op.drop_column("last_report_at")
