"""Fast random draws: weighted choice with cumulative weights computed once, uniform picks."""

from __future__ import annotations

import random
from bisect import bisect
from collections.abc import Iterable, Sequence
from itertools import accumulate
from typing import Generic, TypeVar

T = TypeVar("T")


class Weighted(Generic[T]):
    """A fixed set of values with relative weights; ``pick`` draws one."""

    __slots__ = ("_cumulative", "_total", "values")

    def __init__(self, pairs: Iterable[tuple[T, float]]) -> None:
        pairs = [(value, weight) for value, weight in pairs if weight > 0]
        if not pairs:
            raise ValueError("a weighted choice needs at least one value with a positive weight")
        self.values: tuple[T, ...] = tuple(value for value, _ in pairs)
        self._cumulative = list(accumulate(weight for _, weight in pairs))
        self._total = self._cumulative[-1]

    def pick(self, rng: random.Random) -> T:
        """One value, drawn with probability proportional to its weight."""
        # min(): a product rounded up to the total must not index past the end.
        index = bisect(self._cumulative, rng.random() * self._total)
        return self.values[min(index, len(self.values) - 1)]

    def chance(self, value: object) -> float:
        """The probability that ``pick`` draws ``value``."""
        previous, total = 0.0, 0.0
        for candidate, cumulative in zip(self.values, self._cumulative, strict=True):
            if candidate == value:
                total += cumulative - previous
            previous = cumulative
        return total / self._total

    def __contains__(self, value: object) -> bool:
        return value in self.values


def pick_one(rng: random.Random, values: Sequence[T]) -> T:
    """One of ``values``, uniformly; cheaper than ``Random.choice`` (one float, no rejection)."""
    return values[int(rng.random() * len(values))]


def between(rng: random.Random, low: int, high: int) -> int:
    """A whole number from ``low`` to ``high`` inclusive, uniformly."""
    return low + int(rng.random() * (high - low + 1))
