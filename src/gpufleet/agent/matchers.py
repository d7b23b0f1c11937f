"""A small expression language over Kubernetes objects, used by the kinds table.

Each kind lists, per normalised status (``Running``, ``Failed``, ...), matchers that say when
the object is in it. Matchers are data (frozen dataclasses), so adding a kind never means
adding code; ``evaluate`` is the only interpreter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gpufleet.agent.objectpath import conditions, value_at


@dataclass(frozen=True)
class Condition:
    """``status.conditions[type]`` has ``status`` (and one of ``reasons`` when given)."""

    type: str
    status: str = "True"
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class Field:
    """The value at ``path`` is one of ``values`` (a missing value reads as ``""``)."""

    path: str
    values: tuple[Any, ...]


@dataclass(frozen=True)
class Compare:
    """Number at ``left`` compared by ``op`` with a number or the number at a path."""

    left: str
    op: str
    right: str | float


@dataclass(frozen=True)
class Differs:
    """The values at two paths are both present and different (e.g. generation vs observed)."""

    left: str
    right: str


@dataclass(frozen=True)
class AllOf:
    """Every inner matcher matches."""

    matchers: tuple[Matcher, ...]


@dataclass(frozen=True)
class Not:
    """The inner matcher does not match."""

    matcher: Matcher


Matcher = Condition | Field | Compare | Differs | AllOf | Not

_OPS = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}


def _number(obj: Mapping[str, Any], ref: str | float) -> float:
    raw = value_at(obj, ref, 0) if isinstance(ref, str) else ref
    try:
        return float(raw)
    except (TypeError, ValueError):
        return 0.0


def find_condition(obj: Mapping[str, Any], matcher: Condition) -> Mapping[str, Any] | None:
    """The condition that satisfies ``matcher``, if any."""
    for condition in conditions(obj):
        if condition.get("type") != matcher.type:
            continue
        if str(condition.get("status")) != matcher.status:
            continue
        if matcher.reasons and condition.get("reason") not in matcher.reasons:
            continue
        return condition
    return None


def evaluate(matcher: Matcher, obj: Mapping[str, Any]) -> bool:
    """Whether ``matcher`` holds for ``obj``."""
    match matcher:
        case Condition():
            return find_condition(obj, matcher) is not None
        case Field(path, values):
            found = value_at(obj, path, "")
            return found in values
        case Compare(left, op, right):
            return _OPS[op](_number(obj, left), _number(obj, right))
        case Differs(left, right):
            a, b = value_at(obj, left), value_at(obj, right)
            return a is not None and b is not None and a != b
        case AllOf(matchers):
            return all(evaluate(inner, obj) for inner in matchers)
        case Not(inner):
            return not evaluate(inner, obj)
    raise TypeError(f"not a matcher: {matcher!r}")


def explain(matcher: Matcher, obj: Mapping[str, Any]) -> str | None:
    """A human-readable reason for a match: the message of the condition that made it.

    Within ``AllOf`` a condition carrying a message wins over one carrying only a reason.
    """
    found = _matched_conditions(matcher, obj)
    for condition in found:
        if condition.get("message"):
            return str(condition["message"])
    for condition in found:
        if condition.get("reason"):
            return str(condition["reason"])
    return None


def _matched_conditions(matcher: Matcher, obj: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    match matcher:
        case Condition():
            found = find_condition(obj, matcher)
            return [found] if found is not None else []
        case AllOf(matchers):
            return [c for inner in matchers for c in _matched_conditions(inner, obj)]
    return []
