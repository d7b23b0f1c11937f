"""The web dashboard: ``/`` serves its page, ``/dashboard/...`` its static ES modules.

The dashboard is a client of the public API like any other; nothing here reads the store.
Its page carries a Content-Security-Policy that allows only this origin, so nothing can be
loaded from elsewhere at run time.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from gpufleet.dashboard import STATIC_DIR

ASSETS_PREFIX = "/dashboard"
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)

router = APIRouter(include_in_schema=False)


@router.get("/")
def dashboard_page() -> FileResponse:
    """The dashboard's single page; its views are chosen by the URL fragment."""
    return FileResponse(
        STATIC_DIR / "index.html",
        media_type="text/html",
        headers={
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            "Cache-Control": "no-cache",
            "X-Content-Type-Options": "nosniff",
        },
    )


def mount_dashboard(app: FastAPI) -> None:
    """Add the page at ``/`` and the assets under ``/dashboard``; ``/api/...`` is untouched."""
    app.include_router(router)
    app.mount(ASSETS_PREFIX, StaticFiles(directory=STATIC_DIR), name="dashboard")
