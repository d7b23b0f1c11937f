"""The base of gpufleet's ASGI middleware: HTTP requests are handled, other scopes pass."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send


class HttpMiddleware:
    """An ASGI middleware acting on HTTP requests only; lifespan and other scopes go straight
    to the wrapped app. Subclasses implement ``handle``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.handle(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one HTTP request, usually by calling ``self.app`` with wrapped channels."""
        raise NotImplementedError
