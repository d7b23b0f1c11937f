"""gpufleet's own extension: the keys that sign access tokens (Run:ai has no such API).

Served under ``/api/v1/gpufleet/``, a prefix Run:ai does not use. The paths of earlier releases
(``/api/v1/signing-keys``, and ``/api/v1/audit-log`` for the audit log now at Run:ai's
``/api/v1/audit/log``) answer 308 to the new ones for one release.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Path, Request
from fastapi.responses import RedirectResponse, Response

from gpufleet.api.authorization import ManagingActor
from gpufleet.api.deps import Db, State
from gpufleet.api.responses import json_response
from gpufleet.api.routing import OffLoopJsonRoute
from gpufleet.auth import administration
from gpufleet.schemas.access import SigningKeyList
from gpufleet.schemas.errors import error_responses

PREFIX = "/api/v1/gpufleet/signing-keys"
router = APIRouter(prefix=PREFIX, tags=["Signing keys (gpufleet)"], route_class=OffLoopJsonRoute)
legacy = APIRouter(prefix="/api/v1", include_in_schema=False)


@router.get("", response_model=SigningKeyList, responses=error_responses(401, 403))
def list_signing_keys(actor: ManagingActor, conn: Db) -> Response:
    return json_response({"signingKeys": administration.signing_keys(conn, actor)})


@router.post(
    "", status_code=201, response_model=SigningKeyList, responses=error_responses(401, 403)
)
def rotate_signing_key(state: State, actor: ManagingActor, conn: Db) -> Response:
    administration.rotate_signing_key(conn, actor)
    conn.commit()
    state.tokens.reload()
    return json_response({"signingKeys": administration.signing_keys(conn, actor)}, status_code=201)


@router.post(
    "/{kid}/revoke",
    response_model=SigningKeyList,
    responses=error_responses(400, 401, 403, 404),
)
def revoke_signing_key(
    state: State, actor: ManagingActor, conn: Db, kid: Annotated[str, Path(max_length=64)]
) -> Response:
    administration.revoke_signing_key(conn, actor, kid)
    conn.commit()
    state.tokens.reload()
    return json_response({"signingKeys": administration.signing_keys(conn, actor)})


def _moved(request: Request, path: str) -> RedirectResponse:
    query = request.url.query
    return RedirectResponse(path + (f"?{query}" if query else ""), status_code=308)


@legacy.api_route("/signing-keys", methods=["GET", "POST"])
def moved_signing_keys(request: Request) -> RedirectResponse:
    return _moved(request, PREFIX)


@legacy.post("/signing-keys/{kid}/revoke")
def moved_revoke(request: Request, kid: Annotated[str, Path(max_length=64)]) -> RedirectResponse:
    return _moved(request, f"{PREFIX}/{quote(kid, safe='')}/revoke")


@legacy.get("/audit-log")
def moved_audit_log(request: Request) -> RedirectResponse:
    return _moved(request, "/api/v1/audit/log")
