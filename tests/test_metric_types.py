"""Metric values as the wire's decimal strings: one rule, whether a value is formatted alone,
in a column, or passed through as Prometheus wrote it."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpufleet.metrics.types import format_value, format_values, wire_decimals

FINITE = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e18, max_value=1e18)


def _plain(value: float) -> str:
    """The shortest decimal that reads back as ``value``, without an exponent, as Prometheus
    writes sample values."""
    return format(Decimal(repr(value)), "f")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (80.0, "80"),
        (3, "3"),
        (0.1 + 0.2, "0.3"),
        (45.333333333333336, "45.333333"),
        (0.000015, "0.000015"),
        (-0.0, "0"),
        (-1e-7, "0"),
        (0.9999996, "1"),
        (2.0**63, "9223372036854775808"),
        (Decimal("2.50"), "2.5"),
        (math.nan, "NaN"),
    ],
)
def test_format_value(value, text):
    assert format_value(value) == text


@settings(max_examples=300)
@given(st.lists(FINITE, max_size=20))
def test_a_column_is_formatted_as_each_value_alone(values):
    assert format_values(values) == [format_value(v) for v in values]


@settings(max_examples=300)
@given(st.lists(st.one_of(FINITE, FINITE.map(lambda v: round(v, 3))), min_size=1, max_size=20))
def test_prometheus_text_comes_out_as_its_number_formatted(values):
    texts = [_plain(v) for v in values]
    assert wire_decimals(texts) == [format_value(v) for v in values]


@settings(max_examples=300)
@given(FINITE)
def test_six_decimals_at_most_and_no_exponent(value):
    text = format_value(value)
    assert "e" not in text and len(text.partition(".")[2]) <= 6
    assert abs(float(text) - value) <= 5e-7 + abs(value) * 1e-15


def test_text_already_in_wire_form_is_returned_as_it_is():
    texts = ["80", "0.25", "123456789.123456", "-4"]
    assert wire_decimals(texts) is texts
    assert wire_decimals(["-0", "1"]) == ["0", "1"]
    assert wire_decimals(["1.0000001", "2"]) == ["1", "2"]
