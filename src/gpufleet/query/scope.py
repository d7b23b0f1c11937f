"""Which workloads a caller may see, as data (the store turns it into one SQL condition)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class WorkloadScope:
    """The union of the caller's readable scopes; ``everything`` overrides the id sets."""

    everything: bool = False
    cluster_ids: frozenset[str] = field(default_factory=frozenset)
    department_ids: frozenset[str] = field(default_factory=frozenset)
    project_ids: frozenset[str] = field(default_factory=frozenset)

    @property
    def is_empty(self) -> bool:
        return not (self.everything or self.cluster_ids or self.department_ids or self.project_ids)


UNRESTRICTED = WorkloadScope(everything=True)
