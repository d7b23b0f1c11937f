"""Serving an app with uvicorn: sockets bound before anything else, and a graceful stop.

On SIGTERM (or Ctrl-C) the server first reports not ready on ``/readyz`` while it keeps
serving for ``shutdown_drain_seconds``, so load balancers stop sending it traffic; then it stops
accepting connections, lets requests in flight finish for up to ``shutdown_timeout_seconds``,
and exits 0. A second signal during the drain skips the rest of it.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator

import uvicorn
from prometheus_client.exposition import choose_encoder
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from gpufleet.api.http_protocol import BoundedHttpToolsProtocol
from gpufleet.api.server_metrics import ServerMetrics
from gpufleet.settings import Settings

log = logging.getLogger("gpufleet.server")
_LISTEN_BACKLOG = 2048
# Allocations between young collections (Python's default is 700). A batch of thousands of
# reported records allocates hundreds of thousands of objects, most of which live until the
# response: at the default, young collections keep promoting them and every few requests a
# full collection walks the whole heap (tens of milliseconds, a third of a batch's work).
_GC_YOUNG_THRESHOLD = 20_000


def tune_garbage_collection() -> None:
    """Leave what exists once serving starts (modules, schemas, compiled statements) out of
    every later collection, and collect young objects less often."""
    gc.collect()
    gc.freeze()
    _young, middle, old = gc.get_threshold()
    gc.set_threshold(_GC_YOUNG_THRESHOLD, middle, old)


class CannotListen(Exception):
    """A listening socket could not be bound (port in use, address not available, denied)."""


class Readiness:
    """Whether ``/readyz`` reports ready; turned off once, when shutdown begins."""

    def __init__(self, metrics: ServerMetrics) -> None:
        self.ready = True
        self._metrics = metrics

    def drain(self) -> None:
        """Report not ready from now on."""
        self.ready = False
        self._metrics.ready.set(0)


def metrics_response(metrics: ServerMetrics, accept: str | None) -> Response:
    """The registry in the format the scraper asked for (Prometheus text or OpenMetrics)."""
    encoder, content_type = choose_encoder(accept or "")
    return Response(encoder(metrics.registry), media_type=content_type)


def listen(host: str, port: int) -> socket.socket:
    """A socket listening on ``host:port``; raises ``CannotListen`` naming the address.

    The socket says it is TCP (``IPPROTO_TCP``, not the default protocol 0): asyncio turns
    Nagle's algorithm off only on connections of such a socket, and with it on, a response
    written as headers then body waited for the client's delayed acknowledgement (40 ms on
    Linux) on every keep-alive request with a small answer.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        sock.listen(_LISTEN_BACKLOG)
    except OSError as exc:
        sock.close()
        reason = (exc.strerror or str(exc)).lower()
        raise CannotListen(f"cannot listen on {host}:{port}: {reason}") from None
    return sock


class MetricsPortApp:
    """Routes connections to the metrics port to ``/metrics`` alone, the rest to the app."""

    def __init__(self, app: ASGIApp, metrics: ServerMetrics, metrics_port: int) -> None:
        self.app = app
        self.metrics = metrics
        self.metrics_port = metrics_port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        server = scope.get("server") or (None, None)
        if scope["type"] != "http" or server[1] != self.metrics_port:
            await self.app(scope, receive, send)
            return
        if scope["path"] != "/metrics":
            response = Response(b"not found\n", status_code=404, media_type="text/plain")
        else:
            accept = dict(scope["headers"]).get(b"accept", b"").decode("latin-1")
            response = metrics_response(self.metrics, accept)
        await response(scope, receive, send)


class GracefulServer(uvicorn.Server):
    """uvicorn's server with a drain period before it stops accepting connections."""

    def __init__(
        self,
        config: uvicorn.Config,
        readiness: Readiness,
        drain_seconds: float,
        parent: int | None = None,
    ):
        super().__init__(config)
        self.readiness = readiness
        self.drain_seconds = drain_seconds
        # A worker's parent process: when it is gone, nobody would ever stop this one.
        self.parent = parent
        self._drain_until: float | None = None

    def handle_exit(self, sig: int, frame) -> None:
        if self._drain_until is None and not self.should_exit:
            self.readiness.drain()
            self._drain_until = time.monotonic() + self.drain_seconds
            log.info(
                "shutting down: not ready; refusing new connections in %.1fs",
                self.drain_seconds,
            )
            if self.drain_seconds > 0:
                return
        super().handle_exit(sig, frame)

    async def on_tick(self, counter: int) -> bool:
        orphaned = self.parent is not None and os.getppid() != self.parent
        if orphaned and self._drain_until is None and not self.should_exit:
            log.warning("the parent process is gone; stopping")
            self.handle_exit(signal.SIGTERM, None)
        if self._drain_until is not None and time.monotonic() >= self._drain_until:
            self.should_exit = True
        return await super().on_tick(counter)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # Like uvicorn's, but the signal is not raised again afterwards: a graceful stop exits 0.
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        originals = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in originals.items():
                signal.signal(sig, handler)


def serve(
    app: ASGIApp,
    settings: Settings,
    readiness: Readiness,
    sockets: list[socket.socket],
    parent: int | None = None,
) -> None:
    """Serve ``app`` on the bound ``sockets`` until a signal stops it gracefully (or, in a
    worker, until its ``parent`` process is gone)."""
    config = uvicorn.Config(
        app,
        # llhttp's parser with a bound on a request's head (api/http_protocol.py); uvloop's
        # event loop where it is installed (every platform but Windows).
        http=functools.partial(
            BoundedHttpToolsProtocol, head_timeout_seconds=settings.head_read_timeout_seconds
        ),
        loop="auto",
        ws="none",  # no WebSocket endpoint: an upgrade request is an ordinary request
        log_config=None,
        access_log=False,
        lifespan="on",
        # Forwarded headers are handled by the app itself (settings.trusted_proxies); uvicorn's
        # own handling would believe any X-Forwarded-For arriving from loopback.
        proxy_headers=False,
        timeout_graceful_shutdown=settings.shutdown_timeout_seconds,
    )
    server = GracefulServer(config, readiness, settings.shutdown_drain_seconds, parent)
    tune_garbage_collection()
    server.run(sockets=sockets)
