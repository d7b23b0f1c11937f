"""the events' time index takes the event id too

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06

The fleet-wide event list (GET /api/v1/events) pages newest first with the event id breaking
ties. An index of the time alone yields the order of the time only, so every page sorted the
events of a time again (SQLite) or all of them (PostgreSQL); with the id in the index a page
is a walk of it that stops after the page. Retention's deletes by age use the new index as
they used the old.
"""

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

_OLD = "ix_workload_events_created_at"
_NEW = "ix_workload_events_created_at_id"


def upgrade() -> None:
    op.create_index(_NEW, "workload_events", ["created_at", "id"])
    op.drop_index(_OLD, "workload_events")


def downgrade() -> None:
    op.create_index(_OLD, "workload_events", ["created_at"])
    op.drop_index(_NEW, "workload_events")
