"""Kubernetes resource quantities: defined in ``core.quantities`` (the ledger reads them too)."""

from gpufleet.core.quantities import as_float, format_bytes, parse_quantity

__all__ = ["as_float", "format_bytes", "parse_quantity"]
