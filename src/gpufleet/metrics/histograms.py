"""Histogram arithmetic shared by every backend: bucket ordering and percentiles.

Percentiles follow Prometheus ``histogram_quantile``: buckets are cumulative counts keyed by
upper bound; the rank ``q x total`` is located in the first bucket whose count reaches it and
interpolated linearly inside that bucket (the lowest bucket starts at 0 when its bound is
positive); a rank in the ``+Inf`` bucket yields the highest finite bound.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping
from itertools import accumulate, repeat

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
    (values,) = interval_percentiles([[b for b, _ in buckets]], [[c for _, c in buckets]])
    return None if values is None else dict(zip(_NAMES, values, strict=True))


def interval_percentiles(
    bounds: Iterable[list[float]], counts: Iterable[Iterable[float]]
) -> list[tuple[float, ...] | None]:
    """``sorted_percentiles`` of each interval's bounds (in increasing order) and counts, given
    apart, as the values in the order of ``PERCENTILES``, or None.

    An answer computes one per interval, mostly over the same bounds: a list of bounds is
    checked once, and no pair per bucket, dict or test per quantile is made."""
    checked = None
    answer: list[tuple[float, ...] | None] = []
    for of_interval, raw in zip(bounds, counts, strict=True):
        if of_interval is not checked:
            _checked(of_interval, ())
            checked = of_interval
        cumulative = list(accumulate(raw, max, initial=0.0))[1:]
        if cumulative[-1] <= 0:  # no observations: every quantile would be None
            answer.append(None)
        else:
            quantiles = map(_quantile, _QUANTILES, repeat(of_interval), repeat(cumulative))
            answer.append(tuple(quantiles))
    return answer


_NAMES = [name for name, _ in PERCENTILES]
_QUANTILES = [q for _, q in PERCENTILES]
