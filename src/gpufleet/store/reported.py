"""Writing the rows a cluster reports (nodes, pods, queues): one upsert by id each, which keeps
another cluster's rows and newer reports as they are."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa

from gpufleet.store.dialect import upsert_with


def upsert_reported(
    dialect: str,
    table: sa.Table,
    assignments: Callable[[Any], Mapping[str, Any]],
    *,
    reported_at: str,
) -> sa.Insert:
    """An upsert by ``id`` returning the ids it wrote. Another cluster's row is never
    overwritten; a row whose ``reported_at`` column is newer than the report's stays (an equal
    time re-applies: a replay)."""
    stored = table.c
    return upsert_with(
        dialect,
        table,
        ["id"],
        assignments,
        lambda new: sa.and_(
            stored.cluster_id == new.cluster_id, new[reported_at] >= stored[reported_at]
        ),
    ).returning(stored.id)


def earliest(new: Any, stored: Any) -> sa.Case[Any]:
    """The earlier of a reported and a stored time: a row cannot have been created after it
    was first seen, so its earliest creation time stands."""
    return sa.case((new < stored, new), else_=stored)
