"""workloads keep the first node pool they ask for

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06

A project's and a department's ``requested`` GPUs are counted per node pool; a workload not
yet running in any pool (pending) is counted in the first pool it asks for, which only its
packed document held. The new column holds it; live workloads take it from their documents
here, and every report writes it from then on. Deleted workloads ask for nothing and are left
NULL.
"""

import sqlalchemy as sa
from alembic import op

from gpufleet.store.workload_documents import document_fields, first_requested_pool

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

_BATCH = 1000


def upgrade() -> None:
    op.add_column("workloads", sa.Column("requested_nodepool", sa.String(length=253)))
    conn = op.get_bind()
    table = sa.table(
        "workloads",
        sa.column("id", sa.String),
        sa.column("document", sa.LargeBinary),
        sa.column("deleted_at"),
        sa.column("requested_nodepool", sa.String),
    )
    update = (
        table.update()
        .where(table.c.id == sa.bindparam("workload_id"))
        .values(requested_nodepool=sa.bindparam("pool"))
    )
    after = ""
    while True:
        rows = conn.execute(
            sa.select(table.c.id, table.c.document)
            .where(table.c.deleted_at.is_(None), table.c.id > after)
            .order_by(table.c.id)
            .limit(_BATCH)
        ).all()
        if not rows:
            return
        asked = [
            {"workload_id": row.id, "pool": pool}
            for row in rows
            if (pool := first_requested_pool(document_fields(row.document)))
        ]
        if asked:
            conn.execute(update, asked)
        after = rows[-1].id


def downgrade() -> None:
    # A plain DROP COLUMN (SQLite 3.35 and later): the column is in no index.
    op.drop_column("workloads", "requested_nodepool")
