"""Batches of demo workloads, generated in this process or one step ahead in another.

Generating a workload costs about as much CPU as storing it, so for large loads a separate
process generates the next batches while this one inserts. Each workload depends only on its
seed, index and the anchor, so the result is the same either way.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime

from gpufleet.demo.workloads import DemoWorkload, generate_workloads

# Batches generated ahead of the one being inserted; bounds the memory a fast generator uses.
AHEAD = 2


def generate_batch(
    seed: int, start: int, count: int, anchor: datetime, run_start: int
) -> list[DemoWorkload]:
    """Workloads ``start`` … ``start + count - 1`` of a seeding run that began at ``run_start``."""
    return list(generate_workloads(seed, start, count, anchor, run_start=run_start))


def workload_batches(
    seed: int,
    first: int,
    total: int,
    batch_size: int,
    anchor: datetime,
    *,
    in_background: bool,
) -> Iterator[list[DemoWorkload]]:
    """The batches of a seeding run of ``total`` workloads numbered from ``first``."""
    jobs = [
        (seed, start, min(batch_size, first + total - start), anchor, first)
        for start in range(first, first + total, batch_size)
    ]
    if not in_background:
        for job in jobs:
            yield generate_batch(*job)
        return
    # "spawn": the worker imports only the generator, never a copy of engines or threads.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        ahead: deque[tuple[tuple, Future[list[DemoWorkload]]]] = deque()
        remaining = deque(jobs)
        while remaining or ahead:
            while remaining and len(ahead) <= AHEAD:
                job = remaining.popleft()
                ahead.append((job, pool.submit(generate_batch, *job)))
            job, future = ahead.popleft()
            try:
                batch = future.result()
            except BrokenProcessPool:
                # The worker could not start (e.g. the main module cannot be re-imported):
                # the same batches come out of this process instead.
                for unsent in (job, *(queued for queued, _ in ahead), *remaining):
                    yield generate_batch(*unsent)
                return
            yield batch
