"""Headers every response carries, whatever route, mount or error produced it.

One ASGI middleware rather than headers set route by route, so a static file, a 404 from a
mount or a page added later cannot be served without them. It also makes redirects relative:
Starlette builds the ``Location`` of its trailing-slash redirects from the request's ``Host``
header, which a client controls (cache poisoning, links to another site).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.types import Message, Receive, Scope, Send

from gpufleet.api.middleware import HttpMiddleware

# Only this origin: scripts, styles and data come from the server itself, nothing may frame
# a page, and no plugin or <base> can change where relative URLs point.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)
_OWN = {name for name, _ in SECURITY_HEADERS}


def relative_location(location: str) -> str:
    """The path, query and fragment of a redirect target, without scheme and host.

    A leading ``//`` would still name another host, so it collapses to one slash.
    """
    parts = urlsplit(location)
    path = "/" + parts.path.lstrip("/")
    query = f"?{parts.query}" if parts.query else ""
    fragment = f"#{parts.fragment}" if parts.fragment else ""
    return path + query + fragment


def _harden(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    kept = []
    for name, value in headers:
        lowered = name.lower()
        if lowered in _OWN:
            continue
        if lowered == b"location":
            value = relative_location(value.decode("latin-1")).encode("latin-1")
        kept.append((name, value))
    return [*kept, *SECURITY_HEADERS]


class HardenedResponses(HttpMiddleware):
    """Adds ``SECURITY_HEADERS`` to every HTTP response and makes ``Location`` relative."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_hardened(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": _harden(list(message.get("headers", [])))}
            await send(message)

        await self.app(scope, receive, send_hardened)
