"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import JSON, DateTime, LargeBinary
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.types import TypeDecorator, TypeEngine


class _EpochMicroseconds(TypeEngine[int]):
    """How SQLite holds a UtcDateTime: whole microseconds since the Unix epoch, an integer of
    8 bytes, in a column still declared ``DATETIME`` (ISO text took 26 bytes, in the row and
    again in every index of the column, and each comparison parsed it)."""

    __visit_name__ = "DATETIME"


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def sqlite_time(moment: datetime) -> int:
    """An aware time as SQLite holds it: whole microseconds since the Unix epoch."""
    return (moment - _EPOCH) // _MICROSECOND


class UtcDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on the way in and out, whatever the dialect stores.

    SQLite keeps it as integer microseconds since the epoch (exact, and ordered as the times
    are); PostgreSQL as ``timestamptz``. Naive datetimes are refused on the way in: every
    timestamp in gpufleet is UTC-aware.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "sqlite":
            return _EpochMicroseconds()
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | int | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UtcDateTime column")
        if dialect.name == "sqlite":
            return sqlite_time(value)
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | int | None, dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, int):
            return _EPOCH + timedelta(microseconds=value)
        return value.astimezone(UTC)


# JSONB on PostgreSQL (smaller, no re-parsing quirks), plain JSON text elsewhere.
Json = JSON().with_variant(JSONB(), "postgresql")


class UuidKey(TypeDecorator[str]):
    """A UUID given as its canonical text, stored as its 16 bytes (``uuid`` on PostgreSQL).

    Bytes order as the lower-case text does, so a key of this type breaks ties exactly as the
    text id would, in an index entry less than half the size.
    """

    impl = LargeBinary(16)
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "postgresql":
            return dialect.type_descriptor(UUID(as_uuid=False))
        return dialect.type_descriptor(LargeBinary(16))

    def process_bind_param(self, value: str | None, dialect) -> str | bytes | None:
        if value is None:
            return None
        key = uuid.UUID(str(value))
        return str(key) if dialect.name == "postgresql" else key.bytes

    def process_result_value(self, value: str | bytes | None, dialect) -> str | None:
        if value is None or isinstance(value, str):
            return value
        return str(uuid.UUID(bytes=bytes(value)))
