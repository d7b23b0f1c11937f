"""The metrics answer written as JSON text from its columns: the bytes ``orjson`` writes for
the answer's objects (``metrics_body``), whatever the results hold."""

from __future__ import annotations

import orjson
import pytest

from gpufleet.api.routes.metrics import metrics_body, metrics_json
from gpufleet.metrics.backend import HistogramPoint, Measurement, MetricFailure, MetricResult
from gpufleet.metrics.types import WorkloadMetricType as M

T0 = 1_714_564_800_000  # 2024-05-01T12:00:00Z
STEP = 60_000


def _stamps(count: int, first: int = T0) -> list[int]:
    return [first + i * STEP for i in range(count)]


def _objects(results: list[MetricResult], *, histogram: bool = True) -> bytes:
    body = metrics_body(results)
    if not histogram:
        del body["histogram"]
    return orjson.dumps(body)


RESULTS = {
    "series sharing their timestamps": [
        MetricResult(
            M.GPU_UTILIZATION,
            measurements=(
                Measurement({"gpu": "0"}, _stamps(3), ["1", "2.5", "-0.000001"]),
                Measurement({"gpu": "1"}, _stamps(3), ["0", "100", "12345678901"]),
            ),
        ),
        MetricResult(M.CPU_USAGE_CORES, measurements=(Measurement(None, _stamps(3), ["1"] * 3),)),
    ],
    "series of their own timestamps, a gap among them": [
        MetricResult(
            M.GPU_UTILIZATION,
            measurements=(
                Measurement({"gpu": "0"}, _stamps(4), ["1", "2", "3", "4"]),
                Measurement({"gpu": "1"}, [T0, T0 + 2 * STEP], ["5", "6"]),
                Measurement({"gpu": "2"}, _stamps(4), ["7", "8", "9", "10"]),
            ),
        ),
    ],
    "one point, an empty series, empty labels": [
        MetricResult(M.CPU_USAGE_CORES, measurements=(Measurement(None, [T0], ["0.5"]),)),
        MetricResult(M.GPU_UTILIZATION, measurements=(Measurement({}, [], []),)),
    ],
    "failed, empty and partial types": [
        MetricResult(M.GPU_UTILIZATION, failure=MetricFailure("down", unreachable=True)),
        MetricResult(M.CPU_USAGE_CORES),
        MetricResult(
            M.CPU_MEMORY_USAGE_BYTES,
            measurements=(Measurement(None, _stamps(2), ["1", "2"]),),
            warnings=("partial response",),
        ),
    ],
    "histograms and percentiles": [
        MetricResult(
            M.NIM_TIME_TO_FIRST_TOKEN_SECONDS,
            histogram=(
                HistogramPoint(T0, {"0.1": "1", "+Inf": "3"}),
                HistogramPoint(T0 + STEP, {"0.1": "2", "+Inf": "4"}),
            ),
        ),
        MetricResult(
            M.NIM_TIME_TO_FIRST_TOKEN_SECONDS_PERCENTILES,
            histogram=(HistogramPoint(T0, {"p50": "0.1", 'odd "quantile"\n': "0.2"}),),
        ),
        MetricResult(M.NIM_E2E_REQUEST_LATENCY_SECONDS_PERCENTILES),
        MetricResult(M.NIM_REQUEST_SUCCESS_TOTAL, measurements=(Measurement(None, [T0], ["7"]),)),
    ],
    "labels and values that JSON must escape": [
        MetricResult(
            M.GPU_UTILIZATION,
            measurements=(
                Measurement({'g"p\\u': "é\t0"}, _stamps(2), ["1", 'not "a" number\\\x01']),
                Measurement({"gpu": "1"}, _stamps(2), ["1", "2"]),
            ),
        ),
    ],
    "nothing": [],
}


@pytest.mark.parametrize("histogram", [True, False])
@pytest.mark.parametrize("case", list(RESULTS))
def test_the_same_bytes_as_the_objects(case: str, histogram: bool) -> None:
    results = RESULTS[case]
    assert metrics_json(results, histogram=histogram) == _objects(results, histogram=histogram)


def test_a_thousand_points_per_series() -> None:
    stamps = _stamps(1000)
    results = [
        MetricResult(
            M.GPU_UTILIZATION,
            measurements=tuple(
                Measurement({"gpu": str(gpu)}, list(stamps), [f"{i / 7:.6f}" for i in range(1000)])
                for gpu in range(4)
            ),
        )
    ]
    assert metrics_json(results) == _objects(results)


def test_columns_of_different_lengths_are_refused() -> None:
    results = [MetricResult(M.CPU_USAGE_CORES, measurements=(Measurement(None, [T0], []),))]
    with pytest.raises(ValueError, match="differ in length"):
        metrics_json(results)
