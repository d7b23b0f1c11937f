"""Properties of the usage ledger over random timelines, fed in random order.

For random workloads (random allocations, phases, node pools and owners) whose observations
arrive shuffled into random batches, the ledger equals a direct integration of the timelines;
every grouping adds up to the total, a node pool's filter answers its group, a window split at
an hour adds up to the whole, and merging runs of equal points changes nothing.
"""

from __future__ import annotations

import itertools
import random
import uuid
from dataclasses import astuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpufleet.query.usage import (
    HOUR_MS,
    UsageFilterField,
    UsageGroupBy,
    UsageQuery,
    UsageWindow,
)
from gpufleet.store.usage import usage
from gpufleet.store.usage_ledger import (
    HeldState,
    Observation,
    compact_states,
    record_observations,
)

BASE_MS = 1_700_000_000_000 - 1_700_000_000_000 % HOUR_MS
SPAN_HOURS = 6
POOLS = ("", "a100", "h100", "a100,h100")

states = st.builds(
    lambda project, submitter, kind, pools, gpu, cpu, pending: (
        project,
        submitter,
        kind,
        pools,
        0.0 if pending else gpu,
        0.0 if pending else cpu,
        pending,
    ),
    st.sampled_from(["p1", "p2", "p3"]),
    st.sampled_from(["ann", "bob"]),
    st.sampled_from(["Training", "Workspace"]),
    st.sampled_from(POOLS),
    st.sampled_from([0.0, 0.5, 1.0, 2.0, 8.0]),
    st.sampled_from([0.0, 1.0, 4.0]),
    st.booleans(),
)
timelines = st.lists(
    st.lists(
        st.tuples(st.integers(0, SPAN_HOURS * 3600 - 1), states),
        min_size=1,
        max_size=5,
        unique_by=lambda step: step[0],
    ),
    min_size=1,
    max_size=4,
)


def _observations(cluster: str, timelines) -> list[Observation]:
    observations = []
    for steps in timelines:
        workload_id = str(uuid.uuid4())
        for second, (project, submitter, kind, pools, gpu, cpu, pending) in steps:
            state = HeldState(
                cluster, "d1", project, submitter, kind, pools, gpu, cpu, 0.0, pending
            )
            observations.append(Observation(workload_id, BASE_MS + second * 1000, state))
    return observations


def _integrated(observations: list[Observation], window: UsageWindow) -> float:
    """GPU-seconds inside the window, integrating each timeline directly."""
    by_workload: dict[str, list[Observation]] = {}
    for observation in observations:
        by_workload.setdefault(observation.workload_id, []).append(observation)
    total = 0.0
    for steps in by_workload.values():
        steps.sort(key=lambda o: o.at_ms)
        for current, following in itertools.pairwise(steps):
            start = max(current.at_ms, window.start_ms)
            end = min(following.at_ms, window.end_ms)
            total += max(0, end - start) / 1000 * current.state.gpu
    return total


def _figures(conn, cluster: str, window: UsageWindow, group_by=(), filters=()) -> list:
    query = UsageQuery(
        window=window,
        group_by=group_by,
        filters=((UsageFilterField.CLUSTER_ID, cluster), *filters),
    )
    return usage(conn, query)


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(timelines=timelines, order_seed=st.integers(0, 2**16), cut=st.integers(1, SPAN_HOURS - 1))
def test_the_ledger_integrates_timelines_fed_in_any_order(engine, timelines, order_seed, cut):
    cluster = str(uuid.uuid4())
    observations = _observations(cluster, timelines)
    shuffled = observations[:]
    random.Random(order_seed).shuffle(shuffled)
    with engine.begin() as conn:
        for start in range(0, len(shuffled), 3):
            record_observations(conn, shuffled[start : start + 3])
    whole = UsageWindow(BASE_MS, BASE_MS + SPAN_HOURS * HOUR_MS)
    with engine.connect() as conn:
        (total,) = _figures(conn, cluster, whole)
        expected = _integrated(observations, whole)
        assert total.figures.allocated_gpu_hours * 3600 == pytest.approx(expected, abs=1e-3)
        for group_by in [(g,) for g in UsageGroupBy] + [
            (UsageGroupBy.PROJECT, UsageGroupBy.NODEPOOL)
        ]:
            rows = _figures(conn, cluster, whole, group_by)
            for figure in ("allocated_gpu_hours", "cpu_core_hours", "pending_workload_hours"):
                summed = sum(getattr(r.figures, figure) for r in rows)
                assert summed == pytest.approx(getattr(total.figures, figure), abs=1e-6)
        # A node pool's filter answers its group, split as grouped; a workload in no pool is
        # in the group with no name, which no filter names.
        by_pool = _figures(conn, cluster, whole, (UsageGroupBy.NODEPOOL, UsageGroupBy.PROJECT))
        for pool in {r.groups[0].value for r in by_pool} - {""}:
            filters = ((UsageFilterField.NODEPOOL, pool),)
            grouped = {
                r.groups[1].value: astuple(r.figures) for r in by_pool if r.groups[0].value == pool
            }
            alone = _figures(conn, cluster, whole, (UsageGroupBy.PROJECT,), filters)
            found = {r.groups[0].value: astuple(r.figures) for r in alone}
            assert found.keys() == grouped.keys()
            for project, figures in found.items():
                assert figures == pytest.approx(grouped[project], abs=1e-9)
        first, second = whole.split(BASE_MS + cut * HOUR_MS)
        (left,) = _figures(conn, cluster, first)
        (right,) = _figures(conn, cluster, second)
        for figure in ("allocated_gpu_hours", "cpu_core_hours", "pending_workload_hours"):
            parts = getattr(left.figures, figure) + getattr(right.figures, figure)
            assert parts == pytest.approx(getattr(total.figures, figure), abs=1e-6)
        assert left.figures.allocated_gpu_hours * 3600 == pytest.approx(
            _integrated(observations, first), abs=1e-3
        )
    # Merging runs of equal points changes no figure, and later observations still land right.
    with engine.begin() as conn:
        compact_states(conn, BASE_MS + SPAN_HOURS * HOUR_MS)
        record_observations(conn, shuffled)
    with engine.connect() as conn:
        (again,) = _figures(conn, cluster, whole)
    assert again.figures.allocated_gpu_hours == pytest.approx(total.figures.allocated_gpu_hours)
