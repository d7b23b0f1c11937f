"""Parameters that name values of a fixed set, given comma-separated, repeated, or both."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import TypeVar
from uuid import UUID

from gpufleet.query.errors import QueryError

T = TypeVar("T")
E = TypeVar("E", bound=StrEnum)


def split_values(values: Sequence[str] | None) -> list[str]:
    """The non-empty, stripped items of a parameter's values, each of which may list several."""
    return [piece.strip() for value in values or () for piece in value.split(",") if piece.strip()]


def by_value(enum: type[E]) -> dict[str, E]:
    """An enum's members by their wire value, in declaration order."""
    return {member.value: member for member in enum}


def parse_choices(
    parameter: str,
    values: Sequence[str] | None,
    allowed: Mapping[str, T],
    *,
    unknown: str | None = None,
    distinct: bool = False,
) -> tuple[T, ...]:
    """The choices ``values`` name, in the order first given.

    A name outside ``allowed`` is refused with the reason ``unknown`` (by default, the list of
    allowed names). A choice named twice is refused when ``distinct``; otherwise it counts once.
    """
    chosen: list[T] = []
    for name in split_values(values):
        choice = allowed.get(name)
        if choice is None:
            reason = unknown or f"is not one of {', '.join(allowed)}"
            raise QueryError(parameter, f"{name[:64]!r} {reason}")
        if choice in chosen:
            if distinct:
                raise QueryError(parameter, f"{name!r} is given twice")
            continue
        chosen.append(choice)
    return tuple(chosen)


def parse_group_by(
    values: Sequence[str] | None, allowed: Mapping[str, T], maximum: int
) -> tuple[T, ...]:
    """A telemetry ``groupBy``: distinct names of ``allowed``, at most ``maximum`` of them."""
    groups = parse_choices("groupBy", values, allowed, distinct=True)
    if len(groups) > maximum:
        raise QueryError("groupBy", f"at most {maximum} values are allowed")
    return groups


def canonical_uuid(parameter: str, value: str) -> str:
    """The UUID ``parameter`` gives, in canonical form, or a QueryError."""
    try:
        return str(UUID(value))
    except ValueError:
        raise QueryError(parameter, f"{value[:64]!r} is not a UUID") from None


def parse_uuid_choice(parameter: str, value: str | None) -> str | None:
    """An optional query parameter naming a UUID (a cluster), in canonical form."""
    return None if value is None else canonical_uuid(parameter, value)
