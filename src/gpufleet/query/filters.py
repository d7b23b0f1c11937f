"""The ``filterBy`` grammar: parse text into terms, then validate each against the field table.

A term is ``<field><operator><value>``, e.g. ``allocatedGPU>=2`` or ``name=@bert``.
Several terms arrive comma-separated in one parameter (the official SDK joins a list that way)
or as repeated parameters; all terms are AND-ed.

A comma belongs to a value unless the text after it starts a new term
(``<identifier><operator>``), so ``name=@a,b`` is one term and ``name=@a,phase==Running`` two.
Compilation to SQL is the store's job (``store.workload_filters``); nothing here knows SQL.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from gpufleet.core.node_fields import NODE_FIELDS, NODEPOOL_FIELDS
from gpufleet.core.workload_fields import ALLOWED_OPERATORS, FieldKind, Operator, WorkloadField
from gpufleet.query.errors import QueryError
from gpufleet.query.fields import WORKLOAD_FIELDS
from gpufleet.schemas.enums import NodepoolPhase, NodeStatus, Phase

_OPERATOR_PATTERN = "|".join(re.escape(op.value) for op in Operator)
_TERM = re.compile(rf"^([A-Za-z][A-Za-z0-9_]*)({_OPERATOR_PATTERN})(.*)$", re.DOTALL)
_TERM_START = re.compile(rf"[A-Za-z][A-Za-z0-9_]*(?:{_OPERATOR_PATTERN})")
_NUMBER = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")
# Fields whose values are an enum of the reference (in its order): == and != must name one.
_ENUMS: tuple[tuple[WorkloadField, tuple[str, ...]], ...] = tuple(
    (field, tuple(member.value for member in enum))
    for field, enum in (
        (WORKLOAD_FIELDS["phase"], Phase),
        (NODE_FIELDS["status"], NodeStatus),
        (NODEPOOL_FIELDS["phase"], NodepoolPhase),
    )
)
MAX_TERMS = 50
MAX_TERM_LENGTH = 1024

FilterValue = str | float | datetime


@dataclass(frozen=True, slots=True)
class FilterTerm:
    field: WorkloadField
    operator: Operator
    value: FilterValue
    raw: str


def split_terms(parameter_values: Iterable[str]) -> list[str]:
    """Split each ``filterBy`` parameter into raw terms (see the module docstring)."""
    terms: list[str] = []
    for parameter in parameter_values:
        pieces = parameter.split(",")
        current = pieces[0]
        for piece in pieces[1:]:
            if _TERM_START.match(piece):
                terms.append(current)
                current = piece
            else:
                current = f"{current},{piece}"
        terms.append(current)
    return [t for t in terms if t != ""]


def parse_term(raw: str, fields: Mapping[str, WorkloadField] = WORKLOAD_FIELDS) -> FilterTerm:
    """Parse and validate one term; raise ``QueryError`` naming it when it is wrong."""
    if len(raw) > MAX_TERM_LENGTH:
        raise QueryError("filterBy", f"term is longer than {MAX_TERM_LENGTH} characters")
    match = _TERM.match(raw)
    if match is None:
        raise QueryError(
            "filterBy",
            f"term {raw!r} is not of the form <field><operator><value>; operators are "
            + " ".join(op.value for op in Operator),
        )
    name, op_text, value_text = match.groups()
    field = fields.get(name)
    if field is None:
        raise QueryError("filterBy", f"term {raw!r}: unknown field {name!r}")
    operator = Operator(op_text)
    if operator not in ALLOWED_OPERATORS[field.kind]:
        allowed = " ".join(op.value for op in Operator if op in ALLOWED_OPERATORS[field.kind])
        raise QueryError(
            "filterBy",
            f"term {raw!r}: operator {operator.value} is not allowed for {field.kind.value} "
            f"field {name!r} (allowed: {allowed})",
        )
    if value_text == "":
        raise QueryError("filterBy", f"term {raw!r} has no value")
    return FilterTerm(field, operator, _parse_value(raw, field, operator, value_text), raw)


def enum_values(field: WorkloadField) -> tuple[str, ...] | None:
    """The values a field takes when they are an enum of the reference, else None."""
    return next((values for known, values in _ENUMS if known is field), None)


def parse_filters(
    parameter_values: Iterable[str] | None,
    fields: Mapping[str, WorkloadField] = WORKLOAD_FIELDS,
) -> tuple[FilterTerm, ...]:
    """Parse every term against ``fields`` (the workload fields unless another resource's)."""
    if not parameter_values:
        return ()
    raw_terms = split_terms(parameter_values)
    if len(raw_terms) > MAX_TERMS:
        raise QueryError("filterBy", f"at most {MAX_TERMS} terms are allowed")
    return tuple(parse_term(raw, fields) for raw in raw_terms)


def _parse_value(raw: str, field: WorkloadField, operator: Operator, text: str) -> FilterValue:
    if field.kind in (FieldKind.NUMBER, FieldKind.INTEGER):
        return _parse_number(raw, text)
    if field.kind is FieldKind.DATE:
        return parse_timestamp(text, parameter="filterBy", context=f"term {raw!r}: ")
    if "\x00" in text:
        raise QueryError("filterBy", f"term {raw!r}: value contains a NUL character")
    if operator in (Operator.EQ, Operator.NE):
        values = enum_values(field)
        if values is not None and text not in values:
            raise QueryError(
                "filterBy",
                f"term {raw!r}: unknown {field.name} {text!r} "
                f"(one of: {', '.join(sorted(values))})",
            )
    return text


def _parse_number(raw: str, text: str) -> float:
    if not _NUMBER.match(text.strip()):
        raise QueryError("filterBy", f"term {raw!r}: {text!r} is not a number")
    value = float(text)
    if not math.isfinite(value):
        raise QueryError("filterBy", f"term {raw!r}: {text!r} is out of range")
    return value


def parse_timestamp(text: str, *, parameter: str, context: str = "") -> datetime:
    """ISO 8601 with or without a zone; a naive time is UTC. Returns an aware UTC datetime."""
    candidate = text.strip()
    if candidate.endswith(("z", "Z")):
        candidate = candidate[:-1] + "+00:00"
    try:
        value = datetime.fromisoformat(candidate)
    except ValueError:
        raise QueryError(parameter, f"{context}{text!r} is not an ISO 8601 timestamp") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise QueryError(parameter, f"{context}{text!r} is out of range") from None
