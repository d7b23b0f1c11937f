"""SQLite joins a page's rows back by their rowid; the index of the id's key goes

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06

A page found along a sort index (a deep offset, a merge of walks, a selection in parts) was
joined back to its rows by the id's 16-byte key, through a unique index of it: a lookup in
that index, then the row by its rowid. Every index entry already holds the rowid, so SQLite
now joins by it, one lookup, and the index of the key (about 25 bytes a workload) goes.
PostgreSQL has no rowid and keeps its index.
"""

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

_INDEX = "ix_workloads_id_key"


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.drop_index(_INDEX, "workloads")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.create_index(_INDEX, "workloads", ["id_key"], unique=True)
