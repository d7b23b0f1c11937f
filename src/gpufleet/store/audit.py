"""The audit log: append-only records of token issuance and access changes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gpufleet.core.times import format_rfc3339
from gpufleet.store.tables import audit_log


def record(
    conn: Connection,
    *,
    actor: str,
    action: str,
    target: str | None = None,
    source_ip: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    conn.execute(
        audit_log.insert().values(
            at=datetime.now(UTC),
            actor=actor,
            action=action,
            target=target,
            source_ip=source_ip,
            details=details,
        )
    )


def list_entries(conn: Connection, *, offset: int, limit: int) -> tuple[list[dict], int | None]:
    """Newest first; returns the page and the offset of the next page (None if last)."""
    rows = (
        conn.execute(
            sa.select(audit_log)
            .order_by(audit_log.c.at.desc(), audit_log.c.id.desc())
            .offset(offset)
            .limit(limit + 1)
        )
        .mappings()
        .all()
    )
    entries = [
        {
            "id": row["id"],
            "at": format_rfc3339(row["at"]),
            "actor": row["actor"],
            "action": row["action"],
            "target": row["target"],
            "sourceIp": row["source_ip"],
            "details": row["details"],
        }
        for row in rows[:limit]
    ]
    return entries, (offset + limit if len(rows) > limit else None)
