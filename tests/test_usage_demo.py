"""The demo's 90 days of GPU-hours: every project has history, office hours and weekdays are
busier, the hoarding teams stand out by idle hours, and the live part carries on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gpufleet.demo.organisation import PROJECTS
from gpufleet.demo.seed import seed_demo
from gpufleet.demo.sim.expected import held_at
from gpufleet.query.usage import UsageGroupBy, UsageQuery, UsageWindow
from gpufleet.store.usage import usage
from gpufleet.store.usage_ledger import advance_open

ANCHOR = datetime(2026, 11, 30, 10, 30, tzinfo=UTC)  # a Monday
# Teams whose work is mostly idle hoarding (RayClusters, idle notebooks), and those with
# only steady work or services.
HOARDERS = frozenset({"notebooks", "rl-agents"})
BUSY = frozenset({"llm-pretrain", "speech", "ci-gpu", "recsys", "inference-prod",
                  "inference-staging", "search-ranking"})  # fmt: skip


def _window(start: datetime, end: datetime) -> UsageWindow:
    return UsageWindow.covering(start, end)


def test_ninety_days_of_plausible_history(engine):
    seed_demo(engine, workloads=200, seed=3, anchor=ANCHOR, metrics_history=False)
    whole = _window(ANCHOR - timedelta(days=90), ANCHOR)
    with engine.connect() as conn:
        rows = usage(conn, UsageQuery(whole, (UsageGroupBy.PROJECT,)))
        by_name = {r.groups[0].name: r.figures for r in rows}
        assert set(by_name) == {p.name for p in PROJECTS}
        for name, figures in by_name.items():
            share = figures.idle_gpu_hours / figures.allocated_gpu_hours
            if name in HOARDERS:
                assert share > 0.5, name
            elif name in BUSY:
                assert share < 0.05, name
            else:
                assert share < 0.5, name
            assert 0 < figures.used_gpu_hours < figures.allocated_gpu_hours

        def total(start: datetime, hours: int = 1) -> float:
            window = _window(start, start + timedelta(hours=hours))
            (row,) = usage(conn, UsageQuery(window))
            return row.figures.allocated_gpu_hours

        monday_noon = datetime(2026, 11, 23, 12, tzinfo=UTC)
        assert total(monday_noon) > 1.5 * total(monday_noon - timedelta(hours=10))
        assert total(monday_noon) > 1.5 * total(monday_noon - timedelta(days=2))
        assert total(ANCHOR - timedelta(days=92), 24) == 0
        # Its last three days hold what the simulated fleet holds on average, give or take a
        # tenth; before them, what the organisation asked for grew and wandered.
        last_hour = ANCHOR.replace(minute=0) - timedelta(hours=1)
        for hours in range(0, 3 * 24, 5):
            hour = last_hour - timedelta(hours=hours)
            expected = sum(held.gpus for held in held_at(hour))
            assert total(hour) == pytest.approx(expected, rel=0.1), hour
        weeks = [total(ANCHOR - timedelta(weeks=n), 7 * 24) for n in range(2, 13)]
        assert weeks[-1] < 0.95 * weeks[0]  # 12 weeks ago against 2
        assert len({round(week) for week in weeks}) == len(weeks)
        # The same hour of the week differs from week to week by more than the hour's noise.
        same_hour = [total(monday_noon - timedelta(weeks=n)) for n in range(1, 12)]
        assert max(same_hour) > 1.15 * min(same_hour)
    # The seeded running workloads carry the ledger on from the anchor.
    with engine.begin() as conn:
        assert advance_open(conn, ANCHOR + timedelta(minutes=30)) > 0
    with engine.connect() as conn:
        later = _window(ANCHOR, ANCHOR + timedelta(minutes=30))
        (row,) = usage(conn, UsageQuery(later))
    assert row.figures.allocated_gpu_hours > 0
