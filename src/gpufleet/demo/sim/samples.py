"""Metric samples of a running workload and of its pods, at one moment.

Utilisation follows the workload's character: steady training keeps its GPUs busy with short
dips (evaluation, checkpoints), bursty notebooks idle between bursts of work, idle hoarders
hold GPUs they do not use, and services follow the day's demand. An idle GPU reports under
0.5 % utilisation, so the server's idle-GPU rule counts it idle; the simulation reports no idle
figures of its own. Each sample is drawn from a
stream of the workload and the moment, so taking samples more or less often changes nothing
else in the simulation.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from gpufleet.demo.metrics_history import LATENCY_BUCKETS
from gpufleet.demo.sim import serving
from gpufleet.demo.sim.fleet import GPU_MEMORY_GIB
from gpufleet.demo.sim.jobs import Job
from gpufleet.demo.sim.records import GIB, iso, pod_phase
from gpufleet.demo.sim.teams import BURSTY, IDLE, SERVING
from gpufleet.metrics.types import PodMetricType as PM
from gpufleet.metrics.types import WorkloadMetricType as M
from gpufleet.metrics.types import format_le

# Concurrent requests one inference pod serves at most.
REQUEST_CAP = 64
# The busiest an idle GPU gets (0.5 %): idle by the server's idle-GPU rule (at or below 1 % by
# default), so what the simulation holds idle is what the server counts idle.
IDLING = 0.005
# Steady work's dips: the share of two-minute windows it spends evaluating or checkpointing.
DIP_SECONDS, DIP_SHARE = 120, 0.08
# SM activity as a share of utilisation, for a lightly and a fully loaded GPU.
SM_SHARE_IDLE = 0.6
SM_SHARE_BUSY = 0.9


def _level(job: Job, moment: datetime, rng: random.Random) -> float:
    """How busy the workload's GPUs are now, 0 … 1."""
    character = job.work.character
    if character == IDLE:
        return rng.uniform(0.0, IDLING)
    if character == BURSTY:
        # Bursts last tens of minutes: the same draw for every sample of a 20-minute window.
        window = random.Random(f"{job.id}/{int(moment.timestamp()) // 1200}")
        return window.uniform(0.55, 0.95) if window.random() < 0.3 else rng.uniform(0.0, IDLING)
    if character == SERVING:
        return min(1.0, max(0.02, serving.load(job.id, job.gpus, moment) * rng.uniform(0.9, 1.05)))
    # Steady work dips for an evaluation or a checkpoint now and then: a dip holds a window of
    # two minutes, so samples every 30 seconds draw it as a dip, not as a spike.
    window = random.Random(f"{job.id}/dip/{int(moment.timestamp()) // DIP_SECONDS}")
    if window.random() < DIP_SHARE:
        return window.uniform(0.25, 0.5) * rng.uniform(0.95, 1.05)
    return rng.uniform(0.86, 0.98)


def _memory_fill(job: Job, level: float) -> float:
    """Share of its GPU memory the workload holds: training and serving allocate theirs once
    (the framework's allocator, the KV cache) and keep it through dips in their load; a
    workspace holds what its current burst needs."""
    if job.work.character == IDLE:
        return 0.12
    if job.work.character == BURSTY:
        return 0.3 + 0.6 * level
    return random.Random(f"{job.id}/memory").uniform(0.7, 0.92)


def _sm_activity(busy: float) -> float:
    """SM activity (percent) of a GPU ``busy`` percent of the time: utilisation counts any
    kernel running, SM activity the share of multiprocessors busy, so it is lower, the more so
    the lighter the load. Derived, not drawn, so the other samples' streams stay as they were."""
    return round(busy * (SM_SHARE_IDLE + (SM_SHARE_BUSY - SM_SHARE_IDLE) * busy / 100), 1)


