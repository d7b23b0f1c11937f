"""Running the single migration chain (both dialects) against an engine."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine

from gpufleet.store.dialect import without_statement_timeout
from gpufleet.store.tables import created_on

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def schema_of(dialect_name: str) -> Callable[..., bool]:
    """Alembic's ``include_object`` for a dialect: leaves out the indexes the table definitions
    create on another dialect only (``Index.ddl_if``), so comparing a database with them
    finds what its own migrations should have made."""

    def included(item: Any, _name: str, kind: str, reflected: bool, _other: Any) -> bool:
        return kind != "index" or reflected or created_on(item, dialect_name)

    return included


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision``; safe to run from several processes at once on PG."""
    config = alembic_config()
    with engine.begin() as connection:
        # Building an index on a large table may take longer than any request may.
        without_statement_timeout(connection)
        if connection.dialect.name == "postgresql":
            # Replicas starting together must not race each other through the chain.
            connection.exec_driver_sql("SELECT pg_advisory_xact_lock(4711001)")
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
