"""``problem_in`` on validated values: the ids, times and empty lists it passes over without
looking inside are judged as a full look would judge them, at any depth."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import BaseModel

from gpufleet.schemas.storable import MAX_DEPTH, problem_in

EAST = timezone(timedelta(hours=14))


def _nested(leaf: object, depth: int) -> list:
    """``leaf`` held by ``depth`` lists, one in another."""
    value: object = leaf
    for _ in range(depth):
        value = [value]
    return value  # type: ignore[return-value]


@pytest.mark.parametrize(
    "leaf",
    [
        uuid.UUID("3e1f4c2a-9b7d-4e6f-8a5c-0d2b4f6a8c1e"),
        datetime(2025, 3, 1, tzinfo=UTC),
        datetime(2025, 3, 1),
        datetime(9999, 12, 31, 23, 59, tzinfo=UTC),
        [],
    ],
)
def test_ordinary_values_pass_up_to_the_depth_limit_and_are_too_deep_past_it(leaf):
    assert problem_in(_nested(leaf, MAX_DEPTH), strings=False) is None
    path, problem = problem_in(_nested(leaf, MAX_DEPTH + 1), strings=False)
    assert "nested deeper" in problem
    assert path == (0,) * (MAX_DEPTH + 1)


def test_a_time_whose_offset_leaves_the_calendar_in_utc_is_named():
    late = datetime(9999, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-14)))
    assert problem_in({"at": [late]}, strings=False) == (
        ("at", 0),
        "is outside the years 1 to 9999 once converted to UTC",
    )
    assert problem_in({"at": [datetime(2025, 3, 1, tzinfo=EAST)]}, strings=False) is None


class _Held(BaseModel):
    id: uuid.UUID
    at: datetime
    values: list[float]
    names: list[str]


def test_a_models_values_are_checked_behind_its_ids_and_times():
    held = _Held(id=uuid.uuid4(), at=datetime.now(UTC), values=[], names=[])
    assert problem_in(held, strings=False) is None
    held.values = [1.0, float("nan")]
    assert problem_in(held, strings=False) == (("values", 1), "is not a finite number")
    held.values = []
    held.names = ["a\x00b"]
    assert problem_in(held, strings=False) is None
    assert problem_in(held) == (("names", 0), "contains a NUL character")
