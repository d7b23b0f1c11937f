"""clusters may have their usage accounted from a moment on

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06

A cluster whose usage before some moment was written into the ledger's rollups otherwise (the
living demo's 90 days of history) has the ledger account its workloads only from that moment:
the workloads it reports with phases begun earlier would count those hours a second time.
NULL, the default, accounts every cluster as before.
"""

import sqlalchemy as sa
from alembic import op

import gpufleet.store.types

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "clusters",
        sa.Column("usage_from", gpufleet.store.types.UtcDateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    # A plain DROP COLUMN (SQLite 3.35 and later): the column is in no index.
    op.drop_column("clusters", "usage_from")
