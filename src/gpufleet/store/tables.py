"""Table definitions: the single source for migrations and queries.

A workload is stored as indexed scalar columns (everything ``filterBy``/``sortBy`` can name)
plus one JSON document for the nested parts that are only ever returned, never filtered.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from gpufleet.store.types import Json, UtcDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

clusters = Table(
    "clusters",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(253), nullable=False),
    Column("tenant_id", Integer, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

departments = Table(
    "departments",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(253), nullable=False),
    Column("cluster_id", String(36), nullable=False, index=True),
    Column("updated_at", UtcDateTime, nullable=False),
)

projects = Table(
    "projects",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(253), nullable=False),
    Column("department_id", String(64), nullable=False, index=True),
    Column("cluster_id", String(36), nullable=False, index=True),
    Column("namespace", String(253), nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

workloads = Table(
    "workloads",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant_id", Integer, nullable=False),
    Column("cluster_id", String(36), nullable=False),
    Column("name", String(253), nullable=False),
    Column("type", String(128), nullable=False),
    Column("category", String(64), nullable=False),
    Column("namespace", String(253), nullable=False),
    Column("project_id", String(64), nullable=False),
    Column("project_name", String(253), nullable=False),
    Column("department_id", String(64), nullable=False),
    Column("department_name", String(253), nullable=False),
    Column("submitted_by", String(253)),
    Column("source", String(32), nullable=False),
    Column("phase", String(32), nullable=False),
    Column("phase_message", Text),
    Column("k8s_phase", String(64), nullable=False),
    Column("priority", Integer),
    Column("priority_class_name", String(253), nullable=False),
    Column("distributed_framework", String(64)),
    # First current node pool, for sorting; membership lives in workload_nodepools.
    Column("nodepool", String(253)),
    Column("allocated_gpu", Float, nullable=False, default=0.0),
    Column("requested_gpu", Float, nullable=False, default=0.0),
    Column("idle_gpus", Integer),
    Column("idle_allocated_gpus", Float),
    Column("running_pods", Integer, nullable=False, default=0),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("phase_updated_at", UtcDateTime, nullable=False),
    Column("k8s_phase_updated_at", UtcDateTime, nullable=False),
    Column("completed_at", UtcDateTime),
    Column("deleted_at", UtcDateTime),
    Column("guaranteed_runtime_ends_at", UtcDateTime),
    # Seconds accumulated in Pending/Running before the current phase began; the time spent
    # in the current phase is added at read time, against the request's "now".
    Column("pending_seconds_before", Integer, nullable=False, default=0),
    Column("running_seconds_before", Integer, nullable=False, default=0),
    Column("ai_application_id", String(253)),
    Column("ai_application_name", String(253)),
    # Lower-cased name, project, department, type, phase and submitter for free-text search.
    Column("search_text", Text, nullable=False),
    # When the agent last saw this workload; updates older than this are stale.
    Column("observed_at", UtcDateTime),
    Column("document", Json, nullable=False),
)

# Every sortable column gets (column, id) so a page is an index range scan with the id tiebreak.
_SORTED_COLUMNS = (
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
for _name in _SORTED_COLUMNS:
    Index(None, workloads.c[_name], workloads.c.id)
# Partial, so only deleted=true lists use it: SQLite counts NULLs as distinct values and would
# otherwise pick it for every live list (deleted_at IS NULL) and sort the whole table.
_deleted = workloads.c.deleted_at.is_not(None)
Index(
    None, workloads.c.deleted_at, workloads.c.id, sqlite_where=_deleted, postgresql_where=_deleted
)
# Live ids only: counting live workloads scans this small index instead of the whole table.
_live = workloads.c.deleted_at.is_(None)
Index(None, workloads.c.id, sqlite_where=_live, postgresql_where=_live)

workload_nodepools = Table(
    "workload_nodepools",
    metadata,
    Column(
        "workload_id",
        String(36),
        ForeignKey("workloads.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("nodepool", String(253), primary_key=True),
    Index(None, "nodepool", "workload_id"),
)

signing_keys = Table(
    "signing_keys",
    metadata,
    Column("kid", String(64), primary_key=True),
    Column("algorithm", String(16), nullable=False),
    Column("private_pem", Text, nullable=False),
    Column("public_pem", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("active", Boolean, nullable=False, default=True),
)

access_keys = Table(
    "access_keys",
    metadata,
    Column("client_id", String(128), primary_key=True),
    Column("name", String(253), nullable=False),
    Column("secret_hash", String(512), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("last_used_at", UtcDateTime),
    Column("disabled_at", UtcDateTime),
)

# Metric samples of the embedded metrics backend. Time is epoch milliseconds so range
# bucketing is integer arithmetic on both dialects. ``series`` distinguishes the series of one
# type: "" for a workload total, "gpu=0" per GPU, "le=0.5" for a histogram bucket.
metric_samples = Table(
    "metric_samples",
    metadata,
    Column("workload_id", String(36), primary_key=True),
    Column("metric_type", String(64), primary_key=True),
    Column("series", String(128), primary_key=True),
    Column("ts_ms", BigInteger, primary_key=True),
    Column("value", Float, nullable=False),
    # The primary key is the only access path (no index on time alone: it would triple the
    # cost of every write for the sake of the hourly retention scan); without a rowid SQLite
    # keeps the rows in that one B-tree.
    sqlite_with_rowid=False,
)

# Phase transitions of each workload, newest first when read.
workload_phase_history = Table(
    "workload_phase_history",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("workload_id", String(36), nullable=False),
    Column("phase", String(32), nullable=False),
    Column("message", Text),
    Column("at", UtcDateTime, nullable=False),
    # One row per transition: replays and concurrent writers insert it at most once.
    Index(None, "workload_id", "at", "phase", unique=True),
)

# The pods of each workload as the cluster agent last reported them.
workload_pods = Table(
    "workload_pods",
    metadata,
    Column(
        "workload_id",
        String(36),
        ForeignKey("workloads.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("uid", String(64), primary_key=True),
    Column("name", String(253), nullable=False),
    Column("node_name", String(253)),
    Column("phase", String(32), nullable=False),
    Column("document", Json, nullable=False),
    Index(None, "name"),
)

# Access rules bind a subject (an access key, an external user or group) to a role in a scope.
access_rules = Table(
    "access_rules",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("subject_type", String(16), nullable=False),
    Column("subject_id", String(253), nullable=False),
    Column("role", String(64), nullable=False),
    Column("scope_type", String(16), nullable=False),
    Column("scope_id", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("created_by", String(253), nullable=False),
    Index(None, "subject_type", "subject_id"),
)

# Who did what: token issuance and every change to credentials and access rules.
audit_log = Table(
    "audit_log",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("at", UtcDateTime, nullable=False),
    Column("actor", String(253), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", String(253)),
    Column("source_ip", String(64)),
    Column("details", Json),
    Index(None, "at", "id"),
)
