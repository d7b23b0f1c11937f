"""Table definitions: the single source for migrations and queries.

A workload is stored as indexed scalar columns (everything ``filterBy``/``sortBy`` can name)
plus one JSON document for the nested parts that are only ever returned, never filtered; its
catalogued columns are built from ``core.workload_fields``.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Computed,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

from gpufleet.core.pod_fields import POD_FIELDS
from gpufleet.core.workload_fields import (
    QUERY_FIELDS,
    TIMED_FIELDS,
    WORKLOAD_CATALOGUE,
    FieldKind,
    WorkloadField,
)
from gpufleet.store.columns import (
    cluster_id,
    measured_utilisation_columns,
    org_unit_columns,
    sample_columns,
    serial_id,
    usage_owner_columns,
    workload_id,
    workload_reference,
)
from gpufleet.store.dialect import epoch_second
from gpufleet.store.types import Json, UtcDateTime, UuidKey

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
    # When the cluster's agent last reported anything; its connection state is read from it.
    Column("last_report_at", UtcDateTime),
    # The usage ledger accounts the cluster's workloads from this moment on: its usage before
    # was written into the rollups otherwise (the demo's history) and would count twice.
    Column("usage_from", UtcDateTime),
)

departments = Table("departments", metadata, *org_unit_columns())

projects = Table(
    "projects",
    metadata,
    *org_unit_columns(),
    Column("department_id", String(64), nullable=False, index=True),
    Column("namespace", String(253), nullable=False),
)

# Python-side defaults of catalogued columns that a writer may leave out.
_DEFAULTS = {"running_pods": 0, "allocated_gpu": 0.0}


def _catalogued_column(field: WorkloadField) -> Column:
    """The column of one catalogue row, typed by its kind and longest value."""
    assert field.column is not None
    kinds = {
        FieldKind.TEXT: String(field.max_length) if field.max_length else Text,
        FieldKind.INTEGER: Integer,
        FieldKind.NUMBER: Float,
        FieldKind.DATE: UtcDateTime,
    }
    return Column(
        field.column,
        kinds[field.kind],
        primary_key=field.name == "id",
        nullable=not field.required,
        default=_DEFAULTS.get(field.column),
    )


def _seconds_anchor() -> sa.ColumnElement[int]:
    """The seconds before the current stretch of a timed phase, less the epoch second it began.

    A total of time in a phase is this plus the request's epoch second for a workload in the
    phase (since the second it began), so one index of it orders those workloads by their
    totals at any moment. NULL in the phases no total counts.
    """
    phase = sa.column("phase")
    before = sa.case(*((phase == f.timed_phase, sa.column(f.column)) for f in TIMED_FIELDS))
    return before - epoch_second(sa.column("phase_updated_at"))


workloads = Table(
    "workloads",
    metadata,
    *(
        _catalogued_column(field)
        for field in WORKLOAD_CATALOGUE
        if field.stored_scalar or (field.query_only and field.column)
    ),
    Column("requested_gpu", Float, nullable=False, default=0.0),
    # The first node pool the workload asks for (requestedNodePools), NULL when it names none:
    # the pool a workload not yet in any pool is requested in (see store.org_figures).
    Column("requested_nodepool", String(253)),
    # Seconds accumulated in Pending/Running before the current phase began; the time spent
    # in the current phase is added at read time, against the request's "now".
    Column("pending_seconds_before", Integer, nullable=False, default=0),
    Column("running_seconds_before", Integer, nullable=False, default=0),
    # Computed by the database (stored on PostgreSQL, virtual on SQLite): writers never set it.
    Column("seconds_anchor", BigInteger, Computed(_seconds_anchor())),
    # Lower-cased name, project, department, type, phase and submitter for free-text search.
    Column("search_text", Text, nullable=False),
    # When the agent last saw this workload; updates older than this are stale.
    Column("observed_at", UtcDateTime),
    # The id again as its 16 bytes: the tiebreak of every sort index, in the id's order.
    Column("id_key", UuidKey, nullable=False),
    # The nested fields no column holds, packed (see store.workload_documents).
    Column("document", LargeBinary, nullable=False),
)

# Every sortable column gets (column, id_key) so a page is an index range scan with the id's
# order as tiebreak (id_key holds the id in 16 bytes instead of 36 characters, in each of some
# twenty indexes); deleted_at gets a partial index below, the time totals are computed.
# deleted_at comes last in each: a page (and the offset it skips) tests live or deleted on the
# index entry itself, and a deep offset walks index pages alone instead of looking up every
# skipped row.
_SORTED_COLUMNS = tuple(
    f.column for f in QUERY_FIELDS if f.column and not f.time_dependent and f.name != "deletedAt"
)


def sort_index(column: str) -> str:
    """The name of a sortable column's index."""
    return f"ix_workloads_{column}_id_key_deleted_at"


