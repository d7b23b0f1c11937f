"""The body of ``POST /api/v1/token``: Run:ai's JSON request, or a standard OAuth 2.0 form.

A JSON body is Run:ai's ``TokenRequest``. A form-encoded body
(``application/x-www-form-urlencoded``) is read with RFC 6749's field names (sections 4.4 and
6); the client authenticates with ``client_id``/``client_secret`` fields or with HTTP Basic
(section 2.3.1). A form request is answered in the RFC's terms too (see ``oauth_token_body``),
since the clients that send one read ``access_token``, not ``accessToken``.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

import anyio
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from gpufleet.core.errors import Invalid
from gpufleet.schemas.enums import TokenGrantType
from gpufleet.schemas.inline import inline_schema
from gpufleet.schemas.storable import check, load_json
from gpufleet.schemas.tokens import OAuthTokenForm, OAuthTokenResponse, TokenRequest

FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"


def is_oauth_form(request: Request) -> bool:
    """Whether the request body is a form, so the answer uses RFC 6749's names."""
    media_type = request.headers.get("content-type", "").split(";")[0]
    return media_type.strip().lower() == FORM_MEDIA_TYPE


async def read_token_request(request: Request) -> TokenRequest:
    """The token request, from whichever of the two encodings the client chose."""
    raw = await request.body()
    # Parsed in a worker thread: a body up to the limit must not hold the event loop.
    if is_oauth_form(request):
        request.state.error_fields = oauth_error_fields
        authorization = request.headers.get("authorization")
        return await anyio.to_thread.run_sync(_from_form, raw, authorization)
    return await anyio.to_thread.run_sync(_from_json, raw)


def _validated(model: type[BaseModel], data: Any) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        # Reported like FastAPI's own body errors: 400 naming the field.
        errors = [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
        raise RequestValidationError(errors) from None


def _from_json(raw: bytes) -> TokenRequest:
    if not raw.strip():
        raise Invalid("Invalid request body: the token request needs a JSON body.")
    return _validated(TokenRequest, load_json(raw))


def _from_form(raw: bytes, authorization: str | None) -> TokenRequest:
    try:
        pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        raise Invalid("Invalid request body: the form is not UTF-8.") from None
    fields: dict[str, str] = {}
    for name, value in pairs:
        if name in fields:
            # RFC 6749 section 3.2: parameters must not be included more than once.
            raise Invalid(f"Invalid request body: {name[:64]!r} is given more than once.")
        fields[name] = value
    check(fields)
    form: OAuthTokenForm = _validated(OAuthTokenForm, fields)
    client_id, secret = form.client_id, form.client_secret
    basic = _basic_credentials(authorization)
    if basic is not None:
        if secret:
            # Section 2.3: one authentication method per request.
            raise Invalid("Authenticate with HTTP Basic or client_secret, not both.")
        client_id, secret = basic
        check({"client_id": client_id, "client_secret": secret}, "HTTP Basic credential")
    try:
        grant = TokenGrantType(form.grant_type)
    except ValueError:
        raise Invalid(f"grant_type {form.grant_type[:64]!r} is not supported.") from None
    return TokenRequest(
        grant_type=grant,
        client_id=client_id,
        client_secret=secret,
        refresh_token=form.refresh_token,
    )


def _basic_credentials(authorization: str | None) -> tuple[str, str] | None:
    """Client id and secret of an HTTP Basic header, each form-decoded (section 2.3.1)."""
    scheme, _, encoded = (authorization or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise Invalid("The HTTP Basic credentials are not valid base64 UTF-8.") from None
    client_id, colon, secret = decoded.partition(":")
    if not colon:
        raise Invalid("The HTTP Basic credentials need a client id and a secret.")
    return unquote_plus(client_id), unquote_plus(secret)


def openapi_request_body() -> dict[str, Any]:
    """The endpoint's two request encodings, for the OpenAPI document."""
    return {
        "required": True,
        "content": {
            "application/json": {"schema": inline_schema(TokenRequest)},
            FORM_MEDIA_TYPE: {"schema": inline_schema(OAuthTokenForm)},
        },
    }


def oauth_token_body(body: dict[str, Any]) -> dict[str, Any]:
    """A Run:ai token answer in RFC 6749 section 5.1 terms."""
    answer = OAuthTokenResponse(
        access_token=body["accessToken"],
        expires_in=body["expiresIn"],
        refresh_token=body.get("refreshToken"),
    )
    return answer.model_dump(exclude_none=True)


def oauth_error_fields(status: int, message: str) -> dict[str, str]:
    """RFC 6749 section 5.2 fields added to the Error answer, so OAuth clients see the cause."""
    return {"error": _oauth_error_code(status, message), "error_description": message}


def _oauth_error_code(status: int, message: str) -> str:
    if status != 400:
        return "temporarily_unavailable" if status in (429, 503) else "server_error"
    if message.startswith("Invalid client credentials"):
        return "invalid_client"
    if message.startswith(("Refresh token rejected", "External token rejected")):
        return "invalid_grant"
    if "not supported" in message:
        return "unsupported_grant_type"
    return "invalid_request"
