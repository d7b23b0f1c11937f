"""access-key token generations; refresh-token sessions

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04

Rotating or disabling an access key bumps its token generation, so tokens issued before no longer
verify. Refresh tokens belong to a session with an absolute end; each refresh replaces the
session's current token id, so a spent token is recognised when it comes back.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import gpufleet.store.types

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("access_keys", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("token_generation", sa.Integer(), server_default="0", nullable=False)
        )
    op.create_table(
        "refresh_sessions",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=253), nullable=False),
        sa.Column("subject_type", sa.String(length=16), nullable=False),
        sa.Column(
            "groups",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("current_jti", sa.String(length=32), nullable=False),
        sa.Column("started_at", gpufleet.store.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", gpufleet.store.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", gpufleet.store.types.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refresh_sessions")),
    )
    with op.batch_alter_table("refresh_sessions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_refresh_sessions_subject_type_subject"),
            ["subject_type", "subject"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("refresh_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_refresh_sessions_subject_type_subject"))

    op.drop_table("refresh_sessions")
    with op.batch_alter_table("access_keys", schema=None) as batch_op:
        batch_op.drop_column("token_generation")
