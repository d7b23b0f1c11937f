"""Can this process use its database? One check at start, with errors an operator can act on.

Drivers report an unreachable server, refused credentials and a missing file as the same
exception class; these are told apart here, once, so the command line can give each its own
one-line message and exit code.
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from gpufleet.settings import Settings
from gpufleet.store.engine import create_store_engine
from gpufleet.store.migrate import alembic_config, upgrade

# libpq's wording for authentication and authorisation failures (no SQLSTATE is sent for them).
_CREDENTIALS_REFUSED = re.compile(
    r"password authentication failed|no password supplied|role \S+ does not exist"
    r"|pg_hba\.conf|authentication failed|permission denied for database",
    re.IGNORECASE,
)


class DatabaseUnavailable(Exception):
    """The database cannot be reached or opened."""


class DatabaseCredentialsRefused(DatabaseUnavailable):
    """The database server answered but refused the configured user or password."""


class SchemaTooNew(Exception):
    """The database was migrated by a newer gpufleet than this one."""

    def __init__(self, revision: str) -> None:
        super().__init__(
            f"the database schema is at revision {revision}, which this gpufleet version "
            "does not know; run the newer version or restore a backup taken before the upgrade"
        )
        self.revision = revision


def _one_line(exc: BaseException) -> str:
    cause = getattr(exc, "orig", None) or exc
    return " ".join(str(cause).split())


def check_database(engine: Engine) -> None:
    """Connect once and compare the schema revision with the migrations this code knows.

    Raises ``DatabaseCredentialsRefused``, ``DatabaseUnavailable`` or ``SchemaTooNew``.
    """
    try:
        with engine.connect() as conn:
            revision = _stored_revision(conn)
    except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
        message = _one_line(exc)
        if _CREDENTIALS_REFUSED.search(message):
            raise DatabaseCredentialsRefused(message) from None
        raise DatabaseUnavailable(message) from None
    if revision is not None and not _known(revision):
        raise SchemaTooNew(revision)


def open_store(settings: Settings, *, migrate: bool = True) -> Engine:
    """The engine of ``settings``' database, checked (``check_database``) and, unless
    ``migrate`` is false, migrated: the start of every command that works on the database, so
    each fails with the same one-line errors and exit codes as ``serve``."""
    engine = create_store_engine(settings)
    try:
        check_database(engine)
        if migrate:
            upgrade(engine)
    except BaseException:
        engine.dispose()
        raise
    return engine


def _stored_revision(conn: sa.Connection) -> str | None:
    if not sa.inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def _known(revision: str) -> bool:
    scripts = ScriptDirectory.from_config(alembic_config())
    return any(script.revision == revision for script in scripts.walk_revisions())
