"""Metrics the agent can derive from Kubernetes objects alone, as ingest samples.

Without a Prometheus, the server's embedded metrics store is fed these: requests and limits,
GPU allocation and pod counts of every workload that is not finished.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from gpufleet.agent.records import DerivedWorkload

FINISHED_PHASES = ("Completed", "Failed", "Deleting")


def _value(amount: Decimal | int | None) -> float | None:
    return None if amount is None else float(amount)


def workload_samples(derived: DerivedWorkload, timestamp: str) -> list[dict[str, Any]]:
    """Samples of one workload at ``timestamp`` (none once it has finished)."""
    record = derived.record
    if record["phase"] in FINISHED_PHASES:
        return []
    requested, allocated = derived.requested, derived.allocated
    values = {
        "CPU_REQUEST_CORES": _value(requested.cpu_request),
        "CPU_LIMIT_CORES": _value(requested.cpu_limit),
        "CPU_MEMORY_REQUEST_BYTES": _value(requested.memory_request),
        "CPU_MEMORY_LIMIT_BYTES": _value(requested.memory_limit),
        "GPU_ALLOCATION": _value(allocated.gpu_request),
        "GPU_MEMORY_REQUEST_BYTES": _value(requested.gpu_memory_request),
        "POD_COUNT": float(derived.pod_count),
        "RUNNING_POD_COUNT": float(derived.running_pods),
    }
    return [
        {"workloadId": record["id"], "type": name, "timestamp": timestamp, "value": value}
        for name, value in values.items()
        if value is not None
    ]
