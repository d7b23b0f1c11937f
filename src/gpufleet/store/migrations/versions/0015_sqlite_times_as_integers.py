"""SQLite keeps times as integer microseconds since the epoch

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06

A time was ISO text of 26 bytes ('2026-12-06 04:40:02.123456'), in its row and again in every
index of its column; as an integer it takes 8 and compares without being parsed. Every time
column of every table is rewritten in place (its declared type stays DATETIME), and the time
totals' anchor, a column the database computes from ``phase_updated_at``, is computed anew
from the integers with its two indexes. PostgreSQL keeps ``timestamptz`` and is left as it is.
"""

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

# Every column of the UtcDateTime type at this revision.
_TIME_COLUMNS = {
    "access_keys": ("updated_at", "created_at", "last_used_at", "disabled_at"),
    "access_rules": ("created_at", "updated_at", "deleted_at"),
    "audit_log": ("at",),
    "clusters": ("created_at", "updated_at", "last_report_at"),
    "departments": ("updated_at", "created_at"),
    "nodepools": ("created_at", "updated_at"),
    "nodes": ("created_at", "updated_at", "observed_at", "deleted_at"),
    "projects": ("updated_at", "created_at"),
    "refresh_sessions": ("started_at", "expires_at", "revoked_at"),
    "reports": ("start_at", "end_at", "created_at", "status_updated_at"),
    "scheduler_queues": ("observed_at",),
    "signing_keys": ("created_at",),
    "workload_phase_history": ("at",),
    "workloads": (
        "phase_updated_at",
        "k8s_phase_updated_at",
        "updated_at",
        "deleted_at",
        "created_at",
        "completed_at",
        "guaranteed_runtime_ends_at",
        "observed_at",
    ),
    "workload_events": ("created_at",),
    "workload_pods": (
        "created_at",
        "completed_at",
        "deleted_at",
        "updated_at",
        "k8s_phase_updated_at",
    ),
}

# (phase, column of its stored seconds, anchor index) as migration 0011 left them.
_TIMED = (
    ("Pending", "pending_seconds_before", "ix_workloads_anchor_pending"),
    ("Running", "running_seconds_before", "ix_workloads_anchor_running"),
)
_ANCHOR_COLUMNS = ("seconds_anchor", "id_key", "deleted_at", "phase_updated_at")


def _to_integer(column: str) -> str:
    """ISO text ('YYYY-MM-DD HH:MM:SS.ffffff' as SQLAlchemy wrote it; a 'T', a shorter or no
    fraction and a zone suffix are read too) as whole microseconds, exactly: strftime gives
    the whole seconds (the zone applied), and the fraction's digits, up to the zone, are read
    as they are, padded to six."""
    rest = f"substr({column}, 21)"
    digits = (
        f"CASE WHEN instr({rest}, '+') > 0 THEN substr({rest}, 1, instr({rest}, '+') - 1) "
        f"WHEN instr({rest}, '-') > 0 THEN substr({rest}, 1, instr({rest}, '-') - 1) "
        f"WHEN instr({rest}, 'Z') > 0 THEN substr({rest}, 1, instr({rest}, 'Z') - 1) "
        f"ELSE {rest} END"
    )
    fraction = f"CAST(substr(({digits}) || '000000', 1, 6) AS INTEGER)"
    return (
        f"CAST(strftime('%s', {column}) AS INTEGER) * 1000000 "
        f"+ CASE WHEN substr({column}, 20, 1) = '.' THEN {fraction} ELSE 0 END"
    )


def _to_text(column: str) -> str:
    return (
        f"strftime('%Y-%m-%d %H:%M:%S', {column} / 1000000, 'unixepoch') "
        f"|| printf('.%06d', {column} % 1000000)"
    )


def _rewrite(convert, kind: str, epoch_second: str) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    # SQLite's driver commits DDL as it goes, so a run cut short (a killed pod) leaves part
    # of it done: every step may find its work done already, and a new run completes it.
    for _, _, index in _TIMED:
        op.execute(f"DROP INDEX IF EXISTS {index}")
    columns = {row[1] for row in bind.exec_driver_sql("PRAGMA table_xinfo(workloads)")}
    if "seconds_anchor" in columns:
        op.execute("ALTER TABLE workloads DROP COLUMN seconds_anchor")
    for table, columns in _TIME_COLUMNS.items():
        assignments = ", ".join(
            f"{c} = CASE WHEN typeof({c}) = '{kind}' THEN {convert(c)} ELSE {c} END"
            for c in columns
        )
        changed = " OR ".join(f"typeof({c}) = '{kind}'" for c in columns)
        op.execute(f"UPDATE {table} SET {assignments} WHERE {changed}")
    before = " ".join(f"WHEN (phase = '{phase}') THEN {column}" for phase, column, _ in _TIMED)
    op.execute(
        f"ALTER TABLE workloads ADD COLUMN seconds_anchor BIGINT "
        f"GENERATED ALWAYS AS (CASE {before} END - {epoch_second}) VIRTUAL"
    )
    for phase, _, index in _TIMED:
        op.execute(
            f"CREATE INDEX {index} ON workloads ({', '.join(_ANCHOR_COLUMNS)}) "
            f"WHERE phase = '{phase}'"
        )


def upgrade() -> None:
    _rewrite(_to_integer, "text", "(phase_updated_at / 1000000)")


def downgrade() -> None:
    _rewrite(_to_text, "integer", "CAST(strftime('%s', phase_updated_at) AS INTEGER)")
