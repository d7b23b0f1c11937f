"""Kubernetes resource quantities (``500m``, ``2Gi``, ``1e3``) parsed and formatted."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1)}
_DECIMAL.update({"k": Decimal(10**3), "M": Decimal(10**6), "G": Decimal(10**9)})
_LARGEST = Decimal("1e24")
# The largest amount of anything else (GPUs, cores) a report may carry: far above any real node,
# quota or workload, far below where sums over a fleet lose their meaning.
MAX_AMOUNT = 1e15
_DECIMAL.update({"T": Decimal(10**12), "P": Decimal(10**15), "E": Decimal(10**18)})


def parse_quantity(raw: object) -> Decimal | None:
    """The quantity as a number (cores for CPU, bytes for memory), or None when malformed."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int | float):
        return Decimal(str(raw))
    if not isinstance(raw, str) or not raw.strip():
        return None
    text = raw.strip()
    suffix = text[-2:] if text[-2:] in _BINARY else ""
    multiplier: Decimal | int = _BINARY[suffix] if suffix else 1
    if not suffix and text[-1:] in _DECIMAL and text[-1:] and not text[-1].isdigit():
        suffix = text[-1]
        # "1e3" is an exponent, not the "E" suffix; only upper-case E is exa.
        multiplier = _DECIMAL[suffix]
    number = text[: len(text) - len(suffix)] if suffix else text
    try:
        value = Decimal(number) * multiplier
    except InvalidOperation:
        return None
    # Anything beyond an exabyte-scale number is a typo or an attack, not a request.
    return value if value.is_finite() and 0 <= value <= _LARGEST else None


def format_bytes(value: Decimal | float | int | None) -> str | None:
    """Bytes as a quantity string in the largest exact binary unit (``2Gi``, ``512Mi``)."""
    if value is None:
        return None
    whole = int(Decimal(str(value)).to_integral_value())
    for suffix in ("Ti", "Gi", "Mi", "Ki"):
        unit = _BINARY[suffix]
        if whole and whole % unit == 0:
            return f"{whole // unit}{suffix}"
    return str(whole)


def as_float(value: Decimal | None) -> float | None:
    """A Decimal as a float rounded to 6 places (None stays None)."""
    return None if value is None else round(float(value), 6)


def reportable_amount(value: Decimal | None) -> float | None:
    """``as_float`` of an amount from 0 to ``MAX_AMOUNT``; None for anything else (a sum over
    absurd replica counts is not a figure to report)."""
    if value is None or not 0 <= value <= MAX_AMOUNT:
        return None
    return as_float(value)


def reportable_bytes(value: Decimal | None) -> str | None:
    """``format_bytes`` of a quantity ``parse_quantity`` takes back; None for anything else."""
    if value is None or not 0 <= value <= _LARGEST:
        return None
    return format_bytes(value)