for _name in _SORTED_COLUMNS:
    Index(sort_index(_name), workloads.c[_name], workloads.c.id_key, workloads.c.deleted_at)
# Partial, so only deleted=true lists use it: SQLite counts NULLs as distinct values and would
# otherwise pick it for every live list (deleted_at IS NULL) and sort the whole table.
_deleted = workloads.c.deleted_at.is_not(None)
Index(
    None,
    workloads.c.deleted_at,
    workloads.c.id_key,
    sqlite_where=_deleted,
    postgresql_where=_deleted,
)
# A page found through a sort index joins its rows back by their key: on PostgreSQL by the
# id's key through this index; SQLite joins by the rowid its index entries hold, and keeps no
# such index (see store.workload_filters.row_key).
Index(None, workloads.c.id_key, unique=True).ddl_if(dialect="postgresql")


def created_on(index: Index, dialect_name: str) -> bool:
    """Whether the table definitions create ``index`` on this dialect (see ``Index.ddl_if``)."""
    only = index._ddl_if
    return only is None or only.dialect in (None, dialect_name)


def anchor_index(field: WorkloadField) -> str:
    """The index of the workloads in ``field``'s timed phase, in the order of their totals."""
    return f"ix_workloads_anchor_{field.timed_phase.lower()}"


def before_index(field: WorkloadField) -> str:
    """The index of the other workloads, whose totals are their stored seconds."""
    return sort_index(field.column)


def _partial_index(name: str, where: sa.ColumnElement[bool], *columns: Column) -> Index:
    return Index(name, *columns, sqlite_where=where, postgresql_where=where)


# A sort or filter by a total merges two walks: the workloads in the timed phase along their
# anchor, the others along their stored seconds (see store.workload_walks). Each also holds
# what its walk tests besides its key: live or deleted, and whether the stretch began.
for _field in TIMED_FIELDS:
    _partial_index(
        anchor_index(_field),
        workloads.c.phase == _field.timed_phase,
        *(workloads.c[n] for n in ("seconds_anchor", "id_key", "deleted_at", "phase_updated_at")),
    )
    _partial_index(
        before_index(_field),
        workloads.c.phase != _field.timed_phase,
        *(workloads.c[n] for n in (_field.column, "id_key", "deleted_at")),
    )

