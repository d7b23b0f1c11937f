"""Request dependencies: the caller, its database session (a connection and what the caller may
do, taken together in one worker thread), the request's "now"."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

import anyio.to_thread
import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.engine import Connection, Engine

from gpufleet.api.admission import Admission
from gpufleet.api.request_observer import SCOPE_KEY as REQUEST_INFO
from gpufleet.auth.access import Access, resolve_access
from gpufleet.auth.oidc import OidcVerifier
from gpufleet.auth.principal import Principal
from gpufleet.auth.rate_limit import FailureLimiter
from gpufleet.auth.tokens import ISSUER, InvalidToken, TokenService
from gpufleet.core.errors import Unauthenticated
from gpufleet.core.times import truncate_to_ms
from gpufleet.settings import Settings
from gpufleet.store.access_rules import rules_for_subjects, rules_with_key


@dataclass
class AppState:
    settings: Settings
    engine: Engine
    tokens: TokenService
    failures: FailureLimiter
    admission: Admission
    oidc: OidcVerifier | None = None


async def get_state(request: Request) -> AppState:
    return request.app.state.gpufleet


State = Annotated[AppState, Depends(get_state)]


async def admitted(state: State) -> AsyncIterator[None]:
    """A place among the requests that may hold a connection, waited for on the event loop
    (``api/admission.py``); kept until the connection below is returned."""
    async with state.admission.place():
        yield


Admitted = Annotated[None, Depends(admitted)]


def get_connection(state: State, _admitted: Admitted) -> Iterator[Connection]:
    """A connection for a route that serves anonymous callers (``PublicDb``)."""
    with state.engine.connect() as connection:
        yield connection


async def get_now() -> datetime:
    """The request's "now": one instant for every time-dependent value in the response."""
    return truncate_to_ms(datetime.now(UTC))


_bearer = HTTPBearer(
    scheme_name="bearerAuth", auto_error=False, description="Bearer authentication"
)


def authenticate(state: AppState, scheme: str, token: str) -> Principal:
    """The principal a bearer token stands for, or ``Unauthenticated``.

    Used by ``get_principal`` and, before any body byte is read, by the request limits.
    """
    if not token:
        raise Unauthenticated("Missing bearer token.")
    if scheme.lower() != "bearer":
        raise Unauthenticated("Authorization scheme must be Bearer.")
    try:
        if state.oidc is not None and _issuer(token) == state.oidc.config.issuer != ISSUER:
            identity = state.oidc.verify(token)
            return Principal(
                subject=identity.username, token_id="", subject_type="user", groups=identity.groups
            )
        return state.tokens.verify(token)
    except InvalidToken as exc:
        raise Unauthenticated(f"Invalid bearer token: {exc}") from None


def authenticate_known(state: AppState, scheme: str, token: str) -> Principal | None:
    """What ``authenticate`` answers, when the token can be checked without reading anything
    (a server token whose header verified before, the keys fresh): cheaper on the event loop
    than a trip to a worker thread. None when ``authenticate`` must decide, in a thread."""
    if not token or scheme.lower() != "bearer":
        return None
    # A token that verifies with our keys names our issuer, which authenticate never sends to
    # the external verifier either.
    return state.tokens.verify_known(token)


async def get_principal(
    state: State,
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    # The request limits may already have checked this very header before reading the body.
    principal = getattr(request.state, "principal", None)
    if principal is None:
        if credentials is None:
            raise Unauthenticated("Missing bearer token.")
        scheme, token = credentials.scheme, credentials.credentials
        principal = authenticate_known(state, scheme, token)
        if principal is None:
            principal = await anyio.to_thread.run_sync(authenticate, state, scheme, token)
    info = request.scope.get(REQUEST_INFO)
    if info is not None:  # the access log names the caller
        info.client_id = principal.subject
    return principal


def _issuer(token: str) -> str | None:
    """The unverified ``iss`` claim, only to choose which verifier checks the token."""
    try:
        return jwt.decode(token, options={"verify_signature": False}).get("iss")
    except jwt.PyJWTError:
        return None


Now = Annotated[datetime, Depends(get_now)]
CurrentPrincipal = Annotated[Principal, Depends(get_principal)]
PublicDb = Annotated[Connection, Depends(get_connection)]


def caller_access(conn: Connection, principal: Principal) -> Access:
    """What ``principal`` may do, read from its rules; ``Unauthenticated`` if its access key
    is gone, disabled or moved on since the token was issued."""
    if not principal.credential:
        return resolve_access(rules_for_subjects(conn, principal.subjects()))
    key, rules = rules_with_key(conn, principal.credential, principal.subjects())
    # A token outlives nothing: a deleted or disabled key revokes its tokens at once, and so
    # does a rotated secret or a disable (the generation moved on; the same row read).
    if key is None or key.disabled:
        raise Unauthenticated("Invalid bearer token: the access key is disabled or deleted.")
    if principal.generation != key.token_generation:
        raise Unauthenticated(
            "Invalid bearer token: revoked by a rotation or disabling of its access key."
        )
    return resolve_access(rules)


@dataclass(frozen=True, slots=True)
class Session:
    conn: Connection
    access: Access


def open_session(
    state: State, principal: CurrentPrincipal, _admitted: Admitted
) -> Iterator[Session]:
    """The caller's connection and access, taken in one worker thread: each hand-off to a
    thread and back costs more than a cheap request's statements. The caller is known first
    (a token that cannot be verified holds no place); the connection is returned after the
    answer is sent."""
    with state.engine.connect() as connection:
        yield Session(connection, caller_access(connection, principal))


RequestSession = Annotated[Session, Depends(open_session)]


async def session_connection(session: RequestSession) -> Connection:
    return session.conn


Db = Annotated[Connection, Depends(session_connection)]
