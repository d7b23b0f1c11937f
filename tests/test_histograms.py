"""Percentiles of many intervals at once: each interval as ``quantile`` computes it alone."""

from __future__ import annotations

import random

import pytest

from gpufleet.metrics.histograms import (
    INF,
    HistogramError,
    interval_percentiles,
    quantile,
    sorted_percentiles,
)
from gpufleet.metrics.types import PERCENTILES

BOUNDS = [0.05, 0.1, 0.5, 1.0, INF]


def _alone(bounds: list[float], counts: list[float]) -> tuple[float, ...] | None:
    values = [quantile(q, list(zip(bounds, counts, strict=True))) for _, q in PERCENTILES]
    return None if None in values else tuple(values)


def test_each_interval_as_computed_alone() -> None:
    rng = random.Random(3)
    counts = []
    for _ in range(500):
        # Cumulative counts with a producer's rounding now and then (a count below the last),
        # and intervals without observations.
        row = sorted(rng.choice([0, 0, 1, 2.5, rng.uniform(0, 50)]) for _ in BOUNDS)
        if rng.random() < 0.1:
            row[2] = max(0.0, row[2] - 1)
        counts.append(row)
    # One list of bounds shared by every interval, as the embedded backend passes it, and a
    # list of their own for some (checked each).
    bounds = [BOUNDS if i % 7 else list(BOUNDS) for i in range(len(counts))]
    answer = interval_percentiles(bounds, counts)
    assert answer == [_alone(BOUNDS, row) for row in counts]
    assert None in answer


def test_one_interval_as_a_dict() -> None:
    buckets = [(0.1, 1.0), (0.5, 3.0), (INF, 4.0)]
    expected = {name: quantile(q, buckets) for name, q in PERCENTILES}
    assert sorted_percentiles(buckets) == expected
    assert sorted_percentiles([(0.1, 0.0), (INF, 0.0)]) is None


@pytest.mark.parametrize("bounds", [[0.1, 0.5], [INF]])
def test_buckets_without_percentiles_are_refused(bounds: list[float]) -> None:
    with pytest.raises(HistogramError):
        interval_percentiles([bounds], [[1.0] * len(bounds)])
