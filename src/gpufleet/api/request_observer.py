"""ASGI middleware around every request: request id, metrics and one access log line.

An ``X-Request-Id`` sent by the caller is kept when it is well-formed (so one id follows a
request through proxies), otherwise a new one is made; either way it is echoed on the response
and carried by every log line written while the request is answered.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from dataclasses import dataclass

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gpufleet.api.logs import REQUEST_ID
from gpufleet.api.middleware import HttpMiddleware
from gpufleet.api.server_metrics import ServerMetrics

SCOPE_KEY = "gpufleet.request"
_WELL_FORMED_ID = re.compile(rb"[A-Za-z0-9._:/+=@-]{1,128}")
_access = logging.getLogger("gpufleet.access")
# Probes and scrapes arrive every few seconds; their lines are debug so they do not drown the rest.
_QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})


@dataclass(slots=True)
class RequestInfo:
    """What the access line reports; authentication fills in ``client_id``."""

    request_id: str
    client_id: str | None = None


def request_id_from(scope: Scope) -> str:
    """The caller's ``X-Request-Id`` when well-formed, else a new random id."""
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id" and _WELL_FORMED_ID.fullmatch(value):
            return value.decode("ascii")
    return uuid.uuid4().hex


def route_template(scope: Scope) -> str:
    """The matched route's template (``/api/v1/workloads/{workloadId}``), never the raw path."""
    route = scope.get("route")
    if route is not None and hasattr(route, "path_format"):
        return route.path_format
    if "endpoint" in scope:  # a mounted app (the dashboard's assets)
        return scope.get("root_path", "") + "/{path}"
    return "unmatched"


class RequestObserver(HttpMiddleware):
    """Times, counts and logs each HTTP request; echoes its request id."""

    def __init__(self, app: ASGIApp, metrics: ServerMetrics) -> None:
        super().__init__(app)
        self.metrics = metrics

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        info = RequestInfo(request_id_from(scope))
        scope[SCOPE_KEY] = info
        token = REQUEST_ID.set(info.request_id)
        status = 500  # what the caller gets when the app raises before answering

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message).append("X-Request-Id", info.request_id)
            await send(message)

        started = time.perf_counter()
        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self.metrics.in_flight.dec()
            self._record(scope, info, status, time.perf_counter() - started)
            REQUEST_ID.reset(token)

    def _record(self, scope: Scope, info: RequestInfo, status: int, seconds: float) -> None:
        method, route = scope["method"], route_template(scope)
        self.metrics.requests.labels(method, route, str(status)).inc()
        self.metrics.request_seconds.labels(method, route, str(status)).observe(seconds)
        duration_ms = round(seconds * 1000, 2)
        level = logging.DEBUG if route in _QUIET_ROUTES else logging.INFO
        _access.log(
            level,
            "%s %s %d %.1fms",
            method,
            route,
            status,
            duration_ms,
            extra={
                "method": method,
                "route": route,
                "status": status,
                "duration_ms": duration_ms,
                "client_id": info.client_id,
                "request_id": info.request_id,
            },
        )
