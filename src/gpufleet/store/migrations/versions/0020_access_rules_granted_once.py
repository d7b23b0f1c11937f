"""a rule in force is granted once

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06

The same rule (subject, role, scope) could be granted twice and was stored twice, each
revoked on its own. A unique index over the rules in force refuses the second grant, also
when two arrive at once. Copies already in force are revoked first, the oldest kept.
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from gpufleet.store.types import UtcDateTime

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

_INDEX = "ix_access_rules_in_force"
_GRANT = ["subject_type", "subject_id", "role", "scope_type", "scope_id"]


def upgrade() -> None:
    rules = sa.table(
        "access_rules",
        sa.column("id", sa.Integer),
        sa.column("deleted_at", UtcDateTime),
        sa.column("updated_at", UtcDateTime),
        *(sa.column(name, sa.String) for name in _GRANT),
    )
    in_force = rules.c.deleted_at.is_(None)
    oldest = (
        sa.select(sa.func.min(rules.c.id))
        .where(in_force)
        .group_by(*(rules.c[name] for name in _GRANT))
    )
    now = datetime.now(UTC)
    op.execute(
        rules.update()
        .where(in_force, rules.c.id.not_in(oldest))
        .values(deleted_at=now, updated_at=now)
    )
    op.create_index(
        _INDEX,
        "access_rules",
        _GRANT,
        unique=True,
        sqlite_where=sa.text("deleted_at IS NULL"),
        postgresql_where=sa.text("deleted_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index(_INDEX, "access_rules")
