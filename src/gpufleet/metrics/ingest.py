"""Validating pushed metric samples into stored rows; the first bad sample rejects the batch.

Counters and histogram buckets are pushed as the producer reads them (running totals, as a
Prometheus exporter exposes them); the read side turns them into per-interval increases.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from gpufleet.core.times import to_ms
from gpufleet.metrics.types import (
    METRIC_TYPES,
    POD_METRIC_TYPES,
    MetricKind,
    MetricTypeInfo,
    PodMetricType,
    WorkloadMetricType,
    format_le,
    parse_le,
)
from gpufleet.query.errors import QueryError
from gpufleet.query.filters import parse_timestamp
from gpufleet.schemas.metrics import IngestSample

# Producers' clocks drift; a sample this far ahead of the server's clock is refused.
MAX_CLOCK_SKEW = timedelta(minutes=5)
_GPU_INDEX = re.compile(r"^[0-9]{1,4}$")


class SampleError(ValueError):
    """A sample that cannot be stored, with its position in the batch and the field at fault."""

    def __init__(self, index: int, field: str, message: str) -> None:
        super().__init__(message)
        self.index = index
        self.field = field
        self.message = message

    def __str__(self) -> str:
        return f"Invalid request body field 'samples.{self.index}.{self.field}': {self.message}"


@dataclass(frozen=True, slots=True)
class SampleRow:
    workload_id: str
    metric_type: str
    series: str
    ts_ms: int
    value: float
    # Set for a sample of one pod of the workload.
    pod_id: str | None = None

    def as_row(self) -> dict[str, object]:
        row: dict[str, object] = {
            "workload_id": self.workload_id,
            "metric_type": self.metric_type,
            "series": self.series,
            "ts_ms": self.ts_ms,
            "value": self.value,
        }
        if self.pod_id is not None:
            row["pod_id"] = self.pod_id
        return row


def _series(index: int, kind: MetricKind, labels: dict[str, str] | None) -> str:
    labels = labels or {}
    if kind is MetricKind.HISTOGRAM:
        if set(labels) != {"le"}:
            raise SampleError(index, "labels", 'a histogram sample needs exactly {"le": "<bound>"}')
        try:
            return f"le={format_le(parse_le(labels['le']))}"
        except ValueError:
            raise SampleError(
                index, "labels", f"le {labels['le'][:32]!r} is not a number"
            ) from None
    if not labels:
        return ""
    if kind is MetricKind.PER_GPU and set(labels) == {"gpu"}:
        if not _GPU_INDEX.match(labels["gpu"]):
            raise SampleError(index, "labels", "gpu must be a GPU index (0-9999)")
        return f"gpu={int(labels['gpu'])}"
    allowed = '{"gpu": "<index>"} or none' if kind is MetricKind.PER_GPU else "none"
    raise SampleError(index, "labels", f"labels {sorted(labels)} not allowed; use {allowed}")


def _uuid(index: int, field: str, value: str) -> str:
    try:
        return str(UUID(value))
    except ValueError:
        raise SampleError(index, field, f"{value[:64]!r} is not a UUID") from None


def _type_info(index: int, sample: IngestSample) -> MetricTypeInfo:
    """A pod sample's type is a pod metric type, any other a workload metric type."""
    try:
        if sample.podId is not None:
            return POD_METRIC_TYPES[PodMetricType(sample.type)]
        return METRIC_TYPES[WorkloadMetricType(sample.type)]
    except ValueError:
        what = "pod metric type" if sample.podId is not None else "metric type"
        raise SampleError(index, "type", f"{sample.type[:64]!r} is not a {what}") from None


# No metric is below zero; a percentage is at most 100 (DCGM's fields, and the idle-GPU rule and
# the ledger's used GPU-hours read them so), anything else at most LARGEST_SAMPLE: far above any
# real figure, far below where sums over a fleet's samples lose their meaning.
LARGEST_SAMPLE = 1e24
_LARGEST_BY_UNIT = {"percent": 100.0}


def _value_problem(info: MetricTypeInfo, value: float) -> str | None:
    if value < 0:
        if info.kind in (MetricKind.COUNTER, MetricKind.HISTOGRAM):
            return "a counter cannot be negative"
        return f"a {info.unit} figure cannot be negative"
    largest = _LARGEST_BY_UNIT.get(info.unit, LARGEST_SAMPLE)
    if value > largest:
        return f"is out of range (at most {largest:g} {info.unit})"
    return None


def validate_sample(index: int, sample: IngestSample, now: datetime, oldest: datetime) -> SampleRow:
    workload_id = _uuid(index, "workloadId", sample.workloadId)
    pod_id = None if sample.podId is None else _uuid(index, "podId", sample.podId)
    info = _type_info(index, sample)
    if not info.ingestible:
        raise SampleError(index, "type", f"{sample.type} is computed from {info.source}")
    try:
        moment = parse_timestamp(sample.timestamp, parameter="timestamp")
    except QueryError as exc:
        raise SampleError(index, "timestamp", exc.message) from None
    if moment > now + MAX_CLOCK_SKEW:
        raise SampleError(index, "timestamp", "is in the future")
    if moment < oldest:
        raise SampleError(index, "timestamp", "is older than the metrics retention")
    if problem := _value_problem(info, sample.value):
        raise SampleError(index, "value", problem)
    series = _series(index, info.kind, sample.labels)
    return SampleRow(
        workload_id, info.type.value, series, to_ms(moment), float(sample.value), pod_id
    )


def validate_samples(
    samples: Sequence[IngestSample], now: datetime, retention_days: int
) -> list[SampleRow]:
    """Every sample as a row, or a ``SampleError`` for the first that cannot be stored.

    Of several samples for the same series and millisecond, the last one wins.
    """
    oldest = now - timedelta(days=retention_days)
    rows: dict[tuple[str, str | None, str, str, int], SampleRow] = {}
    for index, sample in enumerate(samples):
        row = validate_sample(index, sample, now, oldest)
        rows[(row.workload_id, row.pod_id, row.metric_type, row.series, row.ts_ms)] = row
    return list(rows.values())


def first_index_of(
    samples: Sequence[IngestSample], workload_ids: set[str], pod_ids: set[str] = frozenset()
) -> int:
    """Position of the first sample naming one of ``workload_ids`` or of ``pod_ids``."""
    for index, sample in enumerate(samples):
        if str(UUID(sample.workloadId)) in workload_ids:
            return index
        if sample.podId is not None and str(UUID(sample.podId)) in pod_ids:
            return index
    raise LookupError("no sample names those workloads or pods")


def utilisation_spans(rows: Sequence[SampleRow]) -> dict[str, tuple[int, int]]:
    """``{workload_id: (first_ts, last_ts)}`` of the GPU utilisation samples among ``rows``:
    the hours the usage ledger must measure again."""
    spans: dict[str, tuple[int, int]] = {}
    for row in rows:
        # A pod's samples share the type's name but are not the workload's.
        if row.pod_id is not None or row.metric_type != WorkloadMetricType.GPU_UTILIZATION.value:
            continue
        first, last = spans.get(row.workload_id, (row.ts_ms, row.ts_ms))
        spans[row.workload_id] = (min(first, row.ts_ms), max(last, row.ts_ms))
    return spans
