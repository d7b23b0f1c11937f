"""The report worker: builds pending consumption reports from the usage ledger, one replica at
a time (the ``reports`` lease), surviving restarts (all state is in the database).

A report file is CSV, one row per group and UTC day:

``date,<group>Id,<group>Name,allocatedGpuHours,usedGpuHours,idleGpuHours,cpuCoreHours,
memoryGibHours,pendingWorkloadHours`` (a node pool has only ``nodepoolName``; an ungrouped
report has no group columns).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Connection, Engine

from gpufleet.core.report_fields import ReportGroupBy, ReportStatus
from gpufleet.core.times import from_ms, to_ms
from gpufleet.metrics.types import format_value
from gpufleet.metrics.usage_tasks import lease_term_ms
from gpufleet.query.usage import (
    UsageBucket,
    UsageFilterField,
    UsageGroupBy,
    UsageQuery,
    UsageWindow,
)
from gpufleet.schemas.csv_cells import write_csv
from gpufleet.schemas.usage import FIGURE_FIELDS
from gpufleet.settings import Settings
from gpufleet.store.leases import take_lease
from gpufleet.store.reports import next_unfinished, scope_of, set_status
from gpufleet.store.usage import usage

log = logging.getLogger("gpufleet.reports")
REPORTS_LEASE = "reports"
_GROUPS = {
    ReportGroupBy.NODEPOOL: (UsageGroupBy.NODEPOOL, ("nodepoolName",)),
    ReportGroupBy.PROJECT: (UsageGroupBy.PROJECT, ("projectId", "projectName")),
    ReportGroupBy.DEPARTMENT: (UsageGroupBy.DEPARTMENT, ("departmentId", "departmentName")),
    ReportGroupBy.CLUSTER: (UsageGroupBy.CLUSTER, ("clusterId", "clusterName")),
}


def report_query(row: Mapping[str, Any]) -> UsageQuery:
    """The usage question a stored report asks, in its creator's scope."""
    filters = []
    for term in row["filter_by"]:
        name, _, value = term.partition("==")
        filters.append((UsageFilterField(name), value))
    group = _GROUPS[ReportGroupBy(row["group_by"])][0] if row["group_by"] else None
    return UsageQuery(
        window=UsageWindow.covering(row["start_at"], row["end_at"]),
        group_by=(group,) if group else (),
        scope=scope_of(row["scope"]),
        filters=tuple(filters),
        bucket=UsageBucket.DAY,
    )


def report_csv(conn: Connection, row: Mapping[str, Any]) -> str:
    """The file of a report: one row per group and day, in day then group order."""
    query = report_query(row)
    columns = _GROUPS[ReportGroupBy(row["group_by"])][1] if row["group_by"] else ()
    rows = sorted(usage(conn, query), key=lambda r: (r.bucket_ms, tuple(g.value for g in r.groups)))
    lines = []
    for item in rows:
        day = from_ms(item.bucket_ms or 0).date().isoformat()
        cells: list[object] = [day]
        for group in item.groups:
            cells += [group.name] if len(columns) == 1 else [group.value, group.name]
        figures = (getattr(item.figures, attr) for attr in FIGURE_FIELDS.values())
        lines.append([*cells, *(format_value(round(f, 6)) for f in figures)])
    buffer = io.StringIO()
    write_csv(buffer, ["date", *columns, *FIGURE_FIELDS], lines)
    return buffer.getvalue()


def run_pending_reports(engine: Engine, holder: str, term_ms: int) -> int:
    """Build every unfinished report, oldest first; returns how many were finished.

    Only the holder of the lease builds; it renews the lease before each report.
    """
    finished = 0
    while True:
        now = datetime.now(UTC)
        with engine.begin() as conn:
            if not take_lease(conn, REPORTS_LEASE, holder, to_ms(now), term_ms):
                return finished
            row = next_unfinished(conn)
            if row is None:
                return finished
            set_status(conn, row["id"], ReportStatus.PROCESSING, "Building the report", now)
        try:
            with engine.connect() as conn:
                text = report_csv(conn, row)
        except Exception as exc:  # a report that cannot be built fails; the worker goes on
            log.exception("report %s failed", row["id"])
            outcome = (ReportStatus.FAILED, f"The report could not be built ({type(exc).__name__})")
            text = None
        else:
            outcome = (ReportStatus.READY, "Report is ready")
        with engine.begin() as conn:
            set_status(conn, row["id"], *outcome, datetime.now(UTC), file=text)
        log.info("report %s %s (built by %s)", row["id"], outcome[0].value, holder)
        finished += 1


def report_jobs(engine: Engine, settings: Settings, holder: str) -> list:
    """The worker as a periodic job of the server (none when disabled)."""
    interval = settings.report_interval_seconds
    if interval <= 0:
        return []
    term = lease_term_ms(interval)
    return [("reports", interval, lambda: run_pending_reports(engine, holder, term))]
