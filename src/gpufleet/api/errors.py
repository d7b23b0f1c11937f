"""Every error leaves the server in the reference ``Error`` shape ``{code, message, details?}``.

Parameter validation is 400 naming the parameter (never 422); a database that cannot be
reached is 503; anything unexpected is 500 with no internals in the body.
"""

from __future__ import annotations

import logging

import orjson
import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from gpufleet.core import errors as domain
from gpufleet.store.dialect import is_statement_timeout

log = logging.getLogger("gpufleet.api")

_DEFAULT_MESSAGES = {
    400: "Bad request.",
    401: "Unauthorized.",
    403: "You do not have sufficient permissions.",
    404: "Resource not found.",
    405: "Method not allowed.",
    408: "Request timeout.",
    413: "Request entity too large.",
    429: "Too many requests.",
    500: "Something went wrong.",
    503: "Please try again in few minutes.",
}

# A database that cannot be reached, or no connection free within the pool timeout.
STORE_UNAVAILABLE = "The workload store is unavailable; please try again shortly."


# The one place a domain error becomes an HTTP status; a subclass takes its nearest base's.
STATUS_OF_ERROR: dict[type[domain.DomainError], int] = {
    domain.Invalid: 400,
    domain.Unauthenticated: 401,
    domain.Forbidden: 403,
    domain.NotFound: 404,
    domain.Conflict: 409,
    domain.TooLarge: 413,
    domain.TooManyRequests: 429,
    domain.UpstreamFailed: 500,
    domain.Unavailable: 503,
}


def status_of(error: domain.DomainError) -> int:
    """The HTTP status answering a domain error."""
    for kind in type(error).__mro__:
        if kind in STATUS_OF_ERROR:
            return STATUS_OF_ERROR[kind]
    return 500


def error_response(
    code: int, message: str, details: str | None = None, request: Request | None = None
) -> Response:
    """The Error body; a route may add fields of its own protocol through
    ``request.state.error_fields`` (the token endpoint's OAuth 2.0 form answers do)."""
    body: dict[str, object] = {"code": code, "message": message}
    if details:
        body["details"] = details
    extra = getattr(request.state, "error_fields", None) if request is not None else None
    if extra is not None:
        body.update(extra(code, message))
    headers = {"WWW-Authenticate": "Bearer"} if code == 401 else {}
    if code in (408, 413):
        # The rest of the body was never read; the connection cannot carry another request.
        headers["Connection"] = "close"
    return Response(
        orjson.dumps(body), status_code=code, media_type="application/json", headers=headers
    )


def _describe_validation(exc: RequestValidationError) -> tuple[str, str]:
    first = exc.errors()[0]
    if first.get("type") == "json_invalid":
        # The parser's location is a character offset, not a field: name the real problem.
        reason = (first.get("ctx") or {}).get("error")
        return "Invalid request body: the body is not valid JSON", reason or ""
    location = [str(part) for part in first.get("loc", ())]
    where, name = (location[0], ".".join(location[1:])) if location else ("request", "")
    if where == "body":
        subject = f"request body field {name!r}" if name else "request body"
    else:
        subject = f"{where} parameter {name!r}"
    message = str(first.get("msg", "is invalid"))
    return f"Invalid {subject}: {message}", f"{len(exc.errors())} problem(s) found"


def _without_422(app: FastAPI) -> None:
    """Drop FastAPI's generated 422 responses: this server answers invalid input with 400."""
    generate = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                operation.get("responses", {}).pop("422", None)
        schemas = schema.get("components", {}).get("schemas", {})
        for name in ("HTTPValidationError", "ValidationError"):
            schemas.pop(name, None)
        return schema

    app.openapi = openapi


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error in the reference Error shape, and document only what is answered."""
    _without_422(app)

    @app.exception_handler(domain.DomainError)
    async def _domain_error(request: Request, exc: domain.DomainError) -> Response:
        response = error_response(status_of(exc), str(exc), exc.details, request)
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            response.headers["Retry-After"] = str(retry_after)
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        message, details = _describe_validation(exc)
        return error_response(400, message, details, request)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> Response:
        message = exc.detail if isinstance(exc.detail, str) and exc.detail else None
        return error_response(
            exc.status_code, message or _DEFAULT_MESSAGES.get(exc.status_code, "Error.")
        )

    @app.exception_handler(sa.exc.OperationalError)
    @app.exception_handler(sa.exc.InterfaceError)
    @app.exception_handler(sa.exc.TimeoutError)
    async def _database_unavailable(request: Request, exc: Exception) -> Response:
        if isinstance(exc, sa.exc.DBAPIError) and is_statement_timeout(exc):
            limit = request.app.state.gpufleet.settings.db_statement_timeout_seconds
            message = (
                f"The request was cancelled: a database statement ran longer than the "
                f"statement timeout of {limit:g} seconds. Narrow it (filters, a smaller offset "
                f"or limit) and try again."
            )
            return error_response(503, message, request=request)
        log.warning("database unavailable: %s", type(exc).__name__)
        return error_response(503, STORE_UNAVAILABLE, request=request)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(500, _DEFAULT_MESSAGES[500])
