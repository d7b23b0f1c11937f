"""initial schema

Revision ID: 0001
Revises:
Create Date: regenerated
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import gpufleet.store.types

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "access_keys",
        sa.Column("client_id", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=253), nullable=False),
        sa.Column("secret_hash", sa.String(length=512), nullable=False),
        sa.Column("created_at", gpufleet.store.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", gpufleet.store.types.UtcDateTime(timezone=True), nullable=True),
        sa.Column("disabled_at", gpufleet.store.types.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("client_id", name=op.f("pk_access_keys")),
    )
    op.create_table(
        "access_rules",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("subject_type", sa.String(length=16), nullable=False),
        sa.Column("subject_id", sa.String(length=253), nullable=False),
        sa.Column("role", sa.String(length=64), nullable=False),
        sa.Column("scope_type", sa.String(length=16), nullable=False),
        sa.Column("scope_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", gpufleet.store.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=253), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_rules")),
    )
    with op.batch_alter_table("access_rules", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_access_rules_subject_type_subject_id"),
            ["subject_type", "subject_id"],
            unique=False,
        )

    op.create_table(
        "audit_log",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("at", gpufleet.store.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=253), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=253), nullable=True),
        sa.Column("source_ip", sa.String(length=64), nullable=True),
        sa.Column(
            "details",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_log_at_id"), ["at", "id"], unique=False)

    op.create_table(
        "clusters",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=253), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("created_at", gpufleet.store.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", gpufleet.store.types.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clusters")),
    )
    op.create_table(
        "departments",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=253), nullable=False),
        sa.Column("cluster_id", sa.String(length=36), nullable=False),
        sa.Column("updated_at", gpufleet.store.types.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_departments")),
    )
    with op.batch_alter_table("departments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_departments_cluster_id"), ["cluster_id"], unique=False)

    op.create_table(
        "metric_samples",
        sa.Column("workload_id", sa.String(length=36), nullable=False),
        sa.Column("metric_type", sa.String(length=64), nullable=False),
        sa.Column("series", sa.String(length=128), nullable=False),
        sa.Column("ts_ms", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint(
            "workload_id", "metric_type", "series", "ts_ms", name=op.f("pk_metric_samples")
        ),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "projects",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=253), nullable=False),
        sa.Column("department_id", sa.String(length=64), nullable=False),
        sa.Column("cluster_id", sa.String(length=36), nullable=False),
        sa.Column("namespace", sa.String(length=253), nullable=False),
        sa.Column("updated_at", gpufleet.store.types.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_projects")),
    )
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_projects_cluster_id"), ["cluster_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_projects_department_id"), ["department_id"], unique=False
        )

    op.create_table(
        "signing_keys",
        sa.Column("kid", sa.String(length=64), nullable=False),
        sa.Column("algorithm", sa.String(length=16), nullable=False),
        sa.Column("private_pem", sa.Text(), nullable=False),
        sa.Column("public_pem", sa.Text(), nullable=False),
        sa.Column("created_at", gpufleet.store.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("kid", name=op.f("pk_signing_keys")),
    )
    op.create_table(
        "workload_phase_history",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("workload_id", sa.String(length=36), nullable=False),
        sa.Column("phase", sa.String(length=32), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("at", gpufleet.store.types.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workload_phase_history")),
    )
    with op.batch_alter_table("workload_phase_history", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_workload_phase_history_workload_id_at_phase"),
            ["workload_id", "at", "phase"],
            unique=True,
        )

    op.create_table(
        "workloads",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("cluster_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=253), nullable=False),
        sa.Column("type", sa.String(length=128), nullable=False),
        sa.Column("category", sa.String(length=64), nullable=False),
        sa.Column("namespace", sa.String(length=253), nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("project_name", sa.String(length=253), nullable=False),
        sa.Column("department_id", sa.String(length=64), nullable=False),
        sa.Column("department_name", sa.String(length=253), nullable=False),
        sa.Column("submitted_by", sa.String(length=253), nullable=True),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("phase", sa.String(length=32), nullable=False),
        sa.Column("phase_message", sa.Text(), nullable=True),
        sa.Column("k8s_phase", sa.String(length=64), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=True),
        sa.Column("priority_class_name", sa.String(length=253), nullable=False),
        sa.Column("distributed_framework", sa.String(length=64), nullable=True),
        sa.Column("nodepool", sa.String(length=253), nullable=True),
        sa.Column("allocated_gpu", sa.Float(), nullable=False),
        sa.Column("requested_gpu", sa.Float(), nullable=False),
        sa.Column("idle_gpus", sa.Integer(), nullable=True),
        sa.Column("idle_allocated_gpus", sa.Float(), nullable=True),
        sa.Column("running_pods", sa.Integer(), nullable=False),
        sa.Column("created_at", gpufleet.store.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", gpufleet.store.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column(
            "phase_updated_at", gpufleet.store.types.UtcDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "k8s_phase_updated_at", gpufleet.store.types.UtcDateTime(timezone=True), nullable=False
        ),
        sa.Column("completed_at", gpufleet.store.types.UtcDateTime(timezone=True), nullable=True),
        sa.Column("deleted_at", gpufleet.store.types.UtcDateTime(timezone=True), nullable=True),
        sa.Column(
            "guaranteed_runtime_ends_at",
            gpufleet.store.types.UtcDateTime(timezone=True),
            nullable=True,
        ),
        sa.Column("pending_seconds_before", sa.Integer(), nullable=False),
        sa.Column("running_seconds_before", sa.Integer(), nullable=False),
        sa.Column("ai_application_id", sa.String(length=253), nullable=True),
        sa.Column("ai_application_name", sa.String(length=253), nullable=True),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.Column("observed_at", gpufleet.store.types.UtcDateTime(timezone=True), nullable=True),
        sa.Column(
            "document",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workloads")),
    )
    with op.batch_alter_table("workloads", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_workloads_ai_application_id_id"),
            ["ai_application_id", "id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_workloads_ai_application_name_id"),
            ["ai_application_name", "id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_workloads_allocated_gpu_id"), ["allocated_gpu", "id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_workloads_category_id"), ["category", "id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_workloads_cluster_id_id"), ["cluster_id", "id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_workloads_completed_at_id"), ["completed_at", "id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_workloads_created_at_id"), ["created_at", "id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_workloads_deleted_at_id"),
            ["deleted_at", "id"],
            unique=False,
            sqlite_where=sa.text("deleted_at IS NOT NULL"),
            postgresql_where=sa.text("deleted_at IS NOT NULL"),
        )
        batch_op.create_index(
            batch_op.f("ix_workloads_department_id_id"), ["department_id", "id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_workloads_department_name_id"), ["department_name", "id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_workloads_distributed_framework_id"),
            ["distributed_framework", "id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_workloads_guaranteed_runtime_ends_at_id"),
            ["guaranteed_runtime_ends_at", "id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_workloads_id"),
            ["id"],
            unique=False,
            sqlite_where=sa.text("deleted_at IS NULL"),
            postgresql_where=sa.text("deleted_at IS NULL"),
        )
        batch_op.create_index(
            batch_op.f("ix_workloads_idle_allocated_gpus_id"),
            ["idle_allocated_gpus", "id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_workloads_idle_gpus_id"), ["idle_gpus", "id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_workloads_name_id"), ["name", "id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_workloads_nodepool_id"), ["nodepool", "id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_workloads_phase_id"), ["phase", "id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_workloads_phase_updated_at_id"), ["phase_updated_at", "id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_workloads_priority_class_name_id"),
            ["priority_class_name", "id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_workloads_priority_id"), ["priority", "id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_workloads_project_id_id"), ["project_id", "id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_workloads_project_name_id"), ["project_name", "id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_workloads_submitted_by_id"), ["submitted_by", "id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_workloads_type_id"), ["type", "id"], unique=False)

    op.create_table(
        "workload_nodepools",
        sa.Column("workload_id", sa.String(length=36), nullable=False),
        sa.Column("nodepool", sa.String(length=253), nullable=False),
        sa.ForeignKeyConstraint(
            ["workload_id"],
            ["workloads.id"],
            name=op.f("fk_workload_nodepools_workload_id_workloads"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workload_id", "nodepool", name=op.f("pk_workload_nodepools")),
    )
    with op.batch_alter_table("workload_nodepools", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_workload_nodepools_nodepool_workload_id"),
            ["nodepool", "workload_id"],
            unique=False,
        )

    op.create_table(
        "workload_pods",
        sa.Column("workload_id", sa.String(length=36), nullable=False),
        sa.Column("uid", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=253), nullable=False),
        sa.Column("node_name", sa.String(length=253), nullable=True),
        sa.Column("phase", sa.String(length=32), nullable=False),
        sa.Column(
            "document",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["workload_id"],
            ["workloads.id"],
            name=op.f("fk_workload_pods_workload_id_workloads"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workload_id", "uid", name=op.f("pk_workload_pods")),
    )
    with op.batch_alter_table("workload_pods", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_workload_pods_name"), ["name"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("workload_pods", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_workload_pods_name"))

    op.drop_table("workload_pods")
    with op.batch_alter_table("workload_nodepools", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_workload_nodepools_nodepool_workload_id"))

    op.drop_table("workload_nodepools")
    with op.batch_alter_table("workloads", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_workloads_type_id"))
        batch_op.drop_index(batch_op.f("ix_workloads_submitted_by_id"))
        batch_op.drop_index(batch_op.f("ix_workloads_project_name_id"))
        batch_op.drop_index(batch_op.f("ix_workloads_project_id_id"))
        batch_op.drop_index(batch_op.f("ix_workloads_priority_id"))
        batch_op.drop_index(batch_op.f("ix_workloads_priority_class_name_id"))
        batch_op.drop_index(batch_op.f("ix_workloads_phase_updated_at_id"))
        batch_op.drop_index(batch_op.f("ix_workloads_phase_id"))
        batch_op.drop_index(batch_op.f("ix_workloads_nodepool_id"))
        batch_op.drop_index(batch_op.f("ix_workloads_name_id"))
        batch_op.drop_index(batch_op.f("ix_workloads_idle_gpus_id"))
        batch_op.drop_index(batch_op.f("ix_workloads_idle_allocated_gpus_id"))
        batch_op.drop_index(
            batch_op.f("ix_workloads_id"),
            sqlite_where=sa.text("deleted_at IS NULL"),
            postgresql_where=sa.text("deleted_at IS NULL"),
        )
        batch_op.drop_index(batch_op.f("ix_workloads_guaranteed_runtime_ends_at_id"))
        batch_op.drop_index(batch_op.f("ix_workloads_distributed_framework_id"))
        batch_op.drop_index(batch_op.f("ix_workloads_department_name_id"))
        batch_op.drop_index(batch_op.f("ix_workloads_department_id_id"))
        batch_op.drop_index(
            batch_op.f("ix_workloads_deleted_at_id"),
            sqlite_where=sa.text("deleted_at IS NOT NULL"),
            postgresql_where=sa.text("deleted_at IS NOT NULL"),
        )
        batch_op.drop_index(batch_op.f("ix_workloads_created_at_id"))
        batch_op.drop_index(batch_op.f("ix_workloads_completed_at_id"))
        batch_op.drop_index(batch_op.f("ix_workloads_cluster_id_id"))
        batch_op.drop_index(batch_op.f("ix_workloads_category_id"))
        batch_op.drop_index(batch_op.f("ix_workloads_allocated_gpu_id"))
        batch_op.drop_index(batch_op.f("ix_workloads_ai_application_name_id"))
        batch_op.drop_index(batch_op.f("ix_workloads_ai_application_id_id"))

    op.drop_table("workloads")
    with op.batch_alter_table("workload_phase_history", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_workload_phase_history_workload_id_at_phase"))

    op.drop_table("workload_phase_history")
    op.drop_table("signing_keys")
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_projects_department_id"))
        batch_op.drop_index(batch_op.f("ix_projects_cluster_id"))

    op.drop_table("projects")
    op.drop_table("metric_samples")
    with op.batch_alter_table("departments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_departments_cluster_id"))

    op.drop_table("departments")
    op.drop_table("clusters")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_log_at_id"))

    op.drop_table("audit_log")
    with op.batch_alter_table("access_rules", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_access_rules_subject_type_subject_id"))

    op.drop_table("access_rules")
    op.drop_table("access_keys")
