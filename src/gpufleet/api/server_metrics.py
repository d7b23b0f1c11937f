"""The server's own Prometheus metrics, in a registry per app.

A registry per app (never the process-global one) keeps apps built side by side, as the tests
do, from colliding. Labels are bounded: routes are templates (``/api/v1/workloads/{workloadId}``),
never raw paths, and an ingest cluster label is written only after the caller was allowed to
ingest for that cluster.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.engine import Engine
from sqlalchemy.pool import QueuePool

import gpufleet

# Request and query latencies: from a cached count to a slow metrics range query.
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_QUERY_START = "gpufleet_query_start"


class ServerMetrics:
    """Every metric one server process exports."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        Gauge(
            "gpufleet_build_info", "The running gpufleet version.", ["version"], registry=registry
        ).labels(gpufleet.__version__).set(1)
        self.requests = Counter(
            "gpufleet_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.request_seconds = Histogram(
            "gpufleet_http_request_duration_seconds",
            "Time to answer an HTTP request, by method, route template and status.",
            ["method", "route", "status"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.in_flight = Gauge(
            "gpufleet_http_requests_in_flight",
            "HTTP requests being answered right now.",
            registry=registry,
        )
        self.ingest_items = Counter(
            "gpufleet_ingest_items",
            "Workload records pushed by cluster agents, by cluster and outcome "
            "(accepted, stale, deleted, refused).",
            ["cluster", "outcome"],
            registry=registry,
        )
        self.query_seconds = Histogram(
            "gpufleet_db_query_duration_seconds",
            "Time of one database statement, by operation (select, insert, update, ...).",
            ["operation"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.backend_seconds = Histogram(
            "gpufleet_metrics_backend_duration_seconds",
            "Time of one call to the metrics backend, by backend and operation.",
            ["backend", "operation"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.backend_errors = Counter(
            "gpufleet_metrics_backend_errors",
            "Failed metrics backend queries, by backend, operation and cause "
            "(unreachable, query, exception).",
            ["backend", "operation", "cause"],
            registry=registry,
        )
        self.task_runs = Counter(
            "gpufleet_background_task_runs",
            "Runs of the periodic tasks, by task and outcome (ok, error).",
            ["task", "outcome"],
            registry=registry,
        )
        self.task_last_success = Gauge(
            "gpufleet_background_task_last_success_timestamp_seconds",
            "When each periodic task last succeeded (Unix time).",
            ["task"],
            registry=registry,
        )
        self.ready = Gauge(
            "gpufleet_ready",
            "1 while the server accepts traffic, 0 while it drains.",
            registry=registry,
        )
        self.ready.set(1)

    def record_task(self, task: str, ok: bool) -> None:
        """Count one run of a periodic task."""
        self.task_runs.labels(task, "ok" if ok else "error").inc()
        if ok:
            self.task_last_success.labels(task).set(time.time())

    def record_ingest(self, cluster: str, **counts: int) -> None:
        """Count the items of one ingest request by outcome."""
        for outcome, count in counts.items():
            if count:
                self.ingest_items.labels(cluster, outcome).inc(count)

    def watch_engine(self, engine: Engine, max_connections: int) -> None:
        """Time every statement of ``engine`` and export its pool's occupancy."""
        sa.event.listen(engine, "before_cursor_execute", _start_query)
        sa.event.listen(engine, "after_cursor_execute", self._end_query)
        self.registry.register(PoolCollector(engine, max_connections))

    def _end_query(self, conn, _cursor, statement, _params, _context, _many) -> None:
        started = conn.info.pop(_QUERY_START, None)
        if started is not None:
            operation = statement.lstrip().split(None, 1)[0].lower() if statement else "other"
            if operation not in _OPERATIONS:
                operation = "other"
            self.query_seconds.labels(operation).observe(time.perf_counter() - started)


_OPERATIONS = frozenset({"select", "insert", "update", "delete", "with", "begin", "commit"})


def _start_query(conn, _cursor, _statement, _params, _context, _many) -> None:
    conn.info[_QUERY_START] = time.perf_counter()


class PoolCollector(Collector):
    """Connections of the engine's pool, read at scrape time."""

    def __init__(self, engine: Engine, max_connections: int) -> None:
        self.engine = engine
        self.max_connections = max_connections

    def collect(self) -> Iterator[GaugeMetricFamily]:
        pool = self.engine.pool
        if not isinstance(pool, QueuePool):
            return
        in_use = GaugeMetricFamily(
            "gpufleet_db_pool_connections",
            "Database connections of the pool, by state (in_use, idle).",
            labels=["state"],
        )
        in_use.add_metric(["in_use"], pool.checkedout())
        in_use.add_metric(["idle"], pool.checkedin())
        yield in_use
        yield GaugeMetricFamily(
            "gpufleet_db_pool_max_connections",
            "Most connections the pool opens (pool size plus overflow).",
            value=self.max_connections,
        )
