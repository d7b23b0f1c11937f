"""workload events; pods as Run:ai pods; phase messages always present

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04

Pods were keyed by (workload, uid) and replaced wholesale; they become rows keyed by their uid
with the columns the pods endpoints filter and sort on, and are soft-deleted when no longer
reported. Existing pods are copied over (times taken from their workload). Phase transitions
stored without a message get an empty one: the reference's PhaseUpdate requires it.
"""

import sqlalchemy as sa
from alembic import op

import gpufleet.store.types

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_TIME = gpufleet.store.types.UtcDateTime(timezone=True)
_JSON = gpufleet.store.types.Json
_POD_SORT_COLUMNS = (
    "workload_id",
    "cluster_id",
    "revision_id",
    "node_name",
    "nodepool",
    "created_at",
    "completed_at",
    "deleted_at",
)


def _create_events() -> None:
    op.create_table(
        "workload_events",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("workload_id", sa.String(length=36), nullable=False),
        sa.Column("cluster_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.String(length=128), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=253), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("object_kind", sa.String(length=64), nullable=False),
        sa.Column("object_name", sa.String(length=253), nullable=False),
        sa.Column("object_namespace", sa.String(length=253), nullable=False),
        sa.Column("object_uid", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(
            ["workload_id"],
            ["workloads.id"],
            name=op.f("fk_workload_events_workload_id_workloads"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workload_events")),
    )
    op.create_index(
        op.f("ix_workload_events_workload_id_created_at_id"),
        "workload_events",
        ["workload_id", "created_at", "id"],
    )
    op.create_index(op.f("ix_workload_events_created_at"), "workload_events", ["created_at"])


def _create_pods() -> None:
    op.create_table(
        "workload_pods",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("workload_id", sa.String(length=36), nullable=False),
        sa.Column("cluster_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=253), nullable=False),
        sa.Column("node_name", sa.String(length=253), nullable=True),
        sa.Column("nodepool", sa.String(length=253), nullable=True),
        sa.Column("k8s_phase", sa.String(length=64), nullable=False),
        sa.Column("revision_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("completed_at", _TIME, nullable=True),
        sa.Column("deleted_at", _TIME, nullable=True),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.Column("k8s_phase_updated_at", _TIME, nullable=False),
        sa.Column("document", _JSON, nullable=False),
        sa.ForeignKeyConstraint(
            ["workload_id"],
            ["workloads.id"],
            name=op.f("fk_workload_pods_workload_id_workloads"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workload_pods")),
    )
    for column in _POD_SORT_COLUMNS:
        op.create_index(op.f(f"ix_workload_pods_{column}_id"), "workload_pods", [column, "id"])


def _copy_pods(dialect: str) -> None:
    nodepool = (
        "json_extract(p.document, '$.nodepool')"
        if dialect == "sqlite"
        else "p.document ->> 'nodepool'"
    )
    # A uid reported under two workloads (possible before uids were the key) keeps one row.
    op.execute(
        f"""
        INSERT INTO workload_pods (id, workload_id, cluster_id, name, node_name, nodepool,
            k8s_phase, revision_id, created_at, completed_at, deleted_at, updated_at,
            k8s_phase_updated_at, document)
        SELECT p.uid, p.workload_id, w.cluster_id, p.name, p.node_name, {nodepool}, p.phase,
            NULL, w.created_at, NULL, w.deleted_at, w.updated_at, w.updated_at, p.document
        FROM workload_pods_0001 AS p JOIN workloads AS w ON w.id = p.workload_id
        WHERE p.workload_id = (
            SELECT min(q.workload_id) FROM workload_pods_0001 AS q WHERE q.uid = p.uid
        )
        """
    )


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    _create_events()
    op.drop_index(op.f("ix_workload_pods_name"), table_name="workload_pods")
    op.rename_table("workload_pods", "workload_pods_0001")
    if dialect == "postgresql":
        # Constraint names are schema-wide on PostgreSQL; free them for the new table.
        op.execute(
            "ALTER TABLE workload_pods_0001 RENAME CONSTRAINT pk_workload_pods "
            "TO pk_workload_pods_0001"
        )
        op.execute(
            "ALTER TABLE workload_pods_0001 RENAME CONSTRAINT "
            "fk_workload_pods_workload_id_workloads TO fk_workload_pods_0001_workload"
        )
    _create_pods()
    _copy_pods(dialect)
    op.drop_table("workload_pods_0001")
    op.execute("UPDATE workload_phase_history SET message = '' WHERE message IS NULL")
    with op.batch_alter_table("workload_phase_history") as batch_op:
        batch_op.alter_column("message", existing_type=sa.Text(), nullable=False)


def downgrade() -> None:
    raise NotImplementedError("gpufleet migrates forward only")
