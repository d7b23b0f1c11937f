"""``POST /api/v1/token``: exchange credentials for an access token.

Grants: ``client_credentials`` and the deprecated ``app_token`` (access keys),
``external_token_exchange`` (a token from the configured OIDC issuer) and ``refresh_token``.
Failed attempts are limited per client id and address, per presented token, and per address
(429; see ``auth/rate_limit.py``); every issued token is written to the audit log.
"""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.engine import Connection

from gpufleet.api.deps import AppState, PublicDb, State
from gpufleet.api.responses import json_response
from gpufleet.api.routing import OffLoopJsonRoute
from gpufleet.api.token_request import (
    is_oauth_form,
    oauth_token_body,
    openapi_request_body,
    read_token_request,
)
from gpufleet.auth import refresh
from gpufleet.auth.principal import Principal
from gpufleet.auth.rate_limit import LimitKey
from gpufleet.auth.secrets import verify_secret
from gpufleet.auth.tokens import InvalidToken
from gpufleet.core.errors import Invalid
from gpufleet.schemas.enums import TokenGrantType
from gpufleet.schemas.errors import error_responses
from gpufleet.schemas.tokens import TokenRequest, TokenResponse
from gpufleet.settings import Settings
from gpufleet.store import audit
from gpufleet.store.access_keys import ACCESS_KEY
from gpufleet.store.credentials import get_access_key, touch_access_key

router = APIRouter(prefix="/api/v1", tags=["Tokens"], route_class=OffLoopJsonRoute)

_MAX_CREDENTIAL_LENGTH = 512
_MAX_TOKEN_LENGTH = 16_384
_INVALID = "Invalid client credentials."


def _source(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def attempt_keys(request: TokenRequest, source: str, settings: Settings) -> list[LimitKey]:
    """What a token request is counted under: what it presents at its address, then the address.

    A client id counts together with the address, so failures elsewhere never lock out the
    owner; a refresh or external token counts by its hash (these grants carry no id).
    """
    claimed = request.client_id or request.app_id
    token = request.refresh_token or request.external_token
    if claimed:
        presented = "client:" + claimed[:_MAX_CREDENTIAL_LENGTH] + "\x00" + source
    elif token:
        digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
        presented = "token:" + digest
    else:
        presented = "nothing:" + source
    return [
        LimitKey(presented, settings.token_failure_limit),
        LimitKey("address:" + source, settings.token_failure_address_limit),
    ]


def _access_key_grant(request: TokenRequest, conn: Connection) -> Principal:
    if request.grant_type is TokenGrantType.CLIENT_CREDENTIALS:
        client_id, secret = request.client_id, request.client_secret
        names = "clientID and clientSecret"
    else:
        client_id, secret, names = request.app_id, request.app_secret, "appID and appSecret"
    if not client_id or not secret:
        raise Invalid(f"grantType {request.grant_type.value!r} needs {names}.")
    if len(client_id) > _MAX_CREDENTIAL_LENGTH or len(secret) > _MAX_CREDENTIAL_LENGTH:
        raise Invalid(_INVALID)
    if "\x00" in client_id:
        # No stored id holds a NUL, and PostgreSQL refuses one even in a lookup.
        raise Invalid(_INVALID)
    key = get_access_key(conn, client_id)
    # verify_secret runs even for unknown ids, so timing does not reveal which ids exist.
    valid = verify_secret(secret, key.secret_hash if key else None)
    if key is None or not valid or key.disabled:
        raise Invalid(_INVALID)
    touch_access_key(conn, key.client_id)
    if key.kind == ACCESS_KEY:
        # A user's access key speaks for its owner.
        return Principal(
            subject=key.owner_id,
            token_id="",
            subject_type=key.owner_type,
            credential=key.client_id,
            generation=key.token_generation,
        )
    return Principal(
        subject=key.client_id,
        token_id="",
        credential=key.client_id,
        generation=key.token_generation,
    )


def _external_grant(request: TokenRequest, state: AppState) -> Principal:
    if state.oidc is None:
        raise Invalid("No external identity provider is configured on this server.")
    token = request.external_token
    if not token or len(token) > _MAX_TOKEN_LENGTH:
        raise Invalid("grantType 'external_token_exchange' needs externalToken.")
    try:
        identity = state.oidc.verify(token)
    except InvalidToken as exc:
        raise Invalid(f"External token rejected: {exc}") from None
    return Principal(
        subject=identity.username, token_id="", subject_type="user", groups=identity.groups
    )


def _authenticate(
    request: TokenRequest, state: AppState, conn: Connection
) -> tuple[Principal, str | None]:
    """The caller the request proves, and the refresh token to return with its access token."""
    match request.grant_type:
        case TokenGrantType.CLIENT_CREDENTIALS | TokenGrantType.APP_TOKEN:
            return _access_key_grant(request, conn), None
        case TokenGrantType.EXTERNAL_TOKEN_EXCHANGE:
            principal = _external_grant(request, state)
            max_seconds = state.settings.session_max_seconds
            return principal, refresh.open_session(conn, state.tokens, principal, max_seconds)
        case TokenGrantType.REFRESH_TOKEN:
            token = request.refresh_token
            if not token or len(token) > _MAX_TOKEN_LENGTH:
                raise Invalid("grantType 'refresh_token' needs refreshToken.")
            return refresh.redeem(conn, state.tokens, token)
        case None:
            raise Invalid("grantType is required.")
    raise Invalid(f"grantType {request.grant_type.value!r} is not supported by this server.")


@router.post(
    "/token",
    summary="Create an access token v1",
    description=(
        "Create tokens using the `grant_type` parameter. Besides the JSON body, a standard "
        "OAuth 2.0 form (`application/x-www-form-urlencoded`, RFC 6749 sections 4.4 and 6: "
        "`grant_type`, `client_id`, `client_secret` or HTTP Basic, `refresh_token`) is "
        "accepted and answered with `access_token`, `token_type` and `expires_in`."
    ),
    operation_id="grant_token",
    response_model=TokenResponse,
    response_model_exclude_none=True,
    responses=error_responses(400, 429, 500, 503),
    openapi_extra={"requestBody": openapi_request_body()},
)
def grant_token(
    state: State,
    conn: PublicDb,
    http_request: Request,
    request: Annotated[TokenRequest, Depends(read_token_request)],
) -> Response:
    source = _source(http_request)
    keys = attempt_keys(request, source, state.settings)
    with state.failures.attempt(keys, reset_on_success=[keys[0].name]):
        principal, refresh_token = _authenticate(request, state, conn)
    tokens = state.tokens
    access_token = tokens.issue(
        principal.subject,
        subject_type=principal.subject_type,
        groups=principal.groups,
        credential=principal.credential,
        generation=principal.generation,
    )
    body = {"accessToken": access_token, "expiresIn": tokens.ttl_seconds}
    if refresh_token is not None:
        body["refreshToken"] = refresh_token
    audit.record(
        conn,
        actor=principal.subject,
        action="token.issue",
        target=principal.credential or principal.subject,
        subject_type=principal.audit_subject_type,
        source_ip=source,
        details={"grantType": request.grant_type.value},
    )
    conn.commit()
    if is_oauth_form(http_request):
        # RFC 6749 section 5.1: token answers must not be cached.
        headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
        return json_response(oauth_token_body(body), headers=headers)
    return json_response(body)
