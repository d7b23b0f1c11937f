"""Named leases in the database: work that must run in one replica at a time.

A replica holds a lease until ``expires_at_ms`` and renews it while it works; another replica
takes it only once it has lapsed. Taking and renewing are one upsert whose WHERE decides, so
two replicas asking at once cannot both get it. The holder renews well before expiry; a
replica that dies loses the lease within one term, and a survivor carries on.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gpufleet.store.dialect import upsert_with
from gpufleet.store.tables import leases

L = leases.c


def take_lease(conn: Connection, name: str, holder: str, now_ms: int, term_ms: int) -> bool:
    """Take or renew ``name`` for ``holder`` until ``now + term``; True when it is held.

    On SQLite the write also starts the transaction's write lock, so what the holder reads
    next in the same transaction cannot change under it.
    """
    statement = upsert_with(
        conn.dialect.name,
        leases,
        ["name"],
        lambda new: {"holder": new.holder, "expires_at_ms": new.expires_at_ms},
        lambda new: sa.or_(L.holder == new.holder, L.expires_at_ms < now_ms),
    ).returning(L.holder)
    row = conn.execute(
        statement, {"name": name, "holder": holder, "expires_at_ms": now_ms + term_ms}
    ).first()
    return row is not None and row.holder == holder


def release_lease(conn: Connection, name: str, holder: str) -> None:
    """Give the lease up (on shutdown), so another replica need not wait for it to lapse."""
    conn.execute(sa.delete(leases).where(L.name == name, L.holder == holder))


def lease_holder(conn: Connection, name: str, now_ms: int) -> str | None:
    row = conn.execute(sa.select(L.holder).where(L.name == name, L.expires_at_ms >= now_ms)).first()
    return None if row is None else row.holder
