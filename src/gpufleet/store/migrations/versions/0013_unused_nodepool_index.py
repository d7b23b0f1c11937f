"""the node pool index of workload_nodepools goes: no plan walks it

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05

Filters, telemetry and the organisation's figures reach a workload's node pools by the
workload (the primary key, workload id first); no statement of the server starts from the node
pool, so its index only cost bytes and writes (see test_every_index_of_the_workloads_serves_a_plan).
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_INDEX = "ix_workload_nodepools_nodepool_workload_id"


def upgrade() -> None:
    op.drop_index(_INDEX, "workload_nodepools")


def downgrade() -> None:
    op.create_index(_INDEX, "workload_nodepools", ["nodepool", "workload_id"])
