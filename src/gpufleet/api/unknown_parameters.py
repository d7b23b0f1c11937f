"""A ``Warning`` header naming the query parameters a route does not read.

Unknown parameters are accepted, since clients send extras, but a misspelt one
(``filterby=phase==Running``) would otherwise change nothing without a word. The answer names
what was ignored in the format of RFC 9111 section 5.5, as Kubernetes sends its warnings::

    Warning: 299 - "unknown query parameters ignored: filterby"
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

WARNING_CODE = 299  # "miscellaneous persistent warning"
MAX_NAMES = 10
MAX_NAME_LENGTH = 64


def declared_parameters(dependant: Dependant) -> frozenset[str]:
    """The query parameter names a route (or dependency) and its dependencies read."""
    names = {field.alias for field in dependant.query_params}
    for dependency in dependant.dependencies:
        names |= declared_parameters(dependency)
    return frozenset(names)


def _printable(name: str) -> str:
    # The header is latin-1 and a quoted string: keep visible ASCII, without quote or backslash.
    cleaned = "".join(c if " " <= c <= "~" and c not in '"\\' else "?" for c in name)
    return cleaned[:MAX_NAME_LENGTH]


def ignored_parameters(query_string: bytes, declared: frozenset[str]) -> list[str]:
    """Names in the query string the route does not read, once each, in order."""
    pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
    names = dict.fromkeys(name for name, _ in pairs)
    return [name for name in names if name not in declared]


def warning_value(ignored: list[str]) -> str:
    """The ``Warning`` header naming the ignored parameters."""
    shown = ", ".join(_printable(name) for name in ignored[:MAX_NAMES])
    more = f" and {len(ignored) - MAX_NAMES} more" if len(ignored) > MAX_NAMES else ""
    return f'{WARNING_CODE} - "unknown query parameters ignored: {shown}{more}"'


class UnknownParameterWarnings:
    """Adds the ``Warning`` header to answers of API routes that were sent unknown parameters."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._declared: dict[int, frozenset[str]] = {}

    def _ignored(self, scope: Scope) -> list[str]:
        route = scope.get("route")  # set by the router once it matched
        if not isinstance(route, APIRoute):
            return []
        declared = self._declared.get(id(route))
        if declared is None:
            declared = self._declared[id(route)] = declared_parameters(route.dependant)
        return ignored_parameters(scope["query_string"], declared)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope.get("query_string"):
            await self.app(scope, receive, send)
            return

        async def send_with_warning(message: Message) -> None:
            if message["type"] == "http.response.start":
                ignored = self._ignored(scope)
                if ignored:
                    header = (b"warning", warning_value(ignored).encode("latin-1"))
                    message = {**message, "headers": [*message.get("headers", []), header]}
            await send(message)

        await self.app(scope, receive, send_with_warning)
