"""the ledger's live set and the workloads' node pools have no rowid on SQLite

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05

Both tables are a primary key and little else. With a rowid SQLite stores each row twice, in
the table and again in the primary key's own index (about 60 bytes a workload between the
two); without one the rows lie in the primary key itself. The rows are copied; PostgreSQL has
no rowid and is left as it is.
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def _usage_open(name: str, with_rowid: bool) -> None:
    op.create_table(
        name,
        sa.Column("workload_id", sa.String(length=36), nullable=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("workload_id", name="pk_usage_open"),
        sqlite_with_rowid=with_rowid,
    )


def _workload_nodepools(name: str, with_rowid: bool) -> None:
    op.create_table(
        name,
        sa.Column("workload_id", sa.String(length=36), nullable=False),
        sa.Column("nodepool", sa.String(length=253), nullable=False),
        sa.ForeignKeyConstraint(
            ["workload_id"],
            ["workloads.id"],
            name="fk_workload_nodepools_workload_id_workloads",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workload_id", "nodepool", name="pk_workload_nodepools"),
        sqlite_with_rowid=with_rowid,
    )


def _rebuild(with_rowid: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table, create, columns in (
        ("usage_open", _usage_open, "workload_id, at_ms"),
        ("workload_nodepools", _workload_nodepools, "workload_id, nodepool"),
    ):
        create(f"{table}_moved", with_rowid)
        op.execute(
            f"INSERT INTO {table}_moved ({columns}) SELECT {columns} FROM {table} "
            f"ORDER BY {columns}"
        )
        op.drop_table(table)
        op.rename_table(f"{table}_moved", table)


def upgrade() -> None:
    _rebuild(with_rowid=False)


def downgrade() -> None:
    _rebuild(with_rowid=True)
