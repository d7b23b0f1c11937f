"""The agent's own health and Prometheus metrics, served over HTTP.

``/healthz`` answers 200 once every watched kind has been listed and while the watch threads
live, else 503 with the reason; ``/metrics`` is the Prometheus text format.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest


class AgentMetrics:
    """The agent's Prometheus metrics, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.watch_restarts = Counter(
            "gpufleet_agent_watch_restarts",
            "Watch streams restarted, by kind and cause (gone, error, timeout).",
            ["kind", "cause"],
            registry=self.registry,
        )
        self.watch_events = Counter(
            "gpufleet_agent_watch_events",
            "Watch events received, by kind and type.",
            ["kind", "type"],
            registry=self.registry,
        )
        self.kind_available = Gauge(
            "gpufleet_agent_kind_available",
            "1 when the kind is served by the API server (its CRD installed).",
            ["kind"],
            registry=self.registry,
        )
        self.push_latency = Histogram(
            "gpufleet_agent_push_latency_seconds",
            "Duration of successful ingest requests.",
            ["endpoint"],
            registry=self.registry,
        )
        self.push_failures = Counter(
            "gpufleet_agent_push_failures",
            "Ingest requests that failed, by endpoint and cause.",
            ["endpoint", "cause"],
            registry=self.registry,
        )
        self.pushed_workloads = Counter(
            "gpufleet_agent_pushed_workloads",
            "Workload records accepted by the server.",
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "gpufleet_agent_queue_depth",
            "Workload updates and deletions waiting to be pushed.",
            registry=self.registry,
        )
        self.tracked_objects = Gauge(
            "gpufleet_agent_tracked_objects",
            "Kubernetes objects held in memory.",
            registry=self.registry,
        )
        self.workloads = Gauge(
            "gpufleet_agent_workloads", "Workloads currently tracked.", registry=self.registry
        )
        self.full_syncs = Counter(
            "gpufleet_agent_full_syncs", "Full syncs pushed.", registry=self.registry
        )


class HealthServer:
    """``/healthz`` and ``/metrics`` on a small threaded HTTP server."""

    def __init__(
        self,
        host: str,
        port: int,
        metrics: AgentMetrics,
        health: Callable[[], tuple[bool, dict[str, Any]]],
    ) -> None:
        handler = _handler(metrics, health)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        """The port actually bound."""
        return int(self._server.server_address[1])

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()


def _handler(
    metrics: AgentMetrics, health: Callable[[], tuple[bool, dict[str, Any]]]
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def _send(self, code: int, body: bytes, content_type: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path in ("/healthz", "/readyz"):
                healthy, detail = health()
                body = json.dumps({"status": "ok" if healthy else "unhealthy", **detail})
                self._send(200 if healthy else 503, body.encode(), "application/json")
            elif self.path == "/metrics":
                self._send(200, generate_latest(metrics.registry), CONTENT_TYPE_LATEST)
            else:
                self._send(404, b'{"status": "not found"}', "application/json")

    return Handler
