"""Measured GPU utilisation per workload and hour, from the embedded samples.

For each hour a workload's ``GPU_UTILIZATION`` samples touch: the mean of the samples (every
GPU series counts alike) and the share of samples that were idle by the idle-GPU rule — at or
below the threshold, with every sample of that GPU in the window before it at or below it too,
and the GPU already reporting when that window began (as ``metrics.embedded`` decides it for
``idleGpus``). Both are window functions over the samples' primary key range, recomputed only
for the hours a batch of samples touched (late samples included).
"""

from __future__ import annotations

from collections.abc import Mapping

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gpufleet.core.metric_values import WorkloadTarget
from gpufleet.store.metric_targets import TARGET_PAGE, target_of
from gpufleet.store.tables import metric_samples, usage_hourly, workload_pods, workloads
from gpufleet.store.usage_rollups import HOUR_MS, hour_of, write_utilisation

T = metric_samples.c
H = usage_hourly.c
W = workloads.c
UTILISATION_TYPE = "GPU_UTILIZATION"


def refresh_utilisation(
    conn: Connection,
    touched: Mapping[str, tuple[int, int]],
    *,
    threshold_percent: float,
    window_ms: int,
) -> int:
    """Recompute the hours of each ``{workload_id: (first_ts, last_ts)}`` a batch touched.

    A sample also decides whether later samples up to two windows on are idle, so those hours
    are recomputed too. Returns how many (workload, hour) figures were written.
    """
    measured = []
    for workload_id, (first_ms, last_ms) in sorted(touched.items()):
        start = hour_of(first_ms)
        end = hour_of(last_ms + 2 * window_ms) + HOUR_MS
        statement = _hourly_statement(workload_id, start, end, threshold_percent, window_ms)
        for row in conn.execute(statement):
            measured.append(
                {
                    "workload_id": workload_id,
                    "hour_ms": int(row.hour_ms),
                    "gpu_utilisation": float(row.mean),
                    "idle_share": float(row.idle),
                }
            )
    write_utilisation(conn, measured)
    return len(measured)


def _hourly_statement(
    workload_id: str, start_ms: int, end_ms: int, threshold: float, window_ms: int
) -> sa.Select:
    # Offsets of RANGE frames must be literals on both dialects (they are our own integers).
    order = "ORDER BY ts_ms RANGE BETWEEN {} PRECEDING AND CURRENT ROW"
    recent_max = sa.literal_column(
        f"max(value) OVER (PARTITION BY series {order.format(int(window_ms) - 1)})"
    )
    earliest = sa.literal_column(
        f"min(ts_ms) OVER (PARTITION BY series {order.format(2 * int(window_ms))})"
    )
    samples = (
        sa.select(
            T.ts_ms,
            T.value,
            recent_max.label("recent_max"),
            earliest.label("earliest"),
        )
        .where(
            T.workload_id == workload_id,
            T.metric_type == UTILISATION_TYPE,
            T.ts_ms >= start_ms - 2 * window_ms,
            T.ts_ms < end_ms,
        )
        .subquery()
    )
    idle = sa.case(
        (
            sa.and_(
                samples.c.recent_max <= threshold,
                samples.c.earliest <= samples.c.ts_ms - window_ms,
            ),
            1.0,
        ),
        else_=0.0,
    )
    hour = (samples.c.ts_ms - samples.c.ts_ms % HOUR_MS).label("hour_ms")
    return (
        sa.select(hour, sa.func.avg(samples.c.value).label("mean"), sa.func.avg(idle).label("idle"))
        .where(samples.c.ts_ms >= start_ms)
        .group_by(hour)
        .order_by(hour)
    )


def gpu_holders(
    conn: Connection, hour_ms: int, after: str = "", limit: int = TARGET_PAGE
) -> tuple[list[WorkloadTarget], str | None]:
    """Workloads that held GPUs in the hour, with every pod they ever reported: the ones whose
    utilisation an external metrics store is asked for. At most ``limit`` holders, by id,
    after the id ``after``; with them the id to continue after (None past the last)."""
    held = list(
        conn.execute(
            sa.select(H.workload_id)
            .where(H.hour_ms == hour_ms, H.gpu_seconds > 0, H.workload_id > after)
            .group_by(H.workload_id)
            .order_by(H.workload_id)
            .limit(limit)
        ).scalars()
    )
    if not held:
        return [], None
    rows = conn.execute(
        sa.select(
            W.id,
            W.cluster_id,
            W.namespace,
            W.name,
            W.allocated_gpu,
            W.phase,
            workload_pods.c.name.label("pod"),
        )
        .join(workload_pods, workload_pods.c.workload_id == W.id)
        .where(W.id.in_(held))
        .order_by(W.id, workload_pods.c.name)
    )
    pods: dict[str, list[str]] = {}
    found: dict[str, object] = {}
    for row in rows:
        found.setdefault(row.id, row)
        pods.setdefault(row.id, []).append(row.pod)
    targets = [target_of(row, tuple(pods[workload_id])) for workload_id, row in found.items()]
    return targets, held[-1]
