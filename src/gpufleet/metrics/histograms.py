"""Histogram arithmetic shared by every backend: bucket ordering and percentiles.

Percentiles follow Prometheus ``histogram_quantile``: buckets are cumulative counts keyed by
upper bound; the rank ``q x total`` is located in the first bucket whose count reaches it and
interpolated linearly inside that bucket (the lowest bucket starts at 0 when its bound is
positive); a rank in the ``+Inf`` bucket yields the highest finite bound.
"""

from __future__ import annotations

from collections.abc import Mapping

from gpufleet.metrics.types import PERCENTILES, parse_le

INF = float("inf")


class HistogramError(ValueError):
    """The buckets cannot yield percentiles (no ``+Inf`` bucket, fewer than two buckets)."""


def sorted_buckets(data: Mapping[str, float]) -> list[tuple[float, float]]:
    """``(upper bound, cumulative count)`` pairs in increasing bound order."""
    return sorted((parse_le(key), count) for key, count in data.items())


def quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """The q-quantile of sorted cumulative buckets; None when they hold no observations."""
    if len(buckets) < 2 or buckets[-1][0] != INF:
        raise HistogramError("a histogram needs a +Inf bucket and at least one finite bucket")
    # Counts must not decrease with the bound; smooth over producers' rounding as Prometheus does.
    monotonic: list[tuple[float, float]] = []
    highest = 0.0
    for bound, count in buckets:
        highest = max(highest, count)
        monotonic.append((bound, highest))
    total = monotonic[-1][1]
    if total <= 0:
        return None
    rank = q * total
    index = next(i for i, (_, count) in enumerate(monotonic) if count >= rank)
    bound, count = monotonic[index]
    if bound == INF:
        return monotonic[-2][0]
    lower_bound, lower_count = (0.0, 0.0) if index == 0 else monotonic[index - 1]
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
    values: dict[str, float] = {}
    for name, q in PERCENTILES:
        value = quantile(q, buckets)
        if value is None:
            return None
        values[name] = value
    return values
