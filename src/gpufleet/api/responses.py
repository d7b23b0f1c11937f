"""Fast JSON responses: rows are serialised straight to bytes, no model round trip."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import Response


def json_response(
    body: Any, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(body), status_code=status_code, media_type="application/json", headers=headers
    )


def paged_response(key: str, items: list, next_offset: int | None) -> Response:
    """One page of ``items`` under ``key``, led by ``next`` (the next page's offset) if any."""
    body: dict = {key: items} if next_offset is None else {"next": next_offset, key: items}
    return json_response(body)
