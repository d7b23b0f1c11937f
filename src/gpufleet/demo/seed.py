"""Seeding the demo organisation into a store, in batches of one transaction each.

Determinism is per (seed, anchor, number of workloads already stored): the workload streams
are numbered on from the workloads already present, so seeding more never repeats an id.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from gpufleet.demo.batches import workload_batches
from gpufleet.demo.capacity import DemoFleet, finish_fleet
from gpufleet.demo.details import write_workload_details
from gpufleet.demo.metrics_history import write_metrics_history
from gpufleet.demo.organisation import write_organisation
from gpufleet.demo.progress import seed_progress
from gpufleet.demo.usage_history import start_live_usage, write_usage_history
from gpufleet.demo.workloads import DemoWorkload
from gpufleet.store.dialect import analyze_after_bulk_load, without_statement_timeout
from gpufleet.store.tables import workload_nodepools
from gpufleet.store.tables import workloads as workloads_table
from gpufleet.store.workloads import insert_workloads

BATCH_SIZE = 5000
# From this many workloads on, secondary indexes are dropped for the load and rebuilt after:
# sorting once is far cheaper than keeping two dozen indexes ordered row by row.
BULK_LOAD_FROM = 50_000
# Called inside each batch's transaction with the batch's workloads (times as datetimes).
AfterBatch = Callable[[Connection, list[DemoWorkload], datetime], None]


def default_anchor() -> datetime:
    """Now, truncated to the minute: the moment every simulated history ends."""
    return datetime.now(UTC).replace(second=0, microsecond=0)


def seed_demo(
    engine: Engine,
    *,
    workloads: int,
    seed: int,
    progress: bool = False,
    anchor: datetime | None = None,
    batch_size: int = BATCH_SIZE,
    after_batch: AfterBatch | None = None,
    metrics_history: bool = True,
    details: bool = True,
    usage_history: bool = True,
) -> int:
    """Add ``workloads`` simulated workloads (and the organisation, once); returns how many.

    ``metrics_history`` writes 24 hours of metric samples for a capped set of the workloads;
    ``details`` their pods, phase history and events; ``usage_history`` 90 days of the
    organisation's GPU-hours in the usage ledger (on the first seeding only).
    """
    if workloads < 0:
        raise ValueError("the number of workloads must not be negative")
    if batch_size < 1:
        raise ValueError("the batch size must be positive")
    anchor = anchor or default_anchor()
    if anchor.tzinfo is None:
        raise ValueError("the anchor must be a timezone-aware datetime")
    # Per-batch writers that extend the demo (such as metric history) are added here.
    history = write_metrics_history if metrics_history else None
    with engine.begin() as conn:
        write_organisation(conn, anchor)
        first = _stored_count(conn)
        if first == 0 and usage_history:
            write_usage_history(conn, anchor)
        fleet = DemoFleet.load(conn) if details else None

    def written(conn: Connection, batch: list[DemoWorkload], anchor: datetime) -> None:
        write_workload_details(conn, batch, anchor, fleet)

    placed = written if details else None
    hooks = [hook for hook in (placed, history, start_live_usage, after_batch) if hook]
    bulk = workloads >= BULK_LOAD_FROM
    # A second core generates ahead while this process inserts; not worth a process below.
    parallel = bulk and (os.cpu_count() or 1) > 1
    with seed_progress(progress, workloads) as report:
        if bulk:
            _drop_secondary_indexes(engine)
        try:
            batches = workload_batches(
                seed, first, workloads, batch_size, anchor, in_background=parallel
            )
            for batch in batches:
                with engine.begin() as conn:
                    _insert(conn, batch)
                    for hook in hooks:
                        hook(conn, batch, anchor)
                report.advance(len(batch))
        finally:
            if bulk:
                report.note("rebuilding the workload indexes")
                _create_secondary_indexes(engine)
    if fleet is not None:
        with engine.begin() as conn:
            finish_fleet(conn, fleet, anchor)
    analyze_after_bulk_load(engine)
    return workloads


def seed_if_empty(
    engine: Engine,
    *,
    workloads: int,
    seed: int,
    anchor: datetime | None = None,
    after_batch: AfterBatch | None = None,
    metrics_history: bool = True,
) -> int:
    """Seed the demo only into a store without workloads; returns how many were added."""
    with engine.connect() as conn:
        if conn.execute(sa.select(workloads_table.c.id).limit(1)).first() is not None:
            return 0
    return seed_demo(engine, workloads=workloads, seed=seed, anchor=anchor, after_batch=after_batch)


def _insert(conn: Connection, batch: list[DemoWorkload]) -> None:
    known = {workload.wire["id"]: workload.before for workload in batch}
    insert_workloads(conn, (workload.wire for workload in batch), known)


def _stored_count(conn: Connection) -> int:
    statement = sa.select(sa.func.count()).select_from(workloads_table)
    return int(conn.execute(statement).scalar_one())


def _secondary_indexes() -> list[sa.Index]:
    return [*workloads_table.indexes, *workload_nodepools.indexes]


def _drop_secondary_indexes(engine: Engine) -> None:
    with engine.begin() as conn:
        for index in _secondary_indexes():
            index.drop(conn, checkfirst=True)


def _create_secondary_indexes(engine: Engine) -> None:
    """Create the indexes that are missing; also repairs a bulk load that was interrupted."""
    with engine.begin() as conn:
        # Indexing a million workloads may take longer than the statement timeout allows.
        without_statement_timeout(conn)
        for index in _secondary_indexes():
            index.create(conn, checkfirst=True)
