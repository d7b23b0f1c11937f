"""The filterBy grammar on its own: splitting, parsing, validation and the errors it names."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from gpufleet.core.workload_fields import ALLOWED_OPERATORS, FieldKind, Operator
from gpufleet.query.errors import QueryError
from gpufleet.query.fields import WORKLOAD_FIELDS
from gpufleet.query.filters import (
    MAX_TERM_LENGTH,
    MAX_TERMS,
    parse_filters,
    parse_term,
    parse_timestamp,
    split_terms,
)
from gpufleet.query.listing import (
    MAX_LIMIT,
    MAX_OFFSET,
    build_page,
    build_selection,
    build_sort,
)

NOW = datetime(2024, 6, 1, tzinfo=UTC)
SAMPLE_VALUES = {
    FieldKind.TEXT: ("abc", "abc"),
    FieldKind.NUMBER: ("2.5", 2.5),
    FieldKind.INTEGER: ("7", 7.0),
    FieldKind.DATE: ("2024-01-02T03:04:05.678Z", datetime(2024, 1, 2, 3, 4, 5, 678000, UTC)),
}


def _error(raw: str) -> QueryError:
    with pytest.raises(QueryError) as caught:
        parse_filters([raw])
    assert caught.value.parameter == "filterBy"
    return caught.value


def _allowed_cases():
    for name, field in WORKLOAD_FIELDS.items():
        for operator in Operator:
            yield name, field.kind, operator, operator in ALLOWED_OPERATORS[field.kind]


@pytest.mark.parametrize(("name", "kind", "operator", "allowed"), list(_allowed_cases()))
def test_every_operator_on_every_field(name, kind, operator, allowed):
    text, expected = SAMPLE_VALUES[kind]
    if name == "phase":
        text = expected = "Running"
    raw = f"{name}{operator.value}{text}"
    if allowed:
        (term,) = parse_filters([raw])
        assert (term.field.name, term.operator, term.value, term.raw) == (
            name,
            operator,
            expected,
            raw,
        )
    else:
        error = _error(raw)
        assert repr(raw) in error.message
        assert "not allowed" in error.message


def test_the_table_has_the_26_reference_fields_and_expected_kinds():
    assert len(WORKLOAD_FIELDS) == 26
    kinds = {name: field.kind for name, field in WORKLOAD_FIELDS.items()}
    assert {n for n, k in kinds.items() if k is FieldKind.DATE} == {
        "createdAt",
        "deletedAt",
        "completedAt",
        "phaseUpdatedAt",
        "guaranteedRuntimeEndsAt",
    }
    assert kinds["allocatedGPU"] is FieldKind.NUMBER
    assert kinds["totalRunningTimeSeconds"] is FieldKind.INTEGER
    assert ALLOWED_OPERATORS[FieldKind.TEXT] == frozenset(Operator)
    assert ALLOWED_OPERATORS[FieldKind.DATE] == frozenset(
        {Operator.EQ, Operator.NE, Operator.LE, Operator.GE}
    )


@pytest.mark.parametrize(
    ("parameters", "terms"),
    [
        (["name==a"], ["name==a"]),
        (["name==a,phase==Running"], ["name==a", "phase==Running"]),
        (["name=@a,b"], ["name=@a,b"]),
        (["name=@a,b,c,allocatedGPU>=1"], ["name=@a,b,c", "allocatedGPU>=1"]),
        (["name==a,", "type==b"], ["name==a,", "type==b"]),
        ([",name==a"], ["name==a"]),
        (["name==a,,b"], ["name==a,,b"]),
        (["name=@1,000"], ["name=@1,000"]),
        (["name=@a, phase==Running"], ["name=@a, phase==Running"]),
        (["name==a", "name!=b"], ["name==a", "name!=b"]),
        ([""], []),
    ],
)
def test_comma_splitting(parameters, terms):
    assert split_terms(parameters) == terms


def test_a_comma_followed_by_a_term_start_always_splits():
    # The documented limit of the comma rule: such a value cannot be expressed.
    error = _error("name=@a,bogus==c")
    assert "'bogus==c'" in error.message
    assert "unknown field 'bogus'" in error.message


@pytest.mark.parametrize(
    ("raw", "expected_value"),
    [
        ("name=@50%_x", "50%_x"),
        ("name==a\\b", "a\\b"),
        ("name=^'; DROP TABLE workloads; --", "'; DROP TABLE workloads; --"),
        ("name=$日本語", "日本語"),
        ("name==a==b", "a==b"),
        ("name== leading space", " leading space"),
        ("projectName=@🚀", "🚀"),
    ],
)
def test_text_values_are_kept_verbatim(raw, expected_value):
    (term,) = parse_filters([raw])
    assert term.value == expected_value


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("name", "is not of the form"),
        ("name~=x", "is not of the form"),
        ("==x", "is not of the form"),
        ("9name==x", "is not of the form"),
        ("nämé==x", "is not of the form"),
        ("bogus==x", "unknown field 'bogus'"),
        ("Name==x", "unknown field 'Name'"),
        ("name==", "has no value"),
        ("allocatedGPU>=", "has no value"),
        ("allocatedGPU=@1", "not allowed"),
        ("createdAt=^2024", "not allowed"),
        ("priority!@3", "not allowed"),
        ("allocatedGPU>=two", "is not a number"),
        ("allocatedGPU>=1,5", "is not a number"),
        ("priority==0x10", "is not a number"),
        ("priority==1_000", "is not a number"),
        ("idleGpus<=NaN", "is not a number"),
        ("idleGpus<=nan", "is not a number"),
        ("idleGpus<=inf", "is not a number"),
        ("idleGpus<=-Infinity", "is not a number"),
        ("allocatedGPU>=1e400", "out of range"),
        ("allocatedGPU>=-1e400", "out of range"),
        ("createdAt>=yesterday", "is not an ISO 8601 timestamp"),
        ("createdAt>=2024-13-01", "is not an ISO 8601 timestamp"),
        ("createdAt>=2024-01-01T25:00:00Z", "is not an ISO 8601 timestamp"),
        ("createdAt>=0001-01-01T00:00:00+01:00", "out of range"),
        ("createdAt>=9999-12-31T23:59:59-01:00", "out of range"),
        ("createdAt>=2024-01-01\x00", "is not an ISO 8601 timestamp"),
        ("name==a\x00b", "NUL"),
        ("phase==running", "unknown phase 'running'"),
        ("phase!=Sleeping", "unknown phase 'Sleeping'"),
    ],
)
def test_errors_name_the_offending_term(raw, fragment):
    error = _error(raw)
    assert fragment in error.message
    if fragment != "is not of the form" or raw:
        assert repr(raw) in error.message or raw in error.message


def test_the_bad_term_is_named_among_good_ones():
    error = _error("name==ok,allocatedGPU>=lots,phase==Running")
    assert "'allocatedGPU>=lots'" in error.message
    assert "name==ok" not in error.message


def test_phase_text_operators_accept_any_fragment():
    (term,) = parse_filters(["phase=@unn"])
    assert term.value == "unn"


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0", 0.0),
        ("-3", -3.0),
        ("+3", 3.0),
        ("2.", 2.0),
        (".5", 0.5),
        ("1e3", 1000.0),
        ("1E-3", 0.001),
        ("99999999999999999999999999999", 1e29),
        ("1e308", 1e308),
    ],
)
def test_numbers(text, value):
    (term,) = parse_filters([f"allocatedGPU>={text}"])
    assert term.value == value


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-02T03:04:05Z", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2024-01-02T03:04:05z", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2024-01-02T03:04:05", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2024-01-02 03:04:05.123", datetime(2024, 1, 2, 3, 4, 5, 123000, tzinfo=UTC)),
        ("2024-01-02T05:04:05+02:00", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2024-01-01T22:04:05-05:00", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2024-01-02", datetime(2024, 1, 2, tzinfo=UTC)),
    ],
)
def test_dates_with_and_without_zone(text, expected):
    (term,) = parse_filters([f"createdAt=={text}"])
    assert term.value == expected
    assert term.value.utcoffset() == timedelta(0)


def test_parse_timestamp_converts_any_zone_to_utc():
    value = parse_timestamp("2024-03-01T12:00:00+05:30", parameter="start")
    assert value == datetime(2024, 3, 1, 6, 30, tzinfo=UTC)
    assert value.tzinfo == UTC
    assert value == datetime(2024, 3, 1, 12, 0, tzinfo=timezone(timedelta(hours=5, minutes=30)))


def test_parse_timestamp_names_its_parameter():
    with pytest.raises(QueryError) as caught:
        parse_timestamp("soon", parameter="start")
    assert caught.value.parameter == "start"


def test_limits_on_term_count_and_length():
    parse_filters([",".join(["name==a"] * MAX_TERMS)])
    error = _error(",".join(["name==a"] * (MAX_TERMS + 1)))
    assert str(MAX_TERMS) in error.message
    parse_term("name==" + "x" * (MAX_TERM_LENGTH - 6))
    with pytest.raises(QueryError, match="longer than"):
        parse_term("name==" + "x" * MAX_TERM_LENGTH)


def test_no_filters():
    assert parse_filters(None) == ()
    assert parse_filters([]) == ()


def test_search_is_trimmed_lowercased_and_bounded():
    assert build_selection(now=NOW, filter_by=None, search="  GPU Job ", deleted=None).search == (
        "gpu job"
    )
    assert build_selection(now=NOW, filter_by=None, search="   ", deleted=None).search is None
    for bad in ("a\x00b", "x" * 257, "a\x1fb"):
        with pytest.raises(QueryError) as caught:
            build_selection(now=NOW, filter_by=None, search=bad, deleted=None)
        assert caught.value.parameter == "search"


def test_deleted_defaults_to_false():
    assert build_selection(now=NOW, filter_by=None, search=None, deleted=None).deleted is False
    assert build_selection(now=NOW, filter_by=None, search=None, deleted=True).deleted is True


def test_sort_defaults_and_errors():
    sort = build_sort(None, None)
    assert (sort.field.name, sort.descending) == ("createdAt", False)
    assert build_sort("name", "desc").descending is True
    for sort_by, sort_order, parameter in (("bogus", None, "sortBy"), (None, "up", "sortOrder")):
        with pytest.raises(QueryError) as caught:
            build_sort(sort_by, sort_order)
        assert caught.value.parameter == parameter


@pytest.mark.parametrize(
    ("offset", "limit", "parameter"),
    [
        (-1, 10, "offset"),
        (MAX_OFFSET + 1, 10, "offset"),
        (0, 0, "limit"),
        (0, MAX_LIMIT + 1, "limit"),
    ],
)
def test_page_bounds(offset, limit, parameter):
    selection = build_selection(now=NOW, filter_by=None, search=None, deleted=None)
    with pytest.raises(QueryError) as caught:
        build_page(selection, sort_by=None, sort_order=None, offset=offset, limit=limit)
    assert caught.value.parameter == parameter


def test_page_defaults():
    selection = build_selection(now=NOW, filter_by=None, search=None, deleted=None)
    page = build_page(selection, sort_by=None, sort_order=None, offset=None, limit=None)
    assert (page.offset, page.limit) == (0, 50)
