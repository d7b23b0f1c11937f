"""workload rows and sort indexes take half the bytes

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05

Each of the twenty-odd sort indexes repeated the 36-character id as its tiebreak; they hold
``id_key`` instead, the same id as 16 bytes, which orders as the text does (so pages and ties
read exactly as before). The nested document, most of a row, is stored deflated (see
``store.workload_documents``). Existing rows are converted in place, in batches; the space
the old values held is returned to the file system by ``VACUUM`` (SQLite) or ``VACUUM FULL``
(PostgreSQL), which cannot run inside the migration's transaction.
"""

import sqlalchemy as sa
from alembic import op

from gpufleet.store.types import Json, UuidKey
from gpufleet.store.workload_documents import document_fields, pack_document

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_SORTED = (
    "type",
    "name",
    "cluster_id",
    "project_id",
    "project_name",
    "department_id",
    "department_name",
    "created_at",
    "submitted_by",
    "phase",
    "completed_at",
    "nodepool",
    "distributed_framework",
    "allocated_gpu",
    "idle_gpus",
    "idle_allocated_gpus",
    "phase_updated_at",
    "category",
    "priority",
    "priority_class_name",
    "guaranteed_runtime_ends_at",
    "ai_application_id",
    "ai_application_name",
)
# (phase, column of its stored seconds, name of its anchor index)
_TIMED = (
    ("Pending", "pending_seconds_before", "ix_workloads_anchor_pending"),
    ("Running", "running_seconds_before", "ix_workloads_anchor_running"),
)
_BATCH = 2000


def _partial(condition: str) -> dict[str, sa.TextClause]:
    return {"sqlite_where": sa.text(condition), "postgresql_where": sa.text(condition)}


def _indexes(tiebreak: str) -> list[tuple[str, list[str], dict[str, sa.TextClause]]]:
    """Every index of the workloads table that holds the tiebreak: name, columns, condition."""
    suffix = "_key" if tiebreak == "id_key" else ""
    indexes = [
        (f"ix_workloads_{column}_id{suffix}_deleted_at", [column, tiebreak, "deleted_at"], {})
        for column in _SORTED
    ]
    for phase, column, anchor in _TIMED:
        indexes.append(
            (
                anchor,
                ["seconds_anchor", tiebreak, "deleted_at", "phase_updated_at"],
                _partial(f"phase = '{phase}'"),
            )
        )
        indexes.append(
            (
                f"ix_workloads_{column}_id{suffix}_deleted_at",
                [column, tiebreak, "deleted_at"],
                _partial(f"phase != '{phase}'"),
            )
        )
    indexes.append(
        (
            f"ix_workloads_deleted_at_{tiebreak}",
            ["deleted_at", tiebreak],
            _partial("deleted_at IS NOT NULL"),
        )
    )
    return indexes


def _convert(source: sa.Column, target: sa.Column, convert, key: sa.Column | None) -> None:
    """Fill ``target`` from ``source`` (and ``key`` from the id) row by row, in batches by id."""
    bind = op.get_bind()
    row_id = sa.column("id", sa.String)
    table = sa.table("workloads", row_id, source, target, *([key] if key is not None else []))
    values = {target.name: sa.bindparam("converted", type_=target.type)}
    if key is not None:
        values[key.name] = sa.bindparam("key", type_=key.type)
    update = sa.update(table).where(table.c.id == sa.bindparam("row_id")).values(values)
    last = ""
    while True:
        rows = bind.execute(
            sa.select(table.c.id, table.c[source.name])
            .where(table.c.id > last)
            .order_by(table.c.id)
            .limit(_BATCH)
        ).all()
        if not rows:
            return
        bind.execute(
            update,
            [
                {"row_id": row_id, "converted": convert(value), "key": row_id}
                for row_id, value in rows
            ],
        )
        last = rows[-1][0]


def _swap_document(new_type, convert, *, with_key: bool) -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    # SQLite adds a NOT NULL column only with a default; the rows are filled at once.
    filler = {"server_default": sa.text("x''")} if sqlite else {}
    if with_key:
        op.add_column("workloads", sa.Column("id_key", UuidKey(), nullable=not sqlite, **filler))
    if sqlite and new_type is Json:
        filler = {"server_default": sa.text("'{}'")}
    op.add_column("workloads", sa.Column("document_new", new_type, nullable=not sqlite, **filler))
    _convert(
        sa.column("document", Json if new_type is not Json else sa.LargeBinary),
        sa.column("document_new", new_type),
        convert,
        sa.column("id_key", UuidKey()) if with_key else None,
    )
    if not sqlite:
        op.alter_column("workloads", "document_new", nullable=False)
        if with_key:
            op.alter_column("workloads", "id_key", nullable=False)
    # Plain SQL on both: SQLite drops and renames a column in place (no table rebuild).
    op.execute("ALTER TABLE workloads DROP COLUMN document")
    op.execute("ALTER TABLE workloads RENAME COLUMN document_new TO document")


# Counted live workloads; a covering walk of any sort index (they all end in deleted_at) does
# that as well, so the table's ids are indexed once by the primary key, once by the key.
_LIVE_IDS = ("ix_workloads_id", ["id"], _partial("deleted_at IS NULL"))


def upgrade() -> None:
    for name, _, _ in [*_indexes("id"), _LIVE_IDS]:
        op.drop_index(name, "workloads")
    _swap_document(sa.LargeBinary(), pack_document, with_key=True)
    for name, columns, condition in _indexes("id_key"):
        op.create_index(name, "workloads", columns, **condition)
    # Pages found through a sort index join their rows back by the key.
    op.create_index("ix_workloads_id_key", "workloads", ["id_key"], unique=True)


def downgrade() -> None:
    for name, _, _ in [*_indexes("id_key"), ("ix_workloads_id_key", None, None)]:
        op.drop_index(name, "workloads")
    name, columns, condition = _LIVE_IDS
    op.create_index(name, "workloads", columns, **condition)
    _swap_document(Json, document_fields, with_key=False)
    op.execute("ALTER TABLE workloads DROP COLUMN id_key")
    for name, columns, condition in _indexes("id"):
        op.create_index(name, "workloads", columns, **condition)
