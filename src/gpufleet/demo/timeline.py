"""Simulated phase histories, and the timestamps and accumulated times they imply.

A workload's history is a list of earlier stretches (phase, seconds) ending in its current
phase. Times are whole seconds before the anchor, so every timestamp is exact to the
millisecond and the server's "current stretch" arithmetic matches the simulation.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from gpufleet.demo.weighted import between
from gpufleet.schemas.enums import TERMINAL_PHASES, Phase

P = Phase
# Seconds a workload has been in its current phase: (shortest, longest), drawn log-uniformly.
_CURRENT_STRETCH: dict[Phase, tuple[int, int]] = {
    P.CREATING: (2, 90),
    P.PENDING: (30, 3 * 86400),
    P.INITIALIZING: (10, 1200),
    P.RUNNING: (60, 14 * 86400),
    P.DEGRADED: (60, 2 * 86400),
    P.UPDATING: (10, 900),
    P.STOPPING: (5, 180),
    P.TERMINATING: (5, 180),
    P.DELETING: (5, 300),
    P.UNKNOWN: (60, 6 * 3600),
    P.COMPLETED: (60, 30 * 86400),
    P.FAILED: (60, 30 * 86400),
    P.STOPPED: (600, 20 * 86400),
    P.RESUMING: (5, 300),
}
# Phases a deleted workload was last seen in.
DELETED_PHASES = (P.COMPLETED, P.FAILED, P.STOPPED)
# Phases in which no status update arrives any more after the phase change.
_QUIET = TERMINAL_PHASES | {P.STOPPED}


@dataclass(frozen=True, slots=True)
class Timeline:
    """When things happened to one workload; every time is at or before the anchor."""

    phase: Phase
    created_at: datetime
    phase_updated_at: datetime
    k8s_phase_updated_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    deleted_at: datetime | None
    pending_seconds_before: int
    running_seconds_before: int
    # When the pods were first bound to nodes (the first Initializing), if they ever were.
    scheduled_at: datetime | None


def log_uniform(rng: random.Random, low: int, high: int) -> int:
    """A whole number between low and high, small values as likely per decade as large ones."""
    return int(low * (high / low) ** rng.random())


def _earlier_stretches(rng: random.Random, phase: Phase, preemptible: bool) -> list:
    """The stretches before the current phase, oldest first."""
    started = [
        (P.CREATING, log_uniform(rng, 2, 60)),
        (P.PENDING, log_uniform(rng, 5, 6 * 3600)),
        (P.INITIALIZING, log_uniform(rng, 10, 600)),
    ]
    if phase == P.CREATING:
        return []
    if phase == P.PENDING:
        if preemptible and rng.random() < 0.2:
            # Ran, was preempted, and waits again.
            return [
                *started,
                (P.RUNNING, log_uniform(rng, 600, 86400)),
                (P.TERMINATING, between(rng, 5, 120)),
            ]
        return started[:1]
    if phase == P.INITIALIZING:
        return started[:2]
    if phase == P.FAILED and rng.random() < 0.3:
        return started
    stretches = list(started)
    if preemptible and rng.random() < 0.12:
        stretches += [
            (P.RUNNING, log_uniform(rng, 600, 86400)),
            (P.TERMINATING, between(rng, 5, 120)),
            (P.PENDING, log_uniform(rng, 30, 4 * 3600)),
            (P.INITIALIZING, log_uniform(rng, 10, 300)),
        ]
    if phase == P.RUNNING:
        return stretches
    if phase == P.STOPPED and rng.random() < 0.2:
        # Stopped by its owner while still waiting for resources.
        return [*started[:2], (P.STOPPING, between(rng, 2, 60))]
    stretches.append((P.RUNNING, log_uniform(rng, 300, 3 * 86400)))
    if phase in (P.STOPPED, P.RESUMING):
        stretches.append((P.STOPPING, between(rng, 5, 120)))
    if phase == P.RESUMING:
        stretches.append((P.STOPPED, log_uniform(rng, 600, 7 * 86400)))
    return stretches


def simulate_timeline(
    rng: random.Random, phase: Phase, anchor: datetime, *, preemptible: bool, deleted: bool
) -> Timeline:
    """A history that ends in ``phase`` at the anchor, or earlier if the workload was deleted."""
    stretches = _earlier_stretches(rng, phase, preemptible)
    low, high = _CURRENT_STRETCH[phase]
    if deleted:
        deleted_at = anchor - timedelta(seconds=log_uniform(rng, 60, 20 * 86400))
        phase_updated_at = deleted_at - timedelta(seconds=log_uniform(rng, 60, 10 * 86400))
        end = deleted_at
    else:
        deleted_at = None
        phase_updated_at = anchor - timedelta(seconds=log_uniform(rng, low, high))
        end = anchor
    created_at = phase_updated_at - timedelta(seconds=sum(seconds for _, seconds in stretches))
    scheduled_at = phase_updated_at if phase == P.INITIALIZING else None
    offset = 0
    for stretch_phase, seconds in stretches:
        if stretch_phase == P.INITIALIZING:
            scheduled_at = created_at + timedelta(seconds=offset)
            break
        offset += seconds

    room = int((end - phase_updated_at).total_seconds())
    k8s_phase_updated_at = phase_updated_at + timedelta(seconds=min(between(rng, 0, 3), room))
    if deleted_at is not None:
        updated_at = deleted_at
    elif phase in _QUIET:
        updated_at = k8s_phase_updated_at
    else:
        # Live workloads keep getting status refreshes after their phase changed.
        refresh_room = int((end - k8s_phase_updated_at).total_seconds())
        updated_at = k8s_phase_updated_at + timedelta(seconds=between(rng, 0, refresh_room))
    return Timeline(
        phase=phase,
        created_at=created_at,
        phase_updated_at=phase_updated_at,
        k8s_phase_updated_at=k8s_phase_updated_at,
        updated_at=updated_at,
        completed_at=phase_updated_at if phase in TERMINAL_PHASES else None,
        deleted_at=deleted_at,
        pending_seconds_before=sum(s for p, s in stretches if p == P.PENDING),
        running_seconds_before=sum(s for p, s in stretches if p == P.RUNNING),
        scheduled_at=scheduled_at,
    )
