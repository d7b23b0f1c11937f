"""Periodic work: retention of samples, events and usage, idle-GPU figures, the usage ledger.

Each task is a plain function (call it directly in tests); ``MetricsTasks`` runs them on
their intervals from the app's lifespan, off the event loop, and stops them on shutdown.
Before each run a task takes its database lease (``task:<name>``), so of the processes of
one server (``--workers``) and of its replicas, one runs it; a process that stops gives its
leases up, and one that dies loses them after a term (three intervals, at least 30 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine

from gpufleet.core.times import to_ms
from gpufleet.metrics.backend import IdleRule, MetricsBackend
from gpufleet.metrics.prometheus import PrometheusBackend
from gpufleet.metrics.usage_tasks import (
    accrue_live_usage,
    enforce_usage_retention,
    lease_term_ms,
    pull_utilisation,
)
from gpufleet.settings import Settings
from gpufleet.store.dialect import pause_for_waiting_writers, without_statement_timeout
from gpufleet.store.events import delete_events_before
from gpufleet.store.inventory_samples import (
    BACKFILL_LEASE,
    delete_inventory_samples_before,
    sample_inventory,
)
from gpufleet.store.leases import lease_holder, release_lease, take_lease
from gpufleet.store.metric_samples import delete_samples_before
from gpufleet.store.metric_targets import running_gpu_targets, write_idle_gpus

log = logging.getLogger("gpufleet.metrics")


def enforce_retention(engine: Engine, retention_days: int, now: datetime) -> int:
    """Delete samples older than the retention; returns how many were deleted."""
    cutoff = to_ms(now - timedelta(days=retention_days))
    with engine.begin() as conn:
        # Maintenance, not a request: a large first deletion may outlast the statement timeout.
        without_statement_timeout(conn)
        return delete_samples_before(conn, cutoff) + delete_inventory_samples_before(conn, cutoff)


def enforce_event_retention(engine: Engine, retention_days: int, now: datetime) -> int:
    """Delete workload events last seen before the retention; returns how many were deleted."""
    with engine.begin() as conn:
        without_statement_timeout(conn)
        return delete_events_before(conn, now - timedelta(days=retention_days))


def refresh_idle_gpus(
    engine: Engine, backend: MetricsBackend, rule: IdleRule, now: datetime
) -> int:
    """Recompute idleGpus/idleAllocatedGpus of Running GPU workloads that report utilisation.

    Workloads without utilisation samples in the window keep the figures they have (their
    producer may report them directly). Returns how many workloads changed. The workloads are
    taken a page at a time, so the task's memory does not grow with the fleet.
    """
    changed, after = 0, ""
    while True:
        with engine.connect() as conn:
            targets = running_gpu_targets(conn, after)
        if not targets:
            return changed
        idle = backend.idle_gpus(targets, now, rule)
        with engine.begin() as conn:
            changed += write_idle_gpus(conn, idle)
        after = targets[-1].id
        pause_for_waiting_writers(engine.dialect.name)


def record_inventory(engine: Engine, interval_seconds: int, now: datetime) -> int:
    """Sample allocation, capacity and quota into the inventory samples; returns the rows.

    Nothing is sampled while a producer reporting the past holds the backfill lease."""
    with engine.begin() as conn:
        if lease_holder(conn, BACKFILL_LEASE, to_ms(now)) is not None:
            return 0
        return sample_inventory(conn, now, interval_seconds)


def idle_rule(settings: Settings) -> IdleRule:
    return IdleRule(settings.idle_gpu_threshold_percent, settings.idle_gpu_window_seconds)


Job = tuple[str, float, Callable[[], int]]


def task_lease(name: str) -> str:
    return f"task:{name}"


def run_leased(
    engine: Engine, name: str, holder: str, interval: float, job: Callable[[], int]
) -> int | None:
    """Run ``job`` if ``holder`` holds (or can take) the task's lease; None when another
    process holds it."""
    with engine.begin() as conn:
        term = lease_term_ms(interval)
        if not take_lease(conn, task_lease(name), holder, to_ms(_now()), term):
            return None
    return job()


def _now() -> datetime:
    return datetime.now(UTC)


def periodic_jobs(
    engine: Engine, backend: MetricsBackend, settings: Settings, holder: str
) -> list[Job]:
    """``(name, interval, job)`` of every periodic task; an interval of 0 switches one off."""
    s = settings
    rule = idle_rule(s)
    usage_term = lease_term_ms(s.usage_interval_seconds)
    # Utilisation is pulled only from Prometheus; the embedded backend's samples are pushed.
    inner = getattr(backend, "inner", backend)
    pulled = s.usage_utilisation_interval_seconds if isinstance(inner, PrometheusBackend) else 0
    jobs: list[Job] = [
        ("retention", s.metrics_retention_interval_seconds,
         lambda: enforce_retention(engine, s.metrics_retention_days, _now())),
        ("event retention", s.events_retention_interval_seconds,
         lambda: enforce_event_retention(engine, s.events_retention_days, _now())),
        ("usage ledger", s.usage_interval_seconds,
         lambda: accrue_live_usage(
             engine, holder, _now(), usage_term, s.usage_retention_days)),
        ("usage retention", s.metrics_retention_interval_seconds,
         lambda: enforce_usage_retention(engine, s.usage_retention_days, _now())),
        ("usage utilisation", pulled,
         lambda: pull_utilisation(engine, inner, rule, holder, _now(), lease_term_ms(pulled))),
        ("idle_gpus", s.idle_gpu_interval_seconds,
         lambda: refresh_idle_gpus(engine, backend, rule, _now())),
        ("inventory samples", s.metrics_interval_seconds,
         lambda: record_inventory(engine, s.metrics_interval_seconds, _now())),
    ]  # fmt: skip
    return [job for job in jobs if job[1] > 0]


class MetricsTasks:
    """The periodic tasks of one server process.

    ``holder`` names this process in leases; ``extra_jobs`` are more ``(name, interval,
    job)`` to run alike (the report worker).
    """

    def __init__(
        self,
        engine: Engine,
        backend: MetricsBackend,
        settings: Settings,
        *,
        on_run: Callable[[str, bool], None] | None = None,
        holder: str = "",
        extra_jobs: Sequence[Job] = (),
    ) -> None:
        self._on_run = on_run or (lambda _task, _ok: None)
        self._running: list[asyncio.Task] = []
        self._engine = engine
        self._holder = holder
        self._jobs = [*periodic_jobs(engine, backend, settings, holder), *extra_jobs]

    def start(self) -> None:
        self._running = [asyncio.create_task(self._loop(*job)) for job in self._jobs]

    async def stop(self) -> None:
        for task in self._running:
            task.cancel()
        for task in self._running:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._running:
            await asyncio.to_thread(self._release_leases)
        self._running = []

    def _release_leases(self) -> None:
        try:
            with self._engine.begin() as conn:
                for name, _interval, _job in self._jobs:
                    release_lease(conn, task_lease(name), self._holder)
        except Exception:  # the leases lapse by themselves within a term
            log.exception("could not give the task leases up")

    async def _loop(self, name: str, interval: float, job: Callable[[], int]) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                changed = await asyncio.to_thread(
                    run_leased, self._engine, name, self._holder, interval, job
                )
                if changed is None:
                    log.debug("%s task: another process holds it", name)
                    continue
                log.debug("%s task: %d rows", name, changed)
            except Exception:  # a failed run is logged and retried on the next interval
                log.exception("%s task failed", name)
                self._on_run(name, False)
            else:
                self._on_run(name, True)
