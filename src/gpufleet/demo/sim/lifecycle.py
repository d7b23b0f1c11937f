"""Which phase may follow which, for each shape of workload the simulator runs.

Every workload is created, waits in the queue, is bound to nodes, initialises and runs. Batch
work then completes or fails; services and interactive work run until their owner deletes or
stops them. Preemption and a lost node send running work back to the queue through
Terminating. Kinds that cannot be suspended never stop.
"""

from __future__ import annotations

from gpufleet.demo.catalog import KINDS, WorkloadKind
from gpufleet.schemas.enums import Phase

P = Phase
# Phases in which the workload's pods are bound to nodes and hold what they asked for.
HOLDING = frozenset({P.INITIALIZING, P.RUNNING, P.DEGRADED, P.UPDATING, P.STOPPING,
                     P.TERMINATING, P.DELETING})  # fmt: skip
# Phases in which the workload's containers run and report samples.
SAMPLED = frozenset({P.RUNNING, P.DEGRADED, P.UPDATING})

_EVERY_KIND: dict[Phase, frozenset[Phase]] = {
    P.CREATING: frozenset({P.PENDING}),
    P.PENDING: frozenset({P.INITIALIZING, P.DELETING}),
    P.INITIALIZING: frozenset({P.RUNNING, P.FAILED, P.TERMINATING}),
    P.RUNNING: frozenset({P.TERMINATING}),
    P.TERMINATING: frozenset({P.PENDING}),
}
_BY_SHAPE: dict[str, dict[Phase, frozenset[Phase]]] = {
    "batch": {
        P.RUNNING: frozenset({P.COMPLETED, P.FAILED, P.DEGRADED}),
        P.DEGRADED: frozenset({P.RUNNING, P.FAILED, P.TERMINATING}),
    },
    "service": {
        P.RUNNING: frozenset({P.UPDATING, P.DEGRADED, P.DELETING, P.FAILED}),
        P.UPDATING: frozenset({P.RUNNING, P.TERMINATING}),
        P.DEGRADED: frozenset({P.RUNNING, P.TERMINATING, P.DELETING}),
    },
    "interactive": {
        P.RUNNING: frozenset({P.DELETING, P.FAILED}),
    },
}
_SUSPENDING: dict[Phase, frozenset[Phase]] = {
    P.RUNNING: frozenset({P.STOPPING}),
    P.STOPPING: frozenset({P.STOPPED}),
    P.STOPPED: frozenset({P.RESUMING}),
    P.RESUMING: frozenset({P.PENDING}),
}


def legal_next(kind: WorkloadKind) -> dict[Phase, frozenset[Phase]]:
    """Phase → the phases that may follow it, for this kind."""
    table: dict[Phase, set[Phase]] = {phase: set(after) for phase, after in _EVERY_KIND.items()}
    parts = [_BY_SHAPE[kind.shape]]
    if kind.suspendable and kind.shape != "batch":
        parts.append(_SUSPENDING)
    for part in parts:
        for phase, after in part.items():
            table.setdefault(phase, set()).update(after)
    return {phase: frozenset(after) for phase, after in table.items()}


LEGAL = {kind.type: legal_next(kind) for kind in KINDS}


def is_legal(kind: WorkloadKind, before: Phase, after: Phase) -> bool:
    """Whether a workload of this kind may go from ``before`` to ``after``."""
    return after in LEGAL[kind.type].get(before, frozenset())
