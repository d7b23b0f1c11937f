"""Histogram arithmetic shared by every backend: bucket ordering and percentiles.

Percentiles follow Prometheus ``histogram_quantile``: buckets are cumulative counts keyed by
upper bound; the rank ``q x total`` is located in the first bucket whose count reaches it and
interpolated linearly inside that bucket (the lowest bucket starts at 0 when its bound is
positive); a rank in the ``+Inf`` bucket yields the highest finite bound.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping
from itertools import accumulate

from gpufleet.metrics.types import PERCENTILES, parse_le

INF = float("inf")


class HistogramError(ValueError):
    """The buckets cannot yield percentiles (no ``+Inf`` bucket, fewer than two buckets)."""


def sorted_buckets(data: Mapping[str, float]) -> list[tuple[float, float]]:
    """``(upper bound, cumulative count)`` pairs in increasing bound order."""
    return sorted((parse_le(key), count) for key, count in data.items())


def quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """The q-quantile of sorted cumulative buckets; None when they hold no observations."""
    return _quantile(q, *_monotonic(buckets))


def _monotonic(buckets: list[tuple[float, float]]) -> tuple[list[float], list[float]]:
    """Bounds and counts, counts made non-decreasing: producers' rounding is smoothed over as
    Prometheus does."""
    return _checked([bound for bound, _ in buckets], [count for _, count in buckets])


def _checked(bounds: list[float], counts: Iterable[float]) -> tuple[list[float], list[float]]:
    """``_monotonic`` of bounds and counts given apart."""
    if len(bounds) < 2 or bounds[-1] != INF:
        raise HistogramError("a histogram needs a +Inf bucket and at least one finite bucket")
    return bounds, list(accumulate(counts, max, initial=0.0))[1:]


def _quantile(q: float, bounds: list[float], counts: list[float]) -> float | None:
    total = counts[-1]
    if total <= 0:
        return None
    rank = q * total
    index = bisect_left(counts, rank)  # the first bucket whose count reaches the rank
    bound, count = bounds[index], counts[index]
    if bound == INF:
        return bounds[-2]
    lower_bound, lower_count = (0.0, 0.0) if index == 0 else (bounds[index - 1], counts[index - 1])
    if index == 0 and bound <= 0:
        return bound
    in_bucket = count - lower_count
    if in_bucket <= 0:
        return bound
    return lower_bound + (bound - lower_bound) * (rank - lower_count) / in_bucket


def percentiles(data: Mapping[str, float]) -> dict[str, float] | None:
    """p50, p90, p99 of one timestamp's buckets; None when there were no observations."""
    return sorted_percentiles(sorted_buckets(data))


def sorted_percentiles(buckets: list[tuple[float, float]]) -> dict[str, float] | None:
    """``percentiles`` of buckets already sorted as ``sorted_buckets`` sorts them."""
    return column_percentiles(*_monotonic(buckets))


def column_percentiles(bounds: list[float], counts: Iterable[float]) -> dict[str, float] | None:
    """``sorted_percentiles`` of the bounds, in increasing order, and their counts given apart
    (an answer computes one per interval: no pair per bucket)."""
    bounds, counts = _checked(bounds, counts)  # once for the three quantiles
    values: dict[str, float] = {}
    for name, q in PERCENTILES:
        value = _quantile(q, bounds, counts)
        if value is None:
            return None
        values[name] = value
    return values
