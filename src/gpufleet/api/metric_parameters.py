"""The parameters every metrics route reads, declared once.

``metricType``, ``start``, ``end`` and ``numberOfSamples`` are parsed by one FastAPI dependency
built per route by ``metrics_query``: the types first (unknown ones, then the ones the serving
backend has no source for), then the window. Annotations are evaluated eagerly in this module,
so the per-route types built inside the factory can be named in the dependency's signature.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query, Request

from gpufleet.api.deps import State
from gpufleet.core.metric_values import SampleWindow
from gpufleet.query.choices import by_value, parse_choices
from gpufleet.query.errors import QueryError
from gpufleet.query.filters import parse_timestamp

DEFAULT_SAMPLES = 20
MAX_SAMPLES = 1000
# Each point stands for at least this long an interval, so timestamps never collide.
MIN_INTERVAL_MS = 1000


MetricTypesParam = Annotated[
    list[str], Query(description="Specify which data to request (comma-separated).")
]


def metric_types_param(types: type[StrEnum], description: str) -> Any:
    """The ``metricType`` query parameter of a path answering ``types``, with their enum listed."""
    items = {"type": "string", "enum": [t.value for t in types]}
    return Annotated[list[str], Query(description=description, json_schema_extra={"items": items})]


StartParam = Annotated[str, Query(description="Start of the range, ISO 8601.")]
EndParam = Annotated[str, Query(description="End of the range, ISO 8601.")]
SamplesParam = Annotated[
    int | None,
    Query(ge=0, le=MAX_SAMPLES, description="Points per type; 0 or absent means 20."),
]


MetricEnum = TypeVar("MetricEnum", bound=StrEnum)


def parse_metric_types(
    values: Sequence[str] | None, enum: type[MetricEnum], what: str | None
) -> list[MetricEnum]:
    """The requested types (comma-separated or repeated), each once, in the order first asked.

    An unknown name is refused as "not a ``what`` metric type", or without ``what`` with the
    list of the types there are."""
    unknown = f"is not a {what} metric type" if what else None
    types = parse_choices("metricType", values, by_value(enum), unknown=unknown)
    if not types:
        raise QueryError("metricType", "at least one metric type is required")
    return list(types)


def refuse_unanswerable(types: Sequence[StrEnum], answerable: frozenset, backend: str) -> None:
    """A 400 naming the requested types the backend has no source for, and the backend."""
    unanswerable = [t.value for t in types if t not in answerable]
    if unanswerable:
        raise QueryError(
            "metricType",
            f"{', '.join(unanswerable)} cannot be answered by the {backend} metrics backend",
        )


def parse_window(start: str, end: str, samples: int | None, max_range_days: int) -> SampleWindow:
    """The sampling window of a request; numberOfSamples 0 or absent means the default 20."""
    begin = parse_timestamp(start, parameter="start")
    finish = parse_timestamp(end, parameter="end")
    if finish <= begin:
        raise QueryError("end", "must be after start")
    if finish - begin > timedelta(days=max_range_days):
        raise QueryError("end", f"the range from start may be at most {max_range_days} days")
    count = samples or DEFAULT_SAMPLES
    window = SampleWindow.between(begin, finish, count)
    if window.span_ms < count * MIN_INTERVAL_MS:
        raise QueryError(
            "numberOfSamples", f"{count} samples need a range of at least {count} seconds"
        )
    return window


@dataclass(frozen=True, slots=True)
class MetricsQuery(Generic[MetricEnum]):
    """The requested types, each once, and the window to sample them over."""

    types: list[MetricEnum]
    window: SampleWindow


def metrics_query(
    types_param: Any,
    enum: type[StrEnum],
    what: str | None,
    *,
    source: Callable[[Request], Any] | None = None,
    answers: Callable[[Any], frozenset] | None = None,
) -> Any:
    """The dependency reading ``metricType`` (declared as ``types_param``), ``start``, ``end``
    and ``numberOfSamples`` into a ``MetricsQuery``. With ``source`` (what serves the request)
    and ``answers`` (the types it has a source for), other types are a 400 naming it."""

    async def read(
        request: Request,
        state: State,
        metricType: types_param,
        start: StartParam,
        end: EndParam,
        numberOfSamples: SamplesParam = None,
    ) -> MetricsQuery:
        types = parse_metric_types(metricType, enum, what)
        if source is not None and answers is not None:
            serving = source(request)
            refuse_unanswerable(types, answers(serving), serving.name)
        window = parse_window(start, end, numberOfSamples, state.settings.metrics_max_range_days)
        return MetricsQuery(types, window)

    return Annotated[MetricsQuery, Depends(read)]
