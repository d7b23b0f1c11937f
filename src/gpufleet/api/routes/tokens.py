"""``POST /api/v1/token``: exchange client credentials for an access token."""

from __future__ import annotations

from fastapi import APIRouter, Body
from fastapi.responses import Response

from gpufleet.api.deps import Db, State
from gpufleet.api.errors import ApiError
from gpufleet.api.responses import json_response
from gpufleet.auth.secrets import verify_secret
from gpufleet.schemas.enums import TokenGrantType
from gpufleet.schemas.errors import error_responses
from gpufleet.schemas.tokens import TokenRequest, TokenResponse
from gpufleet.store.credentials import get_access_key, touch_access_key

router = APIRouter(prefix="/api/v1", tags=["Tokens"])

_MAX_CREDENTIAL_LENGTH = 512


def _credentials(request: TokenRequest) -> tuple[str, str]:
    if request.grant_type is TokenGrantType.CLIENT_CREDENTIALS:
        client_id, secret, names = (
            request.client_id,
            request.client_secret,
            "clientID and clientSecret",
        )
    elif request.grant_type is TokenGrantType.APP_TOKEN:
        client_id, secret, names = request.app_id, request.app_secret, "appID and appSecret"
    elif request.grant_type is None:
        raise ApiError(400, "grantType is required.")
    else:
        raise ApiError(
            400, f"grantType {request.grant_type.value!r} is not supported by this server."
        )
    if not client_id or not secret:
        raise ApiError(400, f"grantType {request.grant_type.value!r} needs {names}.")
    if len(client_id) > _MAX_CREDENTIAL_LENGTH or len(secret) > _MAX_CREDENTIAL_LENGTH:
        raise ApiError(400, "Invalid client credentials.")
    return client_id, secret


@router.post(
    "/token",
    summary="Create an access token v1",
    description="Create tokens using the `grant_type` parameter.",
    operation_id="grant_token",
    response_model=TokenResponse,
    response_model_exclude_none=True,
    responses=error_responses(400, 500, 503),
)
def grant_token(state: State, conn: Db, request: TokenRequest = Body(...)) -> Response:
    client_id, secret = _credentials(request)
    key = get_access_key(conn, client_id)
    # verify_secret runs even for unknown ids, so timing does not reveal which ids exist.
    valid = verify_secret(secret, key.secret_hash if key else None)
    if key is None or not valid or key.disabled:
        raise ApiError(400, "Invalid client credentials.")
    token = state.tokens.issue(subject=key.client_id, role=key.role)
    touch_access_key(conn, key.client_id)
    conn.commit()
    return json_response({"accessToken": token, "expiresIn": state.tokens.ttl_seconds})