def job_samples(job: Job, moment: datetime) -> Iterator[dict[str, Any]]:
    """The workload's and its pods' samples at ``moment``."""
    rng = random.Random(f"{job.id}/{int(moment.timestamp())}")
    level = _level(job, moment, rng)
    stamp = iso(moment)
    wid = job.id

    def sample(kind: str, value: float, labels=None, pod: str | None = None) -> dict[str, Any]:
        item: dict[str, Any] = {"workloadId": wid, "type": kind, "timestamp": stamp,
                                "value": float(value)}  # fmt: skip
        if labels:
            item["labels"] = labels
        if pod is not None:
            item["podId"] = pod
        return item

    device_bytes = GPU_MEMORY_GIB[job.pool] * GIB
    share = min(job.gpus, 1.0) if job.gpus else 0.0
    memory_fill = _memory_fill(job, level)
    # Host memory is held as GPU memory is: what steady work loaded stays loaded through a dip.
    held = level if job.work.character in (BURSTY, IDLE) else memory_fill
    running = [pod for pod in job.bound if pod_phase(job, pod) == "Running"]
    cpu_total = memory_total = 0.0
    device = 0
    for pod in running:
        per_gpu = []
        for index in pod.devices:
            # A pod's GPU is labelled with its index on the node, as dcgm-exporter labels it, so
            # the node's per-GPU series tell its GPUs apart.
            on_node = {"gpu": str(index)}
            busy = round(min(100.0, 100 * level * rng.uniform(0.93, 1.04)), 1)
            used = round(device_bytes * share * memory_fill * rng.uniform(0.97, 1.0))
            per_gpu.append((busy, used))
            yield sample(M.GPU_UTILIZATION, busy, {"gpu": str(device)})
            yield sample(M.GPU_MEMORY_USAGE_BYTES, used, {"gpu": str(device)})
            yield sample(PM.GPU_UTILIZATION_PER_GPU, busy, on_node, pod.uid)
            yield sample(PM.GPU_MEMORY_USAGE_BYTES_PER_GPU, used, on_node, pod.uid)
            active = _sm_activity(busy)
            yield sample(PM.GPU_SM_ACTIVITY_PER_GPU, active, on_node, pod.uid)
            device += 1
        cpu = round(job.cpu * (0.1 + 0.8 * level) * rng.uniform(0.9, 1.1), 3)
        memory = round(job.memory_gib * GIB * (0.35 + 0.5 * held))
        cpu_total += cpu
        memory_total += memory
        if per_gpu:
            mean = sum(b for b, _ in per_gpu) / len(per_gpu)
            yield sample(PM.GPU_UTILIZATION, round(mean, 1), pod=pod.uid)
            yield sample(PM.GPU_MEMORY_USAGE_BYTES, sum(u for _, u in per_gpu), pod=pod.uid)
        yield sample(PM.CPU_USAGE_CORES, cpu, pod=pod.uid)
        yield sample(PM.CPU_MEMORY_USAGE_BYTES, memory, pod=pod.uid)
    yield sample(M.CPU_USAGE_CORES, round(cpu_total, 3))
    yield sample(M.CPU_MEMORY_USAGE_BYTES, memory_total)
    yield sample(M.CPU_REQUEST_CORES, job.cpu * job.pods)
    yield sample(M.CPU_MEMORY_REQUEST_BYTES, job.memory_gib * job.pods * GIB)
    yield sample(M.GPU_ALLOCATION, job.gpus * job.pods)
    yield sample(M.GPU_MEMORY_REQUEST_BYTES, round(device_bytes * job.gpus * job.pods))
    yield sample(M.POD_COUNT, job.pods)
    yield sample(M.RUNNING_POD_COUNT, len(running))
    if job.serving and job.gpus > 0:
        yield from _inference(job, level, rng, sample)


def _inference(job: Job, level: float, rng: random.Random, sample) -> Iterator[dict[str, Any]]:
    """NIM/vLLM series: requests in flight and waiting, KV cache, totals and latencies."""
    cap = REQUEST_CAP * job.pods
    in_flight = round(cap * level * rng.uniform(0.5, 0.9))
    waiting = max(0, round(cap * (level - 0.8) * 2)) if level > 0.8 else 0
    yield sample(M.NIM_NUM_REQUESTS_RUNNING, in_flight)
    yield sample(M.NIM_NUM_REQUESTS_WAITING, waiting)
    yield sample(M.NIM_NUM_REQUEST_MAX, cap)
    yield sample(M.NIM_GPU_CACHE_USAGE_PERC, round(min(1.0, 0.05 + 0.85 * level), 3))
    served = float(int(job.served))
    yield sample(M.NIM_REQUEST_SUCCESS_TOTAL, served)
    yield sample(M.NIM_REQUEST_FAILURE_TOTAL, float(int(job.failed_requests)))
    for metric_type, buckets in LATENCY_BUCKETS.items():
        totals = job.latencies.get(metric_type) or [0.0] * len(buckets)
        for (bound, _), total in zip(buckets, totals, strict=True):
            yield sample(metric_type, float(int(total)), {"le": format_le(bound)})
