"""Refresh tokens: issued with a session, single-use, never outliving the session's end.

An external token exchange starts a session (``session_max_seconds`` from then, at most) and
returns its first refresh token. Each refresh spends the presented token and returns the next
one; presenting a spent token again revokes the session, so a stolen refresh token is good for
one use by whoever is first, after which both holders are cut off. The groups of an access
token issued by a refresh come from the session, which takes the provider's groups afresh
whenever the user exchanges a provider token again.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Connection

from gpufleet.auth.principal import Principal
from gpufleet.auth.tokens import REFRESH, InvalidToken, TokenService, new_token_id
from gpufleet.core.errors import Invalid
from gpufleet.core.roles import SubjectType
from gpufleet.store import refresh_sessions
from gpufleet.store.credentials import get_access_key


def _refresh_token(
    tokens: TokenService, principal: Principal, session: refresh_sessions.RefreshSession, jti: str
) -> str:
    return tokens.issue(
        principal.subject,
        subject_type=principal.subject_type,
        kind=REFRESH,
        ttl_seconds=tokens.refresh_ttl_seconds,
        generation=principal.generation,
        session_id=session.id,
        jti=jti,
        expires_at=int(session.expires_at.timestamp()),
    )


def open_session(
    conn: Connection, tokens: TokenService, principal: Principal, max_seconds: int
) -> str:
    """Start a session for ``principal`` and return its first refresh token."""
    now = datetime.now(UTC)
    jti = new_token_id()
    session = refresh_sessions.start_session(
        conn,
        subject=principal.subject,
        subject_type=principal.subject_type,
        groups=principal.groups,
        jti=jti,
        now=now,
        expires_at=now + timedelta(seconds=max_seconds),
    )
    return _refresh_token(tokens, principal, session, jti)


def redeem(conn: Connection, tokens: TokenService, token: str) -> tuple[Principal, str]:
    """Spend a refresh token: the caller it stands for and the next refresh token.

    Raises ``Invalid`` for a token that does not verify, belongs to no live session, or was
    spent already (the session is then revoked, and that is committed before the refusal).
    """
    try:
        presented = tokens.verify(token, kind=REFRESH)
    except InvalidToken as exc:
        raise Invalid(f"Refresh token rejected: {exc}") from None
    if not presented.session_id:
        raise Invalid("Refresh token rejected: it belongs to no session.")
    next_jti = new_token_id()
    session = refresh_sessions.redeem(
        conn, presented.session_id, presented.token_id, next_jti, datetime.now(UTC)
    )
    if session is None:
        # The revocation must stand although the request fails.
        conn.commit()
        raise Invalid(
            "Refresh token rejected: it was already used, or its session ended or was revoked."
        )
    principal = Principal(
        subject=session.subject,
        token_id="",
        subject_type=session.subject_type,
        groups=session.groups,
        generation=presented.generation,
    )
    if principal.subject_type != SubjectType.USER:
        # Sessions are started by users; a session of any other subject is checked like a key.
        key = get_access_key(conn, principal.subject)
        if key is None or key.disabled or key.token_generation != principal.generation:
            raise Invalid(
                "Refresh token rejected: its access key was disabled, rotated or deleted."
            )
    return principal, _refresh_token(tokens, principal, session, next_jti)
