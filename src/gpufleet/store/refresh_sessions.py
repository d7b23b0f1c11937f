"""Refresh-token sessions: single-use refresh tokens with an absolute end.

Each refresh token names its session and its own id (``jti``). Redeeming it swaps the
session's ``current_jti`` for the next token's in one conditional UPDATE, so of two requests
presenting the same token at once only one can win, on any replica. A token that is not the
current one has been spent (or was never issued): the session is revoked.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gpufleet.store.rows import row_as
from gpufleet.store.tables import refresh_sessions


@dataclass(frozen=True, slots=True)
class RefreshSession:
    id: str
    subject: str
    subject_type: str
    groups: tuple[str, ...]
    expires_at: datetime


def _session(row) -> RefreshSession:
    return row_as(RefreshSession, row, groups=tuple(row["groups"]))


def start_session(
    conn: Connection,
    *,
    subject: str,
    subject_type: str,
    groups: tuple[str, ...],
    jti: str,
    now: datetime,
    expires_at: datetime,
) -> RefreshSession:
    """A new session whose first refresh token is ``jti``.

    The subject's groups are those just read from the identity provider, so its other live
    sessions take them too; its ended sessions are deleted on the way.
    """
    of_subject = sa.and_(
        refresh_sessions.c.subject_type == subject_type, refresh_sessions.c.subject == subject
    )
    conn.execute(refresh_sessions.delete().where(of_subject, refresh_sessions.c.expires_at <= now))
    conn.execute(
        refresh_sessions.update()
        .where(of_subject, refresh_sessions.c.revoked_at.is_(None))
        .values(groups=list(groups))
    )
    session_id = secrets.token_hex(16)
    conn.execute(
        refresh_sessions.insert().values(
            id=session_id,
            subject=subject,
            subject_type=subject_type,
            groups=list(groups),
            current_jti=jti,
            started_at=now,
            expires_at=expires_at,
        )
    )
    return RefreshSession(session_id, subject, subject_type, groups, expires_at)


def redeem(
    conn: Connection, session_id: str, presented_jti: str, next_jti: str, now: datetime
) -> RefreshSession | None:
    """Spend ``presented_jti`` and make ``next_jti`` current; None when it cannot be spent.

    A live session presented with a token that is not its current one is revoked: a spent
    refresh token in use again means one of the two holders is not its owner.
    """
    live = sa.and_(
        refresh_sessions.c.id == session_id,
        refresh_sessions.c.revoked_at.is_(None),
        refresh_sessions.c.expires_at > now,
    )
    row = (
        conn.execute(
            refresh_sessions.update()
            .where(live, refresh_sessions.c.current_jti == presented_jti)
            .values(current_jti=next_jti)
            .returning(*refresh_sessions.c)
        )
        .mappings()
        .first()
    )
    if row is not None:
        return _session(row)
    revoke(conn, session_id, now)
    return None


def revoke(conn: Connection, session_id: str, now: datetime) -> bool:
    """End a session at once; its refresh tokens are refused from now on."""
    statement = (
        refresh_sessions.update()
        .where(refresh_sessions.c.id == session_id, refresh_sessions.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return conn.execute(statement).rowcount > 0
