"""nodes, node pools, scheduler queues and their quotas; what each pod holds on its node

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04

Nodes and scheduler queues are reported by the cluster agents; node pools are recorded from
the pool names nodes and quotas carry. Pods gain the GPUs, CPU and memory they hold while bound
to a node, so a node's allocation is a sum over an index; pods stored before this revision
get their GPU and CPU allocation from their document (memory follows their next report).
"""

import sqlalchemy as sa
from alembic import op

import gpufleet.store.types

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_JSON = gpufleet.store.types.Json
_HOLDS = sa.text(
    "deleted_at IS NULL AND "
    "(allocated_gpu > 0 OR allocated_cpu_cores > 0 OR allocated_memory_bytes > 0)"
)


def upgrade() -> None:
    op.create_table(
        "nodepools",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("cluster_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=253), nullable=False),
        sa.Column("label_key", sa.String(length=253), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("created_at", gpufleet.store.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", gpufleet.store.types.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_nodepools")),
    )
    with op.batch_alter_table("nodepools", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_nodepools_cluster_id_name"), ["cluster_id", "name"], unique=True
        )
        batch_op.create_index(batch_op.f("ix_nodepools_name_id"), ["name", "id"], unique=False)

    op.create_table(
        "nodes",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("cluster_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=253), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("unschedulable", sa.Boolean(), nullable=False),
        sa.Column("nodepool", sa.String(length=253), nullable=False),
        sa.Column("gpu_type", sa.String(length=253), nullable=True),
        sa.Column("gpu_count", sa.Integer(), nullable=False),
        sa.Column("allocatable_gpus", sa.Float(), nullable=False),
        sa.Column("gpu_memory_bytes", sa.BigInteger(), nullable=True),
        sa.Column("cpu_cores", sa.Float(), nullable=False),
        sa.Column("allocatable_cpu_cores", sa.Float(), nullable=False),
        sa.Column("memory_bytes", sa.BigInteger(), nullable=False),
        sa.Column("allocatable_memory_bytes", sa.BigInteger(), nullable=False),
        sa.Column("nvlink_clique_id", sa.String(length=253), nullable=True),
        sa.Column("nvlink_domain_uid", sa.String(length=253), nullable=True),
        sa.Column("created_at", gpufleet.store.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", gpufleet.store.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("observed_at", gpufleet.store.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", gpufleet.store.types.UtcDateTime(timezone=True), nullable=True),
        sa.Column("document", _JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_nodes")),
    )
    with op.batch_alter_table("nodes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_nodes_cluster_id_name"), ["cluster_id", "name"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_nodes_cluster_id_nodepool"), ["cluster_id", "nodepool"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_nodes_gpu_type_id"), ["gpu_type", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_nodes_name_id"), ["name", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_nodes_nodepool_id"), ["nodepool", "id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_nodes_nvlink_clique_id_id"), ["nvlink_clique_id", "id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_nodes_nvlink_domain_uid_id"), ["nvlink_domain_uid", "id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_nodes_status_id"), ["status", "id"], unique=False)

    op.create_table(
        "scheduler_queues",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("cluster_id", sa.String(length=36), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=253), nullable=False),
        sa.Column("parent_name", sa.String(length=253), nullable=True),
        sa.Column("org_unit_type", sa.String(length=16), nullable=True),
        sa.Column("org_unit_id", sa.String(length=64), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=True),
        sa.Column("observed_at", gpufleet.store.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("document", _JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scheduler_queues")),
    )
    with op.batch_alter_table("scheduler_queues", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_scheduler_queues_cluster_id_source_name"),
            ["cluster_id", "source", "name"],
            unique=True,
        )
        batch_op.create_index(
            batch_op.f("ix_scheduler_queues_org_unit_id"), ["org_unit_id"], unique=False
        )

    op.create_table(
        "queue_quotas",
        sa.Column("queue_id", sa.String(length=36), nullable=False),
        sa.Column("nodepool", sa.String(length=253), nullable=False),
        sa.Column("cluster_id", sa.String(length=36), nullable=False),
        sa.Column("gpu_deserved", sa.Float(), nullable=False),
        sa.Column("gpu_limit", sa.Float(), nullable=True),
        sa.Column("gpu_over_quota_weight", sa.Float(), nullable=True),
        sa.Column("cpu_deserved", sa.Float(), nullable=True),
        sa.Column("cpu_limit", sa.Float(), nullable=True),
        sa.Column("cpu_over_quota_weight", sa.Float(), nullable=True),
        sa.Column("memory_deserved", sa.Float(), nullable=True),
        sa.Column("memory_limit", sa.Float(), nullable=True),
        sa.Column("memory_over_quota_weight", sa.Float(), nullable=True),
        sa.Column("gpu_used", sa.Float(), nullable=True),
        sa.Column("cpu_used", sa.Float(), nullable=True),
        sa.Column("memory_used", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["queue_id"],
            ["scheduler_queues.id"],
            name=op.f("fk_queue_quotas_queue_id_scheduler_queues"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("queue_id", "nodepool", name=op.f("pk_queue_quotas")),
    )
    with op.batch_alter_table("queue_quotas", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_queue_quotas_cluster_id_nodepool"),
            ["cluster_id", "nodepool"],
            unique=False,
        )

    with op.batch_alter_table("workload_pods", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("allocated_gpu", sa.Float(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("allocated_cpu_cores", sa.Float(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("allocated_memory_bytes", sa.Float(), server_default="0", nullable=False)
        )
        batch_op.create_index(
            "ix_workload_pods_holding",
            [
                "cluster_id",
                "node_name",
                "allocated_gpu",
                "allocated_cpu_cores",
                "allocated_memory_bytes",
            ],
            unique=False,
            sqlite_where=_HOLDS,
            postgresql_where=_HOLDS,
        )

    _backfill_pod_allocations(op.get_bind().dialect.name)


def _backfill_pod_allocations(dialect: str) -> None:
    if dialect == "sqlite":
        gpu = "CAST(json_extract(document, '$.allocatedResources.gpu') AS REAL)"
        cpu = "CAST(json_extract(document, '$.allocatedResources.cpu') AS REAL)"
    else:
        gpu = "CAST(document -> 'allocatedResources' ->> 'gpu' AS DOUBLE PRECISION)"
        cpu = "CAST(document -> 'allocatedResources' ->> 'cpu' AS DOUBLE PRECISION)"
    op.execute(
        f"""
        UPDATE workload_pods SET allocated_gpu = COALESCE({gpu}, 0),
            allocated_cpu_cores = COALESCE({cpu}, 0)
        WHERE deleted_at IS NULL AND node_name IS NOT NULL
            AND k8s_phase NOT IN ('Succeeded', 'Failed')
        """
    )


def downgrade() -> None:
    raise NotImplementedError("gpufleet migrates forward only")
