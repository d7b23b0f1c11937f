"""Cluster and node-pool figures over time read from Prometheus (on the Prometheus backend).

A cluster's (or pool's) series are those of its live nodes, selected by name: kube-state-metrics
and cAdvisor by ``prometheus_node_label``, dcgm-exporter by ``prometheus_gpu_node_label``, so
no cluster label is needed on the series. The types answered here are capacity
(``kube_node_status_capacity``) and utilisation; allocation, quota and workload figures stay
with the inventory samples, which know projects and departments. Each point is the value
Prometheus evaluates at its timestamp on the grid of workload metrics (see docs/prometheus.md).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from string import Template

from gpufleet.core.metric_values import SampleWindow
from gpufleet.metrics.backend import Measurement
from gpufleet.metrics.prometheus import PrometheusBackend, QueryGrid
from gpufleet.metrics.prometheus_api import (
    PrometheusClient,
    PrometheusQueryError,
    PrometheusUnavailable,
    QueryAnswer,
    columns,
)
from gpufleet.metrics.promql import gpu_placeholders, matcher, on_the_wire
from gpufleet.settings import Settings

log = logging.getLogger("gpufleet.metrics.prometheus")


def _per_gpu(field: str) -> str:
    # dcgm-exporter repeats a GPU's series per pod it attributes the GPU to: one reading each.
    return f"avg by (${{gpu_node}}, ${{gpu}}) ({field}{{${{gpus}}}} < ${{blank}})"


def _capacity(resource: str) -> str:
    return f'kube_node_status_capacity{{${{nodes}}, resource="{resource}"}}'


_CONTAINERS = '${nodes}, container!="", container!="POD"'
_USED, _FREE = _per_gpu("DCGM_FI_DEV_FB_USED"), _per_gpu("DCGM_FI_DEV_FB_FREE")

# By metric type name (the clusters' and node pools' MetricsType).
CLUSTER_QUERIES: dict[str, str] = {
    "TOTAL_GPU": f"sum({_capacity('nvidia_com_gpu')})",
    "TOTAL_GPU_NODES": f"count({_capacity('nvidia_com_gpu')} > 0)",
    "GPU_UTILIZATION": f"avg({_per_gpu('DCGM_FI_DEV_GPU_UTIL')})",
    "GPU_MEMORY_UTILIZATION": f"sum({_USED}) / (sum({_USED}) + sum({_FREE})) * 100",
    "CPU_UTILIZATION": (
        f"sum(rate(container_cpu_usage_seconds_total{{{_CONTAINERS}}}[${{w}}]))"
        f" / sum({_capacity('cpu')}) * 100"
    ),
    "CPU_MEMORY_UTILIZATION": (
        f"sum(container_memory_working_set_bytes{{{_CONTAINERS}}})"
        f" / sum({_capacity('memory')}) * 100"
    ),
}


class SeriesFailed(Exception):
    """Prometheus could not answer; the message is safe to show (no node or pod names)."""

    def __init__(self, message: str, *, unreachable: bool = False) -> None:
        super().__init__(message)
        self.unreachable = unreachable


def range_query(client: PrometheusClient, query: str, grid: QueryGrid, what: str) -> QueryAnswer:
    """``query`` over the grid; a failure is logged (with the query) and raised as
    ``SeriesFailed`` (without it)."""
    try:
        return client.query_range(query, grid.first_ms, grid.last_ms, grid.step_ms)
    except PrometheusUnavailable as exc:
        log.warning("%s: %s", what, exc)
        raise SeriesFailed(str(exc), unreachable=True) from None
    except PrometheusQueryError as exc:
        log.error("Prometheus query for %s failed (%s): %s", what, exc, query)
        raise SeriesFailed("the Prometheus query failed") from None


class PrometheusClusterSeries:
    """One figure of a set of nodes over a window, by a PromQL range query."""

    answers = frozenset(CLUSTER_QUERIES)

    def __init__(self, settings: Settings, max_concurrency: int = 4) -> None:
        self._client = PrometheusClient(settings, max_connections=max_concurrency)
        self._pool = ThreadPoolExecutor(max_concurrency, thread_name_prefix="prometheus-cluster")
        self._settings = settings

    def query_for(self, metric_type: str, node_names: Sequence[str], step_ms: int) -> str:
        """The PromQL sent for one type over the named nodes at a step."""
        s = self._settings
        values = {
            "nodes": matcher(s.prometheus_node_label, node_names),
            "gpus": matcher(s.prometheus_gpu_node_label, node_names),
            "gpu_node": s.prometheus_gpu_node_label,
            **gpu_placeholders(s, step_ms),
        }
        return on_the_wire(Template(CLUSTER_QUERIES[metric_type]).substitute(values))

    def series(
        self, metric_type: str, node_names: Sequence[str], window: SampleWindow
    ) -> Measurement:
        """The figure's points; none when the nodes have no series. Raises ``SeriesFailed``."""
        if not node_names:
            return Measurement(None, (), ())
        grid = QueryGrid.for_window(window)
        query = self.query_for(metric_type, node_names, grid.step_ms)
        answer = range_query(self._client, query, grid, metric_type)
        try:
            times: list[int] = []
            values: list[str] = []
            for one in answer.series:
                stamps, texts = columns(one)
                times += stamps
                values += texts
            return Measurement(None, times, values)
        except (TypeError, ValueError):
            log.error("Prometheus sent a malformed answer for %s: %s", metric_type, query)
            raise SeriesFailed("the Prometheus answer was malformed") from None

    def many(
        self, asks: Sequence[tuple[str, Sequence[str]]], window: SampleWindow
    ) -> list[Measurement | SeriesFailed]:
        """``series`` of each ``(metric type, node names)``, the queries sent at once; a
        failure comes back in its place."""

        def one(ask: tuple[str, Sequence[str]]) -> Measurement | SeriesFailed:
            try:
                return self.series(ask[0], ask[1], window)
            except SeriesFailed as exc:
                return exc

        return list(self._pool.map(one, asks))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._client.close()


def cluster_series_for(settings: Settings, backend) -> PrometheusClusterSeries | None:
    """Prometheus' cluster series when it is the server's metrics backend, else None."""
    if isinstance(getattr(backend, "inner", backend), PrometheusBackend):
        return PrometheusClusterSeries(settings)
    return None
