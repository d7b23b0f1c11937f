"""Reading the workload facts a metrics backend needs, and writing back idle GPUs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gpufleet.core.metric_values import IdleGpus, NodeTarget, PodTarget, WorkloadTarget
from gpufleet.query.scope import WorkloadScope
from gpufleet.schemas.enums import Phase
from gpufleet.store.tables import workload_pods, workloads
from gpufleet.store.workload_filters import scope_condition

W = workloads.c


def target_of(row, pod_names: tuple[str, ...] = ()) -> WorkloadTarget:
    """The target of a row holding the workload's id, cluster, namespace, name, allocated GPUs
    and phase."""
    return WorkloadTarget(
        id=row.id,
        cluster_id=row.cluster_id,
        namespace=row.namespace,
        name=row.name,
        pod_names=pod_names,
        allocated_gpus=float(row.allocated_gpu or 0.0),
        phase=row.phase,
    )


_COLUMNS = (W.id, W.cluster_id, W.namespace, W.name, W.allocated_gpu, W.phase)


def workload_target(
    conn: Connection, workload_id: str, scope: WorkloadScope
) -> WorkloadTarget | None:
    """The target of one workload (deleted ones included: their history stays readable); None
    if it is unknown or outside ``scope``. One statement: a row per pod, or one without."""
    pods = workload_pods.c
    statement = (
        sa.select(*_COLUMNS, pods.name.label("pod_name"))
        .outerjoin(workload_pods, pods.workload_id == W.id)
        .where(W.id == workload_id)
        .order_by(pods.name)
    )
    if not scope.everything:
        statement = statement.where(scope_condition(scope))
    rows = conn.execute(statement).all()
    if not rows:
        return None
    return target_of(rows[0], tuple(row.pod_name for row in rows if row.pod_name is not None))


def pod_target(conn: Connection, workload_id: str, pod_id: str) -> PodTarget | None:
    """One pod of one workload (deleted pods included: their history stays readable)."""
    pods = workload_pods.c
    row = conn.execute(
        sa.select(pods.id, pods.workload_id, pods.cluster_id, pods.name, W.namespace)
        .join(workloads, W.id == pods.workload_id)
        .where(pods.id == pod_id, pods.workload_id == workload_id)
    ).first()
    if row is None:
        return None
    return PodTarget(row.id, row.workload_id, row.cluster_id, row.namespace, row.name)


# Targets read at once: what the idle-GPU task holds in memory, however many workloads run.
TARGET_PAGE = 1000
# Lists of ids are given when a statement runs, not built into it: an ``in_`` over a literal
# list leaves a reference cycle holding the list, so a task's pages would pile up as garbage
# until a full collection.
_IDS = sa.bindparam("ids", expanding=True)
_LIVE_PODS = (
    sa.select(workload_pods.c.workload_id, workload_pods.c.name)
    .where(workload_pods.c.workload_id.in_(_IDS), workload_pods.c.deleted_at.is_(None))
    .order_by(workload_pods.c.workload_id, workload_pods.c.name)
)
_CLUSTERS = sa.select(W.id, W.cluster_id).where(W.id.in_(_IDS))


def running_gpu_targets(
    conn: Connection, after: str = "", limit: int = TARGET_PAGE
) -> list[WorkloadTarget]:
    """Live Running workloads holding GPUs, with their pods: the ones idle GPUs are computed
    for. At most ``limit`` of them, by id, after the id ``after`` ("" from the first).

    Paged by the id's key, which orders as the id does: the phase index holds it next to the
    phase, so each page continues the index walk where the last one stopped instead of
    sorting every running workload again."""
    live = [W.deleted_at.is_(None), W.phase == Phase.RUNNING.value, W.allocated_gpu > 0]
    if after:
        live.append(W.id_key > after)
    statement = sa.select(*_COLUMNS).where(*live).order_by(W.id_key).limit(limit)
    rows = conn.execute(statement).all()
    if not rows:
        return []
    pods: dict[str, list[str]] = {}
    for pod in conn.execute(_LIVE_PODS, {"ids": [row.id for row in rows]}):
        pods.setdefault(pod.workload_id, []).append(pod.name)
    return [target_of(row, tuple(pods.get(row.id, ()))) for row in rows]


def write_idle_gpus(conn: Connection, idle: Mapping[str, IdleGpus]) -> int:
    """Store idle GPU figures; only rows whose figures changed are written."""
    if not idle:
        return 0
    statement = (
        workloads.update()
        .where(
            W.id == sa.bindparam("workload_id"),
            sa.or_(
                W.idle_gpus.is_(None),
                W.idle_allocated_gpus.is_(None),
                W.idle_gpus != sa.bindparam("idle"),
                W.idle_allocated_gpus != sa.bindparam("idle_allocated"),
            ),
        )
        .values(idle_gpus=sa.bindparam("idle"), idle_allocated_gpus=sa.bindparam("idle_allocated"))
    )
    rows = [
        {"workload_id": wid, "idle": v.idle_gpus, "idle_allocated": v.idle_allocated_gpus}
        for wid, v in idle.items()
    ]
    result = conn.execute(statement, rows)
    return int(result.rowcount or 0)


def workload_clusters(conn: Connection, workload_ids: Sequence[str]) -> dict[str, str]:
    """The cluster of each known workload among ``workload_ids`` (deleted ones included)."""
    clusters: dict[str, str] = {}
    for offset in range(0, len(workload_ids), 500):
        chunk = list(workload_ids[offset : offset + 500])
        clusters.update((row.id, row.cluster_id) for row in conn.execute(_CLUSTERS, {"ids": chunk}))
    return clusters


def node_target_of(row) -> NodeTarget:
    """The target of a ``nodes`` row: where its series are and what its capacity is."""
    return NodeTarget(
        id=row.id,
        cluster_id=row.cluster_id,
        name=row.name,
        gpu_count=int(row.gpu_count),
        gpu_memory_bytes=row.gpu_memory_bytes,
        cpu_cores=row.cpu_cores,
        memory_bytes=row.memory_bytes,
    )
