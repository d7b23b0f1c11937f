"""Time on the wire and in storage: epoch milliseconds and one RFC 3339 format."""

from __future__ import annotations

from datetime import UTC, datetime


def to_ms(moment: datetime) -> int:
    """Epoch milliseconds of an aware datetime."""
    return int(moment.timestamp() * 1000)


def from_ms(epoch_ms: int) -> datetime:
    """The aware UTC datetime of epoch milliseconds."""
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)


def format_rfc3339(moment: datetime, timespec: str = "milliseconds") -> str:
    """RFC 3339 in UTC ending in ``Z``, as the reference examples write it."""
    # isoformat is C code and ends in "+00:00" for UTC; a listing formats thousands of these.
    return moment.astimezone(UTC).isoformat(timespec=timespec)[:-6] + "Z"


def truncate_to_ms(moment: datetime) -> datetime:
    """Stored times keep millisecond precision, so a time read back filters equal to itself."""
    return moment.replace(microsecond=moment.microsecond - moment.microsecond % 1000)
