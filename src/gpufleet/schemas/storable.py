"""What the store can hold: one check for every value a request carries, at any depth.

JSON and pydantic accept values that SQLite, PostgreSQL or the JSON encoder cannot keep, and
one that reaches them is a 500 (or, worse, a stored ``inf``): non-finite numbers (also the
strings ``"NaN"`` and ``"Infinity"``, which pydantic turns into floats), integers beyond 64 bits,
times whose offset carries them outside the years 1 to 9999 once converted to UTC, NUL characters
(PostgreSQL text and JSON refuse them), lone surrogates (not encodable as UTF-8), and nesting
deeper than the JSON encoder follows. ``problem_in`` walks any value (parsed JSON, a validated
model, query and path parameters) with the same rules; ``load_json`` parses a request body and
applies them; ``StorableModel`` applies them to a validated request model, where coerced
floats and parsed times first exist.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import cache
from json.decoder import scanstring
from typing import Any, NoReturn
from uuid import UUID

import orjson
from pydantic import BaseModel, ValidationInfo, model_validator
from pydantic_core import PydanticCustomError

from gpufleet.core.errors import Invalid

# Kubernetes objects nest about 15 levels; the JSON encoder stops at 254.
MAX_DEPTH = 64
_LARGEST_INT = 2**63 - 1
_BAD_CHARACTER = re.compile("[\x00\ud800-\udfff]")
_TOO_DEEP = f"is nested deeper than {MAX_DEPTH} levels"
_TOO_LARGE = "is out of range (more than 64 bits)"
_STRUCTURE = re.compile(r'["{}\[\],]')

Path = tuple[str | int, ...]


class Unstorable(Invalid):
    """A value the store cannot hold, with where it is (``path``) and what is wrong."""

    def __init__(self, subject: str, path: Path, problem: str) -> None:
        self.path = path
        self.problem = problem
        named = f" {dotted(path)!r}" if path else ""
        super().__init__(f"Invalid {subject}{named}: {problem}")


def dotted(path: Path) -> str:
    """``("pods", 0, "name")`` -> ``pods.0.name``, printable whatever the keys hold."""
    parts = [_printable(str(part)) for part in path]
    if len(parts) > 8:
        parts = [*parts[:6], "…", parts[-1]]
    return ".".join(parts)


def _printable(text: str) -> str:
    text = text if len(text) <= 64 else text[:64] + "…"
    if _BAD_CHARACTER.search(text):
        return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")
    return text


def _string_problem(text: str) -> str | None:
    found = _BAD_CHARACTER.search(text)
    if found is None:
        return None
    if found.group() == "\x00":
        return "contains a NUL character"
    return f"contains a lone surrogate (\\u{ord(found.group()):04x})"


def _scalar_problem(value: Any) -> str | None:
    kind = type(value)
    if kind is str or isinstance(value, str):
        return _string_problem(value)
    if kind is float or isinstance(value, float):
        return None if math.isfinite(value) else "is not a finite number"
    if kind is int:
        return None if -_LARGEST_INT <= value <= _LARGEST_INT else _TOO_LARGE
    if isinstance(value, datetime) and value.tzinfo is not None:
        try:
            value.astimezone(UTC)
        except OverflowError:
            return "is outside the years 1 to 9999 once converted to UTC"
    return None


@cache
def _wire_names(model: type[BaseModel]) -> dict[str, str]:
    """Attribute name -> the name the field has on the wire, per model class."""
    return {name: info.alias or name for name, info in model.model_fields.items()}


def _children(value: Any) -> Iterable[tuple[str | int, Any]] | None:
    """The named parts of a container, or None for a scalar (a model's by attribute name)."""
    if isinstance(value, dict):
        return value.items()
    if isinstance(value, list | tuple):
        return enumerate(value)
    if isinstance(value, BaseModel):
        extra = value.__pydantic_extra__
        return value.__dict__.items() if not extra else [*value.__dict__.items(), *extra.items()]
    return None


def problem_in(value: Any, path: Path = (), *, strings: bool = True) -> tuple[Path, str] | None:
    """The first part of ``value`` the store cannot hold, as ``(path, problem)``, or None.

    ``strings=False`` leaves out the text checks (keys and string values), for a value whose
    every string came from a body ``load_json`` accepted (it checked them all).
    """
    found = _find(value, len(path), strings)
    if found is None:
        return None
    reversed_keys, problem = found
    return (*path, *reversed(reversed_keys)), problem


def _find(value: Any, depth: int, strings: bool = True) -> tuple[list[str | int], str] | None:
    # The path is only built on the way back from a problem: most values have none.
    if depth > MAX_DEPTH:
        return [], _TOO_DEEP
    children = _children(value)
    if children is None:
        problem = None if not strings and isinstance(value, str) else _scalar_problem(value)
        return None if problem is None else ([], problem)
    # A model's own keys are its field names; only a dict's (or a model's extras) are data.
    keys = strings and not (isinstance(value, BaseModel) and not value.__pydantic_extra__)
    # Below this depth a child is not too deep itself, only what it holds may be.
    shallow = depth < MAX_DEPTH
    for key, child in children:
        if keys and type(key) is str and _BAD_CHARACTER.search(key) is not None:
            return [_wire_key(value, key)], f"has a key that {_string_problem(key)}"
        kind = type(child)
        # The common harmless scalars, without a call each.
        if child is None or kind is bool:
            continue
        if kind is str and (not strings or _BAD_CHARACTER.search(child) is None):
            continue
        if kind is int and -_LARGEST_INT <= child <= _LARGEST_INT:
            continue
        if kind is float and math.isfinite(child):
            continue
        if shallow:
            # A validated model's other common values: ids, UTC (or naive) times, empty lists.
            if kind is UUID or (kind is list and not child):
                continue
            if kind is datetime and not child.utcoffset():
                continue
        found = _find(child, depth + 1, strings)
        if found is not None:
            found[0].append(_wire_key(value, key))
            return found
    return None


def _wire_key(container: Any, key: str | int) -> str | int:
    """The name a part has on the wire: a model attribute's alias, else the key itself."""
    if isinstance(container, BaseModel):
        return _wire_names(type(container)).get(key, key)  # type: ignore[arg-type]
    return key


def check(value: Any, subject: str = "request body field", path: Path = ()) -> None:
    """Raise ``Unstorable`` naming the first part of ``value`` the store cannot hold."""
    found = problem_in(value, path)
    if found is not None:
        raise Unstorable(subject, *found)


def load_json(raw: bytes) -> Any:
    """A request body parsed and checked, or ``Invalid`` naming the field at fault.

    orjson parses (it refuses NaN, Infinity, lone surrogates and overflowing numbers); when it
    refuses a body, the standard parser, which reads all of those, finds which field holds one.
    """
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        _locate(raw, exc)
    # What orjson accepts can still hold a NUL (only as the escape \u0000) and nest deeper
    # than the limit; the request model's own check sees the depth of what is kept.
    if b"\\u0000" in raw:
        check(value)
    return value


def _locate(raw: bytes, refusal: orjson.JSONDecodeError) -> NoReturn:
    """Raise ``Invalid`` for a body orjson refused, naming the field when there is one."""
    try:
        # NaN and Infinity literals become floats, which the check then names.
        value = json.loads(raw, parse_constant=float)
    except RecursionError:
        # Deeper than either parser follows: find where from the text itself.
        path = _too_deep(raw.decode("utf-8", "replace"))
        raise Unstorable("request body field", path or (), _TOO_DEEP) from None
    except (ValueError, UnicodeDecodeError):
        raise Invalid("Invalid request body: the body is not valid JSON", str(refusal)) from None
    check(value)
    # The standard parser found nothing wrong that the check knows of: report orjson's reason.
    raise Invalid("Invalid request body: the body is not valid JSON", str(refusal))


def _too_deep(text: str) -> Path | None:
    """The path at which JSON text first nests deeper than ``MAX_DEPTH``, without parsing it
    recursively; only the structure is followed (strings are decoded to learn keys)."""
    # One frame per open container: [key or index of the member being read, expecting a key].
    frames: list[list[Any]] = []
    position = 0
    while (found := _STRUCTURE.search(text, position)) is not None:
        char, position = found.group(), found.end()
        if char == '"':
            try:
                value, position = scanstring(text, position)
            except ValueError:
                return None
            if frames and frames[-1][1]:
                frames[-1] = [value, False]
        elif char in "{[":
            if len(frames) > MAX_DEPTH:
                return tuple(frame[0] for frame in frames)
            frames.append(["", True] if char == "{" else [0, False])
        elif char in "}]":
            if frames:
                frames.pop()
        elif frames and isinstance(frames[-1][0], int):
            frames[-1][0] += 1
        elif frames:
            frames[-1][1] = True
    return None


# Validation context of a model validated from a body ``load_json`` accepted: its strings are
# known to be storable, and only what validation made of them (numbers, times) is checked.
STRINGS_CHECKED = {"strings_checked": True}


class StorableModel(BaseModel):
    """A request model whose validated values are all storable (checked at every depth)."""

    @model_validator(mode="after")
    def _only_storable_values(self, info: ValidationInfo) -> StorableModel:
        checked = bool(info.context and info.context.get("strings_checked"))
        found = problem_in(self, strings=not checked)
        if found is not None:
            path, problem = found
            raise PydanticCustomError(
                "unstorable",
                "field {field}: {problem}",
                {"field": repr(dotted(path)), "problem": problem},
            )
        return self
