"""A route class whose requests carry only what the store can hold, parsed off the event loop.

FastAPI parses a declared JSON body with ``await request.json()`` on the event loop; a large
body would stall every other request for the time it takes. Routes of this class parse in a
worker thread with ``load_json``, which refuses what the store cannot hold (see
``schemas/storable.py``) with a 400 naming the field; path and query parameters get the same
check. Every router of the API uses this class.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import anyio
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from gpufleet.schemas.storable import check, load_json

M = TypeVar("M", bound=BaseModel)


def _is_json(request: Request) -> bool:
    """Whether FastAPI would read this body as JSON (a JSON media type, or none given)."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return not media_type or media_type == "application/json" or media_type.endswith("+json")


class OffLoopJsonRoute(APIRoute):
    """An ``APIRoute`` that checks its parameters and parses its JSON body in a worker thread."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        takes_json = self.body_field is not None

        async def checked_handler(request: Request) -> Response:
            check(dict(request.path_params), "path parameter")
            check(dict(request.query_params.multi_items()), "query parameter")
            if takes_json and _is_json(request):
                body = await request.body()
                if body:
                    # Starlette's request.json() returns this from now on; FastAPI calls it.
                    request._json = await anyio.to_thread.run_sync(load_json, body)
            return await handler(request)

        return checked_handler


def parse_json_body(model: type[M], raw: bytes) -> M:
    """A model from a raw JSON body, or a 400 naming the field; call it from a worker thread.

    Values the store cannot hold are named by ``load_json`` (see ``schemas/storable.py``).
    """
    try:
        return model.model_validate(load_json(raw))
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
        ) from None
