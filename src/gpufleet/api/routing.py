"""A route class whose JSON request bodies are parsed off the event loop.

FastAPI parses a declared JSON body with ``await request.json()`` on the event loop; a large
body would stall every other request for the time it takes. Routes of this class parse in a
worker thread with orjson, which also refuses what the store cannot hold (NaN, Infinity, lone
surrogates, integers beyond 64 bits) as invalid JSON, a 400.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import anyio
import orjson
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response

M = TypeVar("M", bound=BaseModel)


class _OffLoopJsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            self._json = await anyio.to_thread.run_sync(orjson.loads, body)
        return self._json


class OffLoopJsonRoute(APIRoute):
    """An ``APIRoute`` that parses its JSON body in a worker thread."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def off_loop_handler(request: Request) -> Response:
            return await handler(_OffLoopJsonRequest(request.scope, request.receive))

        return off_loop_handler


def parse_json_body(model: type[M], raw: bytes) -> M:
    """A model from a raw JSON body, or a 400 naming the field; call it from a worker thread.

    The standard parser, unlike orjson, reads NaN and 1e999 as floats, so the model's own
    checks can name the field that holds one.
    """
    try:
        return model.model_validate(json.loads(raw))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise RequestValidationError(
            [{"type": "json_invalid", "loc": ("body",), "msg": f"JSON decode error: {exc}"}]
        ) from None
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
        ) from None
