"""Limits on request bodies, applied while the body arrives and before the app reads it.

Every body is bounded (``ingest_max_body_bytes`` under ``/api/v1/ingest/``, ``max_body_bytes``
elsewhere): a declared ``Content-Length`` over the limit is refused before a byte is read, and a
body that grows past it is refused as soon as it does. The whole body must arrive within
``body_read_timeout_seconds``, so a client trickling bytes holds a connection for a bounded time.
A body sent to an endpoint that needs a token is only read once the token has been verified.
"""

from __future__ import annotations

import anyio
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import Message, Receive, Scope, Send

from gpufleet.api.deps import AppState, authenticate, authenticate_known
from gpufleet.api.errors import error_response, status_of
from gpufleet.api.middleware import HttpMiddleware
from gpufleet.core.errors import DomainError

INGEST_PREFIX = "/api/v1/ingest/"
# The only endpoint under /api/v1 that takes a body without a token.
ANONYMOUS_PATHS = frozenset({"/api/v1/token"})


def body_limit(settings, path: str) -> int:
    """The largest body accepted on ``path``, in bytes."""
    if path.startswith(INGEST_PREFIX):
        return settings.ingest_max_body_bytes
    return settings.max_body_bytes


def _too_large(limit: int) -> HTTPException:
    return HTTPException(413, f"Request body exceeds the limit of {limit} bytes.")


class LimitedBody:
    """A ``receive`` that counts body bytes and enforces the size limit and the read deadline.

    Raising ``HTTPException`` (not another error) matters: FastAPI passes it through its body
    reading unchanged, so the exception handlers answer it in the Error shape.
    """

    def __init__(self, receive: Receive, limit: int, timeout: float) -> None:
        self._receive = receive
        self._limit = limit
        self._timeout = timeout
        self._deadline: float | None = None
        self._size = 0
        self._done = False

    async def __call__(self) -> Message:
        if self._done:
            # After the body, receive only waits for a disconnect: no deadline applies.
            return await self._receive()
        now = anyio.current_time()
        if self._deadline is None:
            self._deadline = now + self._timeout
        try:
            with anyio.fail_after(max(self._deadline - now, 0)):
                message = await self._receive()
        except TimeoutError:
            raise HTTPException(
                408, f"The request body did not arrive within {self._timeout:g} seconds."
            ) from None
        if message["type"] == "http.request":
            self._size += len(message.get("body", b""))
            if self._size > self._limit:
                raise _too_large(self._limit)
            self._done = not message.get("more_body", False)
        return message


def _declared_length(headers: Headers) -> int | None:
    value = headers.get("content-length", "")
    return int(value) if value.isdigit() else None


def _may_carry_body(headers: Headers) -> bool:
    return bool(_declared_length(headers)) or "transfer-encoding" in headers


def _needs_token(path: str) -> bool:
    return path.startswith("/api/v1/") and path not in ANONYMOUS_PATHS


class RequestLimits(HttpMiddleware):
    """ASGI middleware applying the body limits of the app's ``Settings``."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        state: AppState = scope["app"].state.gpufleet
        headers = Headers(scope=scope)
        path = scope["path"]
        limit = body_limit(state.settings, path)
        declared = _declared_length(headers)
        if declared is not None and declared > limit:
            await _answer(scope, receive, send, 413, _too_large(limit).detail)
            return
        if _may_carry_body(headers) and _needs_token(path):
            scheme, _, token = headers.get("authorization", "").partition(" ")
            token = token.strip()
            try:
                principal = authenticate_known(state, scheme, token)
                if principal is None:
                    principal = await anyio.to_thread.run_sync(authenticate, state, scheme, token)
            except DomainError as exc:
                await _answer(scope, receive, send, status_of(exc), str(exc))
                return
            # get_principal takes it from here instead of verifying the token twice.
            scope.setdefault("state", {})["principal"] = principal
        limited = LimitedBody(receive, limit, state.settings.body_read_timeout_seconds)
        await self.app(scope, limited, send)


async def _answer(scope: Scope, receive: Receive, send: Send, code: int, message: str) -> None:
    response = error_response(code, message)
    # The body is left unread, so the connection cannot carry another request.
    response.headers["connection"] = "close"
    await response(scope, receive, send)
