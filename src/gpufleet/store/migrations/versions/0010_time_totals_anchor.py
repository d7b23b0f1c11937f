"""time totals sorted and filtered through indexes

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05

A workload's total of time in a phase is its stored seconds plus, while it is in that phase,
the time since ``phase_updated_at``. ``seconds_anchor`` (computed by the database) is the
stored seconds less the epoch second the phase began, so the total is the anchor plus the
request's epoch second: a partial index of it per timed phase orders those workloads, and a
partial index of the stored seconds orders the others.
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_EPOCH_SECOND = {
    "sqlite": "CAST(strftime('%s', phase_updated_at) AS INTEGER)",
    "postgresql": (
        "CAST(floor(EXTRACT(epoch FROM (phase_updated_at AT TIME ZONE 'UTC'))) AS BIGINT)"
    ),
}
# (phase, column of its stored seconds, name of its anchor index)
_TIMED = (
    ("Pending", "pending_seconds_before", "ix_workloads_anchor_pending"),
    ("Running", "running_seconds_before", "ix_workloads_anchor_running"),
)


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    before = " ".join(f"WHEN (phase = '{phase}') THEN {column}" for phase, column, _ in _TIMED)
    anchor = f"CASE {before} END - {_EPOCH_SECOND[dialect]}"
    # PostgreSQL stores a generated column; SQLite adds only a virtual one to an existing table
    # (its indexes hold the values).
    computed = sa.Computed(anchor, persisted=True if dialect == "postgresql" else None)
    op.add_column("workloads", sa.Column("seconds_anchor", sa.BigInteger(), computed))
    for phase, column, index in _TIMED:
        in_phase = sa.text(f"phase = '{phase}'")
        other = sa.text(f"phase != '{phase}'")
        op.create_index(
            index,
            "workloads",
            ["seconds_anchor", "id"],
            sqlite_where=in_phase,
            postgresql_where=in_phase,
        )
        op.create_index(
            f"ix_workloads_{column}_id",
            "workloads",
            [column, "id"],
            sqlite_where=other,
            postgresql_where=other,
        )


def downgrade() -> None:
    for _, column, index in _TIMED:
        op.drop_index(f"ix_workloads_{column}_id", "workloads")
        op.drop_index(index, "workloads")
    op.drop_column("workloads", "seconds_anchor")
