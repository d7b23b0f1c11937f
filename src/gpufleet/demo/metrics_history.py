"""24 hours of one-minute metric samples for the demo's running and recently finished workloads.

Only the series that move are computed here (GPU utilisation with idle stretches, GPU and CPU
memory, CPU cores, NIM request gauges and counters); flat series (requests, limits, pod counts,
GPU allocation) and histogram buckets are derived from them inside the database, so a default
demo writes its history in a few seconds. At most ``MAX_WORKLOADS_WITH_HISTORY`` workloads get
history: running ones with the longest history first, each category in turn, then a few that
finished within the day.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection

from gpufleet.core.times import to_ms
from gpufleet.demo.organisation import CLUSTERS
from gpufleet.demo.workloads import DemoWorkload
from gpufleet.metrics.types import WorkloadMetricType as M
from gpufleet.metrics.types import format_le
from gpufleet.store.metric_samples import append_samples, derive_series, workloads_with_samples

HISTORY = timedelta(hours=24)
STEP_MS = 60_000
MAX_WORKLOADS_WITH_HISTORY = 16
GIB = 2**30
# One GPU's memory in each cluster's node pools: a workload's GPUs are those of its pool.
POOL_GPU_MEMORY_BYTES = {
    (cluster.id, pool.name): pool.gpu_memory_gib * GIB
    for cluster in CLUSTERS
    for pool in cluster.nodepools
}
LIVE_PHASES = ("Running", "Degraded", "Updating")
FINISHED_PHASES = ("Completed", "Failed", "Stopped")
# Upper bounds (seconds) and the share of requests at or under each, per NIM histogram.
LATENCY_BUCKETS = {
    M.NIM_TIME_TO_FIRST_TOKEN_SECONDS: (
        (0.01, 0.02), (0.025, 0.1), (0.05, 0.35), (0.1, 0.7), (0.25, 0.9), (0.5, 0.97),
        (1.0, 0.995), (2.5, 1.0), (math.inf, 1.0),
    ),
    M.NIM_E2E_REQUEST_LATENCY_SECONDS: (
        (0.3, 0.05), (0.5, 0.15), (1.0, 0.45), (2.5, 0.8), (5.0, 0.93), (10.0, 0.98),
        (20.0, 0.997), (40.0, 1.0), (math.inf, 1.0),
    ),
}  # fmt: skip
_QUANTITY = re.compile(r"^([0-9.]+)([KMGTE]i?)?$")
_UNITS = {None: 1, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "E": 1e18}
_UNITS.update({"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Ei": 2**60})


def parse_quantity(text: Any) -> float | None:
    """Bytes of a Kubernetes quantity such as ``40Gi``; None when absent or unreadable."""
    if text is None:
        return None
    match = _QUANTITY.match(str(text).strip())
    if not match:
        return None
    return float(match.group(1)) * _UNITS[match.group(2)]


def write_metrics_history(conn: Connection, batch: list[DemoWorkload], anchor: datetime) -> int:
    """The demo seeding hook: history for the batch's chosen workloads; returns rows written."""
    room = MAX_WORKLOADS_WITH_HISTORY - workloads_with_samples(conn)
    written = 0
    wires = [workload.wire for workload in batch]
    for item in choose_workloads(wires, anchor)[: max(room, 0)]:
        written += _write_workload(conn, item, anchor)
    return written