workload_nodepools = Table(
    "workload_nodepools",
    metadata,
    workload_id(ForeignKey("workloads.id", ondelete="CASCADE"), primary_key=True),
    Column("nodepool", String(253), primary_key=True),
    # The key is the whole row: without a rowid SQLite keeps it once (see migration 0014).
    sqlite_with_rowid=False,
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

# One credential table for both of Run:ai's kinds: a service account (``kind`` service-account)
# is a subject of its own; a user's access key (``kind`` access-key) speaks for its owner.
access_keys = Table(
    "access_keys",
    metadata,
    Column("client_id", String(128), primary_key=True),
    # Run:ai's ``id`` of the service account or access key.
    Column("id", String(36), nullable=False, index=True, unique=True),
    Column("kind", String(16), nullable=False, server_default="service-account"),
    # The subject an access key speaks for; empty for a service account.
    Column("owner_type", String(16), nullable=False, server_default=""),
    Column("owner_id", String(253), nullable=False, server_default=""),
    Column("name", String(253), nullable=False),
    Column("created_by", String(253), nullable=False, server_default=""),
    Column("updated_at", UtcDateTime),
    Column("secret_hash", String(512), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("last_used_at", UtcDateTime),
    Column("disabled_at", UtcDateTime),
    # Tokens carry the generation they were issued under; rotating the secret or disabling the
    # key moves it on, so every earlier token is refused (enabling again does not move it back).
    Column("token_generation", Integer, nullable=False, default=0, server_default="0"),
    # Names are unique among the service accounts, and among each owner's access keys.
    Index(None, "kind", "owner_type", "owner_id", "name", unique=True),
)

# One row per refresh-token session (a family of refresh tokens, each replacing the last).
# Only ``current_jti`` may be redeemed; presenting a spent one revokes the whole family.
refresh_sessions = Table(
    "refresh_sessions",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("subject", String(253), nullable=False),
    Column("subject_type", String(16), nullable=False),
    Column("groups", Json, nullable=False),
    Column("current_jti", String(32), nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    # Absolute end of the session: refreshing never moves it.
    Column("expires_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime),
    Index(None, "subject_type", "subject"),
)

# Metric samples of the embedded metrics backend. Time is epoch milliseconds so range
# bucketing is integer arithmetic on both dialects. ``series`` distinguishes the series of one
# type: "" for a workload total, "gpu=0" per GPU, "le=0.5" for a histogram bucket.
metric_samples = Table(
    "metric_samples",
    metadata,
    workload_id(primary_key=True),
    *sample_columns(series_width=128),
    # The primary key is the only access path (no index on time alone: it would triple the
    # cost of every write for the sake of the hourly retention scan); without a rowid SQLite
    # keeps the rows in that one B-tree.
    sqlite_with_rowid=False,
)

# Samples of the fleet's inventory over time (allocation, capacity, quota), taken by the
# sampling task: the past of the cluster, project and department metrics on the embedded
# backend. ``unit_type``/``unit_id`` name a cluster, project or department; ``series`` is ""
# for the unit's total and "nodepool=NAME" for its share in one node pool.
inventory_samples = Table(
    "inventory_samples",
    metadata,
    Column("unit_type", String(16), primary_key=True),
    Column("unit_id", String(64), primary_key=True),
    *sample_columns(series_width=300),
    sqlite_with_rowid=False,
)

# Samples of one pod (its per-GPU DCGM fields, its CPU, its inference server), keyed by the
# pod's uid: a pod that moves to another workload keeps its series. Laid out as metric_samples.
pod_metric_samples = Table(
    "pod_metric_samples",
    metadata,
    Column("pod_id", String(64), primary_key=True),
    *sample_columns(series_width=128),
    sqlite_with_rowid=False,
)

# Phase transitions of each workload; the history interleaves them with workload_events.
workload_phase_history = Table(
    "workload_phase_history",
    metadata,
    serial_id(),
    workload_id(nullable=False),
    Column("phase", String(32), nullable=False),
    # The reference's PhaseUpdate requires a message: "" when the phase came without one.
    Column("message", Text, nullable=False),
    Column("at", UtcDateTime, nullable=False),
    # One row per transition: replays and concurrent writers insert it at most once.
    Index(None, "workload_id", "at", "phase", unique=True),
)

# Kubernetes events of a workload and of the objects below it. Repeats of one Kubernetes
# event are one row: ``count`` and ``created_at`` (the latest occurrence) move forward.
workload_events = Table(
    "workload_events",
    metadata,
    # The Kubernetes event's uid.
    Column("id", String(36), primary_key=True),
    workload_reference(),
    cluster_id(),
    Column("created_at", UtcDateTime, nullable=False),
    Column("type", String(32), nullable=False),
    Column("reason", String(128), nullable=False),
    Column("message", Text, nullable=False),
    Column("source", String(253), nullable=False),
    Column("count", Integer, nullable=False),
    Column("object_kind", String(64), nullable=False),
    Column("object_name", String(253), nullable=False),
    Column("object_namespace", String(253), nullable=False),
    Column("object_uid", String(36), nullable=False),
    # A workload's events newest (or oldest) first is a range of this index.
    Index(None, "workload_id", "created_at", "id"),
    # The fleet's events newest first walk this index (the id breaking ties, so a page needs
    # no sort); retention deletes by age across all workloads through it too.
    Index(None, "created_at", "id"),
)

# The pods of each workload as the cluster agent reported them; a pod no longer reported
# keeps its row with ``deleted_at`` set. ``document`` holds the nested wire parts
# (containers, resources, tolerations, affinity) that are returned but never filtered.
workload_pods = Table(
    "workload_pods",
    metadata,
    # The pod's uid (64 wide: rows kept from before uids were checked to be UUIDs).
    Column("id", String(64), primary_key=True),
    workload_reference(),
    cluster_id(),
    Column("name", String(253), nullable=False),
    Column("node_name", String(253)),
    Column("nodepool", String(253)),
    Column("k8s_phase", String(64), nullable=False),
    Column("revision_id", String(36)),
    Column("created_at", UtcDateTime, nullable=False),
    Column("completed_at", UtcDateTime),
    Column("deleted_at", UtcDateTime),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("k8s_phase_updated_at", UtcDateTime, nullable=False),
    # What the pod holds while bound to its node and not finished (0 otherwise): the node
    # inventory sums these per node.
    Column("allocated_gpu", Float, nullable=False, default=0.0, server_default="0"),
    Column("allocated_cpu_cores", Float, nullable=False, default=0.0, server_default="0"),
    Column("allocated_memory_bytes", Float, nullable=False, default=0.0, server_default="0"),
    Column("document", Json, nullable=False),
)
# Every PodsSort field gets (column, id), so a sorted page is an index range scan; the first
# also serves one workload's pods.
for _field in POD_FIELDS.values():
    Index(None, workload_pods.c[_field.column], workload_pods.c.id)
# The pods holding resources on nodes, with what they hold: a node's allocation is a range
# of this small index, the whole fleet's one scan of it.
POD_HOLDS = sa.and_(
    workload_pods.c.deleted_at.is_(None),
    sa.or_(
        workload_pods.c.allocated_gpu > 0,
        workload_pods.c.allocated_cpu_cores > 0,
        workload_pods.c.allocated_memory_bytes > 0,
    ),
)
Index(
    "ix_workload_pods_holding",
    workload_pods.c.cluster_id,
    workload_pods.c.node_name,
    workload_pods.c.allocated_gpu,
    workload_pods.c.allocated_cpu_cores,
    workload_pods.c.allocated_memory_bytes,
    sqlite_where=POD_HOLDS,
    postgresql_where=POD_HOLDS,
)

# Kubernetes nodes as the cluster agents report them (keyed by the node's uid). A node no
# longer reported keeps its row with ``deleted_at`` set, so a late, older report cannot bring
# it back. ``document`` holds conditions, taints and MIG devices: returned, never filtered.
nodes = Table(
    "nodes",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("cluster_id", String(36), nullable=False),
    Column("name", String(253), nullable=False),
    Column("status", String(16), nullable=False),
    Column("unschedulable", Boolean, nullable=False),
    Column("nodepool", String(253), nullable=False),
    Column("gpu_type", String(253)),
    Column("gpu_count", Integer, nullable=False),
    Column("allocatable_gpus", Float, nullable=False),
    Column("gpu_memory_bytes", BigInteger),
    Column("cpu_cores", Float, nullable=False),
    Column("allocatable_cpu_cores", Float, nullable=False),
    Column("memory_bytes", BigInteger, nullable=False),
    Column("allocatable_memory_bytes", BigInteger, nullable=False),
    Column("nvlink_clique_id", String(253)),
    Column("nvlink_domain_uid", String(253)),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("observed_at", UtcDateTime, nullable=False),
    Column("deleted_at", UtcDateTime),
    Column("document", Json, nullable=False),
    # A cluster's node by name (the pods name their node), and the per-pool roll-ups.
    Index(None, "cluster_id", "name"),
    Index(None, "cluster_id", "nodepool"),
)
for _name in ("name", "status", "nodepool", "gpu_type", "nvlink_domain_uid", "nvlink_clique_id"):
    Index(None, nodes.c[_name], nodes.c.id)

# Node pools: one per node-pool label value a cluster's nodes carry (and ``default`` for the
# nodes without one), plus those only the scheduler's quotas name. The id is derived from the
# cluster and the name, so two clusters' pools of one name are two pools.
nodepools = Table(
    "nodepools",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("cluster_id", String(36), nullable=False),
    Column("name", String(253), nullable=False),
    Column("label_key", String(253), nullable=False),
    Column("is_default", Boolean, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Index(None, "cluster_id", "name", unique=True),
    Index(None, "name", "id"),
)

# The scheduler's queues (KAI ``Queue``, Kueue ``ClusterQueue``/``LocalQueue``, or the
# agent's quota file). The id is derived from the cluster, source and name. A queue stands
# for the organisation unit in ``org_unit_type``/``org_unit_id`` when the agent could tell.
scheduler_queues = Table(
    "scheduler_queues",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("cluster_id", String(36), nullable=False),
    Column("source", String(32), nullable=False),
    Column("name", String(253), nullable=False),
    Column("parent_name", String(253)),
    Column("org_unit_type", String(16)),
    Column("org_unit_id", String(64)),
    Column("priority", Integer),
    Column("observed_at", UtcDateTime, nullable=False),
    Column("document", Json, nullable=False),
    Index(None, "cluster_id", "source", "name", unique=True),
    Index(None, "org_unit_id"),
)

# A queue's quota in one node pool: GPUs (devices), CPU (millicores), memory (MB, 10^6
# bytes), each deserved / limit / over-quota weight, and what the scheduler reports in use.
queue_quotas = Table(
    "queue_quotas",
    metadata,
    Column(
        "queue_id",
        String(36),
        ForeignKey("scheduler_queues.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("nodepool", String(253), primary_key=True),
    Column("cluster_id", String(36), nullable=False),
    Column("gpu_deserved", Float, nullable=False),
    Column("gpu_limit", Float),
    Column("gpu_over_quota_weight", Float),
    Column("cpu_deserved", Float),
    Column("cpu_limit", Float),
    Column("cpu_over_quota_weight", Float),
    Column("memory_deserved", Float),
    Column("memory_limit", Float),
    Column("memory_over_quota_weight", Float),
    Column("gpu_used", Float),
    Column("cpu_used", Float),
    Column("memory_used", Float),
    Index(None, "cluster_id", "nodepool"),
)

# What a rule grants: to whom, which role, where.
RULE_GRANT = ("subject_type", "subject_id", "role", "scope_type", "scope_id")
# Access rules bind a subject (an access key, an external user or group) to a role in a scope.
access_rules = Table(
    "access_rules",
    metadata,
    serial_id(),
    Column("subject_type", String(16), nullable=False),
    Column("subject_id", String(253), nullable=False),
    Column("role", String(64), nullable=False),
    Column("scope_type", String(16), nullable=False),
    Column("scope_id", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("created_by", String(253), nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    # Revoked rules stay, marked, as Run:ai's ``includeDeleted`` lists them.
    Column("deleted_at", UtcDateTime),
    Index(None, "subject_type", "subject_id"),
)
# A rule in force is granted once: a second grant of it is refused, not stored twice.
Index(
    "ix_access_rules_in_force",
    *(access_rules.c[name] for name in RULE_GRANT),
    unique=True,
    sqlite_where=access_rules.c.deleted_at.is_(None),
    postgresql_where=access_rules.c.deleted_at.is_(None),
)

# Who did what: token issuance and every change to credentials and access rules.
audit_log = Table(
    "audit_log",
    metadata,
    serial_id(),
    Column("at", UtcDateTime, nullable=False),
    Column("actor", String(253), nullable=False),
    # Run:ai's subject_type of the actor: "User" or "App" (a service account, the CLI).
    Column("subject_type", String(8), nullable=False, server_default="User"),
    Column("action", String(64), nullable=False),
    Column("target", String(253)),
    Column("entity_name", String(253)),
    Column("source_ip", String(64)),
    Column("details", Json),
    Index(None, "at", "id"),
)

# The usage ledger (see docs/usage.md). ``usage_states`` is each workload's timeline of what it
# held: one row from the moment its allocation, phase class, node pools or owner changed, with
# ``until_ms`` saying how far that state has been added to the hourly rollups so far.
usage_states = Table(
    "usage_states",
    metadata,
    workload_id(primary_key=True),
    Column("at_ms", BigInteger, primary_key=True),
    Column("until_ms", BigInteger, nullable=False),
    *usage_owner_columns(),
    # Current node pools, comma-joined in order ("" when none): the allocation is shared out
    # equally among them.
    Column("nodepools", Text, nullable=False),
    Column("gpu", Float, nullable=False),
    Column("cpu_cores", Float, nullable=False),
    Column("memory_gib", Float, nullable=False),
    Column("pending", Boolean, nullable=False),
    sqlite_with_rowid=False,
)

# Workloads whose latest state still accrues (allocation held or pending): the ledger's live
# part, extended to "now" by a background task. Small: finished workloads leave it.
usage_open = Table(
    "usage_open",
    metadata,
    workload_id(primary_key=True),
    Column("at_ms", BigInteger, nullable=False),
    sqlite_with_rowid=False,
)

# Hourly rollups per workload, UTC hour and node pool; the organisation columns are copied in
# so grouped answers never touch the workloads table. Seconds, not hours: sums stay exact.
usage_hourly = Table(
    "usage_hourly",
    metadata,
    # Hour first: a window of hours is one range of the primary key, and on SQLite (no rowid)
    # the rows themselves lie in that order, so a grouped answer reads them sequentially.
    Column("hour_ms", BigInteger, primary_key=True),
    Column("workload_id", String(36), primary_key=True),
    Column("nodepool", String(253), primary_key=True),
    Column("cluster_id", String(36), nullable=False),
    Column("department_id", String(64), nullable=False),
    Column("project_id", String(64), nullable=False),
    Column("submitter", String(253), nullable=False),
    Column("type", String(128), nullable=False),
    Column("gpu_seconds", Float, nullable=False),
    Column("cpu_core_seconds", Float, nullable=False),
    Column("memory_gib_seconds", Float, nullable=False),
    Column("pending_seconds", Float, nullable=False),
    # Measured over the hour (copied from usage_utilisation): mean GPU utilisation in percent
    # and the share of samples that were idle by the idle-GPU rule; NULL when not measured.
    Column("gpu_utilisation", Float),
    Column("idle_share", Float),
    sqlite_with_rowid=False,
)

# Measured GPU utilisation per workload and hour, kept apart from the rollups so a measurement
# that arrives before the hour's allocation is accrued is not lost.
usage_utilisation = Table(
    "usage_utilisation",
    metadata,
    workload_id(primary_key=True),
    Column("hour_ms", BigInteger, primary_key=True),
    *measured_utilisation_columns(nullable=False),
    sqlite_with_rowid=False,
)

# Consumption reports (the Run:ai Reports API) and the file each produces.
reports = Table(
    "reports",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant_id", Integer, nullable=False),
    Column("name", String(253), nullable=False),
    Column("description", Text),
    Column("start_at", UtcDateTime, nullable=False),
    Column("end_at", UtcDateTime, nullable=False),
    Column("group_by", String(32)),
    Column("filter_by", Json, nullable=False),
    # The creator's readable scope when it was created: the report shows no more than that.
    Column("scope", Json, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("created_by", String(253), nullable=False),
    Column("status", String(16), nullable=False),
    Column("status_message", Text),
    Column("status_updated_at", UtcDateTime, nullable=False),
    Column("file", Text),
    Index(None, "created_at", "id"),
    Index(None, "status", "created_at"),
)

# Named leases: background work that must run in one replica at a time (the report worker, the
# ledger's live part) takes the lease and renews it; another replica takes over when it lapses.
leases = Table(
    "leases",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(64), nullable=False),
    Column("expires_at_ms", BigInteger, nullable=False),
)
