"""service accounts and users' access keys; soft-deleted access rules; audit subject types

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04

Every access key of earlier releases was a credential with rules of its own, which is what
Run:ai calls a service account: each becomes one (same client id, secret, token generation and
rules), with a Run:ai ``id``. A key that belongs to a user (Run:ai's access keys) names its
owner. Two service accounts may not share a name; where earlier keys did, the later ones get
``-2``, ``-3`` … appended (oldest first keeps its name). Rules of subject type ``accessKey``
become ``service-account`` rules; rules are soft-deleted from now on (``deleted_at``). Audit
entries name their subject type, and ``access_key.*`` actions read ``service_account.*``.
"""

import uuid

import sqlalchemy as sa
from alembic import op

import gpufleet.store.types

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_AT = gpufleet.store.types.UtcDateTime(timezone=True)


def _assign_ids_and_unique_names(conn) -> None:
    rows = conn.execute(
        sa.text("SELECT client_id, name FROM access_keys ORDER BY created_at, client_id")
    ).all()
    taken: set[str] = set()
    for client_id, name in rows:
        unique, suffix = name, 2
        while unique in taken:
            unique, suffix = f"{name}-{suffix}", suffix + 1
        taken.add(unique)
        conn.execute(
            sa.text("UPDATE access_keys SET id = :id, name = :name WHERE client_id = :client_id"),
            {"id": str(uuid.uuid4()), "name": unique, "client_id": client_id},
        )


def upgrade() -> None:
    with op.batch_alter_table("access_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("id", sa.String(length=36), nullable=True))
        batch_op.add_column(
            sa.Column(
                "kind", sa.String(length=16), server_default="service-account", nullable=False
            )
        )
        batch_op.add_column(
            sa.Column("owner_type", sa.String(length=16), server_default="", nullable=False)
        )
        batch_op.add_column(
            sa.Column("owner_id", sa.String(length=253), server_default="", nullable=False)
        )
        batch_op.add_column(
            sa.Column("created_by", sa.String(length=253), server_default="", nullable=False)
        )
        batch_op.add_column(sa.Column("updated_at", _AT, nullable=True))
    conn = op.get_bind()
    _assign_ids_and_unique_names(conn)
    # Who created a key is in the audit log when it was created through the API or the CLI.
    conn.execute(
        sa.text(
            "UPDATE access_keys SET updated_at = created_at, created_by = COALESCE(("
            "SELECT MIN(actor) FROM audit_log WHERE audit_log.action = 'access_key.create' "
            "AND audit_log.target = access_keys.client_id), 'bootstrap')"
        )
    )
    with op.batch_alter_table("access_keys", schema=None) as batch_op:
        batch_op.alter_column("id", existing_type=sa.String(length=36), nullable=False)
        batch_op.create_index(batch_op.f("ix_access_keys_id"), ["id"], unique=True)
        batch_op.create_index(
            batch_op.f("ix_access_keys_kind_owner_type_owner_id_name"),
            ["kind", "owner_type", "owner_id", "name"],
            unique=True,
        )

    with op.batch_alter_table("access_rules", schema=None) as batch_op:
        batch_op.add_column(sa.Column("updated_at", _AT, nullable=True))
        batch_op.add_column(sa.Column("deleted_at", _AT, nullable=True))
    conn.execute(sa.text("UPDATE access_rules SET updated_at = created_at"))
    conn.execute(
        sa.text(
            "UPDATE access_rules SET subject_type = 'service-account' "
            "WHERE subject_type = 'accessKey'"
        )
    )
    with op.batch_alter_table("access_rules", schema=None) as batch_op:
        batch_op.alter_column("updated_at", existing_type=_AT, nullable=False)

    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("subject_type", sa.String(length=8), server_default="User", nullable=False)
        )
        batch_op.add_column(sa.Column("entity_name", sa.String(length=253), nullable=True))
    conn.execute(
        sa.text(
            "UPDATE audit_log SET subject_type = 'App' WHERE actor IN ('cli', 'bootstrap') "
            "OR actor IN (SELECT client_id FROM access_keys)"
        )
    )
    conn.execute(
        sa.text(
            "UPDATE audit_log SET action = 'service_account.' || SUBSTR(action, 12) "
            "WHERE action LIKE 'access\\_key.%' ESCAPE '\\'"
        )
    )


def downgrade() -> None:
    conn = op.get_bind()
    conn.execute(
        sa.text(
            "UPDATE audit_log SET action = 'access_key.' || SUBSTR(action, 17) "
            "WHERE action LIKE 'service\\_account.%' ESCAPE '\\'"
        )
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_column("entity_name")
        batch_op.drop_column("subject_type")
    conn.execute(sa.text("DELETE FROM access_rules WHERE deleted_at IS NOT NULL"))
    conn.execute(
        sa.text(
            "UPDATE access_rules SET subject_type = 'accessKey' "
            "WHERE subject_type = 'service-account'"
        )
    )
    with op.batch_alter_table("access_rules", schema=None) as batch_op:
        batch_op.drop_column("deleted_at")
        batch_op.drop_column("updated_at")
    # Users' access keys did not exist before; their rows cannot go back.
    conn.execute(sa.text("DELETE FROM access_keys WHERE kind <> 'service-account'"))
    with op.batch_alter_table("access_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_access_keys_kind_owner_type_owner_id_name"))
        batch_op.drop_index(batch_op.f("ix_access_keys_id"))
        batch_op.drop_column("updated_at")
        batch_op.drop_column("created_by")
        batch_op.drop_column("owner_id")
        batch_op.drop_column("owner_type")
        batch_op.drop_column("kind")
        batch_op.drop_column("id")
