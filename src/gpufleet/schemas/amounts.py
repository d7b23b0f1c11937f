"""Bounds of the amounts a cluster agent reports: resources, counts and quantities are finite and
never below zero, and none is beyond what any real cluster holds.

One workload's amounts end up in sums over the tenant (allocation telemetry, quotas' status,
the usage ledger), so a negative or astronomical figure from one cluster's agent would corrupt
figures of every cluster; ingest refuses it with the field named instead.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from gpufleet.core.quantities import MAX_AMOUNT, parse_quantity

_AMOUNT_RULE = f"must be a number from 0 to {MAX_AMOUNT:g}"
_QUANTITY_RULE = "must be a Kubernetes quantity from 0 to 1e24 (e.g. 500m, 40Gi)"

# The numbers and quantities of a request's or an allocation's resources.
_CORES = ("gpu", "cpu")
_QUANTITIES = ("gpuMemory", "cpuMemory")


def _numbers(prefix: str, resources: Any) -> Iterator[tuple[str, Any, bool]]:
    """(dotted name, value, is a quantity) of each amount of a resources object."""
    if resources is None:
        return
    for name in _CORES:
        value = getattr(resources, name, None)
        if hasattr(value, "request"):  # a request's {request, limit}
            yield f"{prefix}.{name}.request", value.request, False
            yield f"{prefix}.{name}.limit", value.limit, False
        else:
            yield f"{prefix}.{name}", value, False
    for name in _QUANTITIES:
        value = getattr(resources, name, None)
        if hasattr(value, "request"):
            yield f"{prefix}.{name}.request", value.request, True
            yield f"{prefix}.{name}.limit", value.limit, True
        else:
            yield f"{prefix}.{name}", value, True


def resources_problem(prefix: str, resources: Any) -> str | None:
    """What is wrong with the first bad amount of ``resources`` (reported as ``prefix``), or
    None when every amount is in bounds."""
    for name, value, quantity in _numbers(prefix, resources):
        if value is None:
            continue
        if quantity:
            if parse_quantity(value) is None:
                return f"{name} {_QUANTITY_RULE}"
        elif problem := amount_problem(name, value):
            return problem
    return None


def amount_problem(name: str, value: float | int | None) -> str | None:
    """``name``'s rule when ``value`` is not None and not a finite amount from 0 to the bound."""
    if value is None or (math.isfinite(value) and 0 <= value <= MAX_AMOUNT):
        return None
    return f"{name} {_AMOUNT_RULE}"
