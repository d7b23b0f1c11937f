"""Log output of the server: plain text for a terminal, one JSON object a line for collectors.

Every line written while a request is answered carries its request id; the one access line per
request adds the route template, status, duration and the caller's client id.
"""

from __future__ import annotations

import contextvars
import logging
from datetime import UTC, datetime

import orjson

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "gpufleet_request_id", default=None
)
# Attributes the access line passes as ``extra``; copied into JSON lines when present.
REQUEST_FIELDS = ("method", "route", "status", "duration_ms", "client_id")
TEXT_FORMAT = "%(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, request_id and request fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or REQUEST_ID.get()
        if request_id:
            line["request_id"] = request_id
        for name in REQUEST_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


def configure_logging(level: str, log_format: str) -> None:
    """Send every logger (uvicorn's too) to stderr in the chosen format."""
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # httpx logs every Prometheus query at info; the metrics series count them instead.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        # Uvicorn's loggers propagate to the root handler; its access log is replaced by ours.
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
