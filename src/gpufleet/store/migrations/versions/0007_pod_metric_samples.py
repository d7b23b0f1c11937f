"""pod metric samples

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04

The embedded store of per-pod samples behind the pod metrics endpoint, laid out as
metric_samples but keyed by the pod's uid.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pod_metric_samples",
        sa.Column("pod_id", sa.String(length=64), nullable=False),
        sa.Column("metric_type", sa.String(length=64), nullable=False),
        sa.Column("series", sa.String(length=128), nullable=False),
        sa.Column("ts_ms", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint(
            "pod_id", "metric_type", "series", "ts_ms", name=op.f("pk_pod_metric_samples")
        ),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("pod_metric_samples")
