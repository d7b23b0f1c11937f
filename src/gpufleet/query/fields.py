"""The workload fields ``filterBy`` and ``sortBy`` may name, derived from the catalogue.

Adding a queryable field means adding a row to ``core.workload_fields`` with a ``sort_rank``;
the parser, the validator, the SQL compiler, the OpenAPI enum, the table's indexes and the
dashboard all read it from there.
"""

from __future__ import annotations

from gpufleet.core.workload_fields import QUERY_FIELDS, WorkloadField, catalogue

# Keyed by name, in the order of the reference's sortBy enum.
WORKLOAD_FIELDS: dict[str, WorkloadField] = catalogue(*QUERY_FIELDS)
