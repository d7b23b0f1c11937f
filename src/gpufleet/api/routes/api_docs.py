"""``/api/docs``: Swagger UI served from this server, never from a CDN.

The Swagger UI assets come from the ``swagger-ui-py`` package (Apache-2.0, the upstream
``swagger-ui-dist`` files); the page and its initialiser are ours, with no inline script, so
the same Content-Security-Policy as the dashboard applies.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from gpufleet.api.routing import OffLoopJsonRoute
from gpufleet.core.errors import NotFound

PAGE_DIR = Path(__file__).resolve().parents[1] / "docs_page"
# The only upstream files the page needs; nothing else of the package is reachable.
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "LICENSE": "text/plain",
}

router = APIRouter(include_in_schema=False, route_class=OffLoopJsonRoute)


def swagger_ui_dir() -> Path:
    """The packaged Swagger UI files, found without importing the package's Python code."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the swagger-ui-py package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


@router.get("/api/docs")
def docs_page() -> FileResponse:
    return FileResponse(
        PAGE_DIR / "index.html", media_type="text/html", headers={"Cache-Control": "no-cache"}
    )


@router.get("/api/docs/init.js")
def docs_initialiser() -> FileResponse:
    return FileResponse(PAGE_DIR / "init.js", media_type="text/javascript")


@router.get("/api/docs/assets/{name}")
def docs_asset(name: str) -> FileResponse:
    media_type = ASSETS.get(name)
    if media_type is None:
        raise NotFound(f"No documentation asset {name!r}.")
    return FileResponse(swagger_ui_dir() / name, media_type=media_type)