def choose_workloads(batch: list[dict[str, Any]], anchor: datetime) -> list[dict[str, Any]]:
    """Live workloads first, then GPU workloads that finished within the history."""
    live = [w for w in batch if w["phase"] in LIVE_PHASES and not w.get("deletedAt")]
    finished = [
        w
        for w in batch
        if w["phase"] in FINISHED_PHASES
        and w.get("completedAt") is not None
        and w["completedAt"] > anchor - HISTORY
        and _gpus(w) > 0
    ]
    finished.sort(key=lambda w: -w["completedAt"].timestamp())
    return _interleave_categories(live) + finished[: MAX_WORKLOADS_WITH_HISTORY // 5]


def _interleave_categories(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """GPU workloads with the longest history first, taking each category in turn."""
    by_category: dict[str, list[dict[str, Any]]] = {}
    for item in sorted(items, key=lambda w: (_gpus(w) == 0, w["createdAt"])):
        by_category.setdefault(item.get("category", ""), []).append(item)
    queues = list(by_category.values())
    ordered = []
    for rank in range(max((len(q) for q in queues), default=0)):
        ordered.extend(q[rank] for q in queues if rank < len(q))
    return ordered


def _gpus(item: dict[str, Any]) -> float:
    allocated = float((item.get("allocatedResources") or {}).get("gpu") or 0.0)
    requested = (item.get("workloadRequestedResources") or {}).get("gpu") or {}
    return allocated or float(requested.get("request") or 0.0)


def _gpu_memory_bytes(item: dict[str, Any]) -> float:
    """One GPU's memory in the pool the workload runs (or last asked to run) in."""
    pools = item.get("currentNodePools") or item.get("requestedNodePools") or ["default"]
    return POOL_GPU_MEMORY_BYTES[(item["clusterId"], pools[0])]


def _span(item: dict[str, Any], anchor: datetime) -> tuple[int, int]:
    """First and last sample time (epoch ms, on the minute) of a workload's history."""
    end = anchor if item["phase"] in LIVE_PHASES else item["completedAt"]
    begin = max(anchor - HISTORY, item["createdAt"])
    end_ms = to_ms(end) - to_ms(end) % STEP_MS
    begin_ms = to_ms(begin) + (-to_ms(begin)) % STEP_MS
    return begin_ms, end_ms


def _write_workload(conn: Connection, item: dict[str, Any], anchor: datetime) -> int:
    begin_ms, end_ms = _span(item, anchor)
    if end_ms - begin_ms < 10 * STEP_MS:
        return 0
    rng = random.Random(f"gpufleet-demo-metrics/{item['id']}")
    times = list(range(begin_ms, end_ms + 1, STEP_MS))
    written = append_samples(conn, _moving_series(item, times, rng))
    _derive_flat_series(conn, item)
    if item.get("type") == "Inference":
        _derive_histograms(conn, item["id"])
    return written


def _load_curve(times: list[int], rng: random.Random, category: str) -> list[float]:
    """Demand between 0 and 1: daily rhythm for services, steady work, idle stretches."""
    phase = rng.uniform(0, 2 * math.pi)
    idle_until = -1
    curve = []
    for index, ts in enumerate(times):
        hour = ts / 3_600_000
        if category == "Deploy":
            level = 0.45 + 0.4 * math.sin(2 * math.pi * hour / 24 + phase)
        elif category == "Build":
            level = 0.25 if rng.random() < 0.3 else 0.02
        else:
            level = 0.85
        if index > idle_until and rng.random() < 0.004:
            idle_until = index + rng.randint(15, 120)  # a stretch of 15 minutes to 2 hours
        if index <= idle_until:
            level = 0.0
        curve.append(min(1.0, max(0.0, level + rng.gauss(0, 0.05))) if level else 0.0)
    return curve


def _moving_series(item: dict[str, Any], times: list[int], rng: random.Random) -> Iterator[tuple]:
    wid = item["id"]
    gpus = _gpus(item)
    devices = max(1, min(16, math.ceil(gpus))) if gpus > 0 else 0
    idle_devices = int(item.get("idleGpus") or 0)
    load = _load_curve(times, rng, item.get("category", "Train"))
    device_bytes = _gpu_memory_bytes(item)
    cpu = (item.get("workloadRequestedResources") or {}).get("cpu") or {}
    cpu_request = float(cpu.get("request") or 1.0)
    memory = (item.get("workloadRequestedResources") or {}).get("cpuMemory") or {}
    memory_request = parse_quantity(memory.get("request")) or 2 * 2**30
    tail = len(times) - 15  # devices the workload reports idle have been idle lately
    for gpu in range(devices):
        series = f"gpu={gpu}"
        # The part of this device the workload holds: a fraction of its last (or only) one.
        share = min(1.0, gpus - gpu)
        for index, (ts, level) in enumerate(zip(times, load, strict=True)):
            busy = 0.0 if gpu < idle_devices and index >= tail else level
            utilisation = round(min(100.0, busy * rng.uniform(85, 100)), 1)
            yield (wid, M.GPU_UTILIZATION.value, series, ts, utilisation)
            used = device_bytes * share * (0.35 + 0.5 * busy) if busy else 0.0
            yield (wid, M.GPU_MEMORY_USAGE_BYTES.value, series, ts, round(used))
    for ts, level in zip(times, load, strict=True):
        yield (wid, M.CPU_USAGE_CORES.value, "", ts, round(cpu_request * (0.1 + 0.8 * level), 3))
        yield (
            wid,
            M.CPU_MEMORY_USAGE_BYTES.value,
            "",
            ts,
            round(memory_request * (0.4 + 0.5 * level)),
        )
    if item.get("type") == "Inference":
        yield from _nim_series(wid, times, load, rng)


def _nim_series(wid: str, times: list[int], load: list[float], rng: random.Random):
    capacity = 256
    successes = float(rng.randint(1_000, 50_000))
    failures = float(rng.randint(0, 200))
    for ts, level in zip(times, load, strict=True):
        running = round(capacity * level * rng.uniform(0.2, 0.5))
        waiting = max(0, round(running - capacity * 0.1)) if level > 0.8 else 0
        successes += round(level * rng.uniform(300, 600))
        failures += 1 if rng.random() < 0.05 * level else 0
        yield (wid, M.NIM_NUM_REQUESTS_RUNNING.value, "", ts, running)
        yield (wid, M.NIM_NUM_REQUESTS_WAITING.value, "", ts, waiting)
        yield (wid, M.NIM_GPU_CACHE_USAGE_PERC.value, "", ts, round(0.1 + 0.8 * level, 3))
        yield (wid, M.NIM_REQUEST_SUCCESS_TOTAL.value, "", ts, successes)
        yield (wid, M.NIM_REQUEST_FAILURE_TOTAL.value, "", ts, failures)


def _derive_flat_series(conn: Connection, item: dict[str, Any]) -> None:
    requested = item.get("workloadRequestedResources") or {}
    cpu = requested.get("cpu") or {}
    memory = requested.get("cpuMemory") or {}
    gpus = _gpus(item)
    gpu_memory = parse_quantity((requested.get("gpuMemory") or {}).get("request"))
    pods = int((item.get("requestedPods") or {}).get("number") or item.get("runningPods") or 1)
    flat = {
        M.CPU_REQUEST_CORES: cpu.get("request"),
        M.CPU_LIMIT_CORES: cpu.get("limit"),
        M.CPU_MEMORY_REQUEST_BYTES: parse_quantity(memory.get("request")),
        M.CPU_MEMORY_LIMIT_BYTES: parse_quantity(memory.get("limit")),
        M.GPU_MEMORY_REQUEST_BYTES: gpu_memory or round(gpus * _gpu_memory_bytes(item)),
        M.GPU_ALLOCATION: gpus,
        M.POD_COUNT: pods,
        M.RUNNING_POD_COUNT: max(int(item.get("runningPods") or 0), 1),
    }
    if item.get("type") == "Inference":
        flat[M.NIM_NUM_REQUEST_MAX] = 256
    source = (M.CPU_USAGE_CORES.value, "")
    for metric_type, value in flat.items():
        if value is not None:
            derive_series(conn, item["id"], source, (metric_type.value, ""), constant=float(value))


def _derive_histograms(conn: Connection, workload_id: str) -> None:
    """Bucket totals follow the success counter, split by each histogram's latency shape."""
    source = (M.NIM_REQUEST_SUCCESS_TOTAL.value, "")
    for metric_type, buckets in LATENCY_BUCKETS.items():
        for bound, share in buckets:
            target = (metric_type.value, f"le={format_le(bound)}")
            derive_series(conn, workload_id, source, target, scale=share)
