"""The web dashboard: ``/`` serves its page, ``/dashboard/...`` its static ES modules.

The dashboard is a client of the public API like any other; nothing here reads the store.
The page and every asset carry the Content-Security-Policy of ``api/hardening.py`` (only this
origin), added to every response by that module's middleware.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from gpufleet.api.routing import OffLoopJsonRoute
from gpufleet.dashboard import STATIC_DIR

ASSETS_PREFIX = "/dashboard"

router = APIRouter(include_in_schema=False, route_class=OffLoopJsonRoute)


@router.get("/")
def dashboard_page() -> FileResponse:
    """The dashboard's single page; its views are chosen by the URL fragment."""
    return FileResponse(
        STATIC_DIR / "index.html",
        media_type="text/html",
        headers={"Cache-Control": "no-cache"},
    )


def mount_dashboard(app: FastAPI) -> None:
    """Add the page at ``/`` and the assets under ``/dashboard``; ``/api/...`` is untouched."""
    app.include_router(router)
    app.mount(ASSETS_PREFIX, StaticFiles(directory=STATIC_DIR), name="dashboard")
