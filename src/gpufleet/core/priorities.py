"""The built-in priority classes of KAI and Run:ai and what their values mean."""

from __future__ import annotations

# PriorityClass objects in a cluster override these values.
BUILTIN_PRIORITY_VALUES: dict[str, int] = {
    "train": 50,
    "build-preemptible": 75,
    "build": 100,
    "inference": 125,
    "very-low": 25,
    "low": 40,
    "medium-low": 65,
    "medium": 80,
    "medium-high": 90,
    "high": 125,
    "very-high": 150,
}
# A workload whose priority is below this may be preempted, as in the scheduler.
PREEMPTIBLE_BELOW = 100
