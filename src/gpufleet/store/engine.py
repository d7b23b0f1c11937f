"""Creating the database engine from settings."""

from __future__ import annotations

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gpufleet.settings import Settings
from gpufleet.store.dialect import (
    bound_sqlite_statements,
    configure_sqlite,
    statement_timeout_options,
)


def _json_serializer(value: object) -> str:
    return orjson.dumps(value).decode()


def create_store_engine(settings: Settings) -> Engine:
    url = sa.make_url(settings.database_url)
    common = {
        "json_serializer": _json_serializer,
        "json_deserializer": orjson.loads,
        # The connection returned last is handed out first: its PostgreSQL server process (or
        # SQLite page cache) is the warmest, where taking turns kept every connection cold.
        "pool_use_lifo": True,
    }
    if url.get_backend_name() == "sqlite":
        engine = sa.create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 10},
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout=settings.db_pool_timeout_seconds,
            **common,
        )
        configure_sqlite(engine, settings.sqlite_synchronous)
        bound_sqlite_statements(engine, settings.db_statement_timeout_seconds)
        return engine
    return sa.create_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_seconds,
        pool_pre_ping=True,
        connect_args={
            "connect_timeout": settings.db_connect_timeout_seconds,
            **statement_timeout_options(settings.db_statement_timeout_seconds),
        },
        **common,
    )
