"""Ninety days of GPU-hours for the demo organisation, written straight into the ledger's
hourly rollups, and the live part: the seeded running and pending workloads begin their
ledger timelines at the anchor, so the ledger carries on from there.

Each project has a few standing "history" workloads (ids of their own, not in the workload
list) in the node pools its team of the living demo works in (``demo.sim.teams``), sized by
the team's quota, whose allocation follows the week: busy on weekday office hours, quieter at
night and at weekends, inference flat around the clock. Two teams hoard: notebooks and
rl-agents keep GPUs allocated day and night with low utilisation, so their idle hours stand out.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from uuid import NAMESPACE_URL, uuid5

from sqlalchemy.engine import Connection

from gpufleet.core.times import to_ms
from gpufleet.demo.organisation import PROJECTS, SUBMITTERS, Project
from gpufleet.demo.sim.teams import TEAMS
from gpufleet.demo.workloads import DemoWorkload
from gpufleet.store.dialect import bulk_append
from gpufleet.store.tables import usage_hourly
from gpufleet.store.usage_ledger import observation_of, start_timelines

HISTORY_DAYS = 90
HOUR_MS = 3_600_000
HOARDERS = frozenset({"notebooks", "rl-agents"})
TEAM_OF = {team.project.id: team for team in TEAMS}
# (type, share of the project's GPUs, follows office hours)
_SLOTS = (("Training", 0.6, True), ("Workspace", 0.25, True), ("Inference", 0.15, False))
# The order of the rows ``_rows`` yields.
_COLUMNS = (
    "workload_id", "hour_ms", "nodepool", "cluster_id", "department_id", "project_id",
    "submitter", "type", "gpu_seconds", "cpu_core_seconds", "memory_gib_seconds",
    "pending_seconds", "gpu_utilisation", "idle_share",
)  # fmt: skip


def _history_id(project: Project, slot: int) -> str:
    return str(uuid5(NAMESPACE_URL, f"https://demo.gpufleet.invalid/usage/{project.id}/{slot}"))


def _demand(moment: datetime, office: bool, hoarder: bool) -> float:
    """Share of the slot's GPUs held at this hour: the weekly rhythm."""
    if hoarder or not office:
        return 0.9
    weekend = moment.weekday() >= 5
    hour = moment.hour
    daytime = 0.5 - 0.5 * math.cos((hour - 3) / 24 * 2 * math.pi)
    return (0.15 if weekend else 0.35) + (0.2 if weekend else 0.6) * daytime


def _rows(project: Project, start: datetime, hours: int, tail_s: float) -> Iterator[tuple]:
    # The pools the team works in and about as many GPUs as it deserves there.
    team = TEAM_OF[project.id]
    pools = sorted(team.quota)
    hoarder = project.name in HOARDERS
    gpus = 0.8 * sum(team.quota.values())
    for slot, (kind, share, office) in enumerate(_SLOTS):
        rng = random.Random(f"demo-usage/{project.id}/{slot}")
        workload_id = _history_id(project, slot)
        pool = pools[slot % len(pools)]
        submitter = SUBMITTERS[(int(project.id) + slot) % len(SUBMITTERS)]
        for index in range(hours + 1):
            seconds = 3600.0 if index < hours else tail_s
            if seconds <= 0:
                break
            moment = start + timedelta(hours=index)
            held = gpus * share * _demand(moment, office, hoarder) * rng.uniform(0.8, 1.2)
            gpu_s = round(held, 2) * seconds
            busy = rng.uniform(5, 20) if hoarder else rng.uniform(45, 90)
            idle = rng.uniform(0.6, 0.85) if hoarder else rng.uniform(0.0, 0.1)
            pending = rng.uniform(0, 0.5) * seconds if office and not hoarder else 0.0
            yield (
                workload_id, to_ms(moment), pool,
                project.department.cluster.id, project.department.id, project.id, submitter, kind,
                gpu_s, gpu_s * 8, gpu_s * 64, pending, round(busy, 1), round(idle, 3),
            )  # fmt: skip


def write_usage_history(conn: Connection, anchor: datetime, days: int = HISTORY_DAYS) -> int:
    """Rollups for the ``days`` before ``anchor`` (the last, partial hour up to it)."""
    end_hour = anchor.replace(minute=0, second=0, microsecond=0)
    start = end_hour - timedelta(days=days)
    hours = days * 24
    tail = (anchor - end_hour).total_seconds()
    rows = (row for project in PROJECTS for row in _rows(project, start, hours, tail))
    return bulk_append(conn, usage_hourly, _COLUMNS, rows)


def start_live_usage(conn: Connection, batch: list[DemoWorkload], anchor: datetime) -> None:
    """The seeding hook: the batch's workloads begin their ledger timelines at the anchor."""
    observations = [observation_of(w.wire, anchor) for w in batch if not w.wire.get("deletedAt")]
    start_timelines(conn, [o for o in observations if o.state.accrues])
