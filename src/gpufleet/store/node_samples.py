"""A node's metrics read from its pods' samples: the pods bound to the node (by cluster and
node name) are the node's share of the embedded metrics store.

Two readings: per GPU, the mean of each ``gpu=<index>`` series the node's pods report in each
interval (pods sharing a GPU report the same device, so their values are averaged, never
added); per pod, each pod's mean in each interval, added up over the node's pods.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gpufleet.core.metric_values import NodeTarget, SampleWindow
from gpufleet.store.metric_samples import IntervalValue, interval_of
from gpufleet.store.tables import pod_metric_samples, workload_pods

S = pod_metric_samples.c
P = workload_pods.c


def _node_samples(node: NodeTarget, metric_type: str, window: SampleWindow) -> list:
    return [
        P.cluster_id == node.cluster_id,
        P.node_name == node.name,
        S.pod_id == P.id,
        S.metric_type == metric_type,
        S.ts_ms >= window.start_ms,
        S.ts_ms < window.end_ms,
    ]


def node_gpu_means(
    conn: Connection, node: NodeTarget, metric_type: str, window: SampleWindow
) -> list[IntervalValue]:
    """Each GPU series' mean over the node's pods, per interval, ordered by series."""
    interval = interval_of(S.ts_ms, window).label("interval")
    statement = (
        sa.select(S.series, interval, sa.func.avg(S.value))
        .where(*_node_samples(node, metric_type, window), S.series != "")
        .group_by(S.series, interval)
        .order_by(S.series, interval)
    )
    return [IntervalValue(s, int(i), float(v)) for s, i, v in conn.execute(statement)]


def node_pod_sums(
    conn: Connection, node: NodeTarget, metric_type: str, window: SampleWindow
) -> list[IntervalValue]:
    """The node's pods' means added up, per interval (series ``""``)."""
    interval = interval_of(S.ts_ms, window).label("interval")
    per_pod = (
        sa.select(S.pod_id, interval, sa.func.avg(S.value).label("value"))
        .where(*_node_samples(node, metric_type, window), S.series == "")
        .group_by(S.pod_id, interval)
        .subquery()
    )
    statement = (
        sa.select(per_pod.c.interval, sa.func.sum(per_pod.c.value))
        .group_by(per_pod.c.interval)
        .order_by(per_pod.c.interval)
    )
    return [IntervalValue("", int(i), float(v)) for i, v in conn.execute(statement)]
