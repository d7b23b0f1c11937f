"""Workload metrics: sampling, aggregation against hand-computed values, 207 and 400 paths."""

from __future__ import annotations

import csv
import io
import itertools
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from gpufleet.api.app import create_app
from gpufleet.core.times import to_ms
from gpufleet.metrics.backend import MetricFailure, MetricResult
from gpufleet.metrics.types import WorkloadMetricType
from gpufleet.store.metric_samples import write_samples
from tests.support.access import bearer, token_for
from tests.support.factories import insert, workload
from tests.support.static_metrics import StaticMetricsBackend

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
HOUR = {"start": "2024-05-01T12:00:00Z", "end": "2024-05-01T13:00:00Z"}
MINUTE_MS = 60_000


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@pytest.fixture
def workload_id(engine) -> str:
    return insert(engine, [workload()])[0]["id"]


def _write(engine, workload_id, metric_type, values, series="", start=T0, every=MINUTE_MS):
    """One sample per ``every`` ms from ``start``; a None value leaves a gap."""
    rows = [
        {
            "workload_id": workload_id,
            "metric_type": metric_type,
            "series": series,
            "ts_ms": to_ms(start) + i * every,
            "value": value,
        }
        for i, value in enumerate(values)
        if value is not None
    ]
    with engine.begin() as conn:
        write_samples(conn, rows)


def _get(client, workload_id, types, status=200, **params):
    query = {**HOUR, "metricType": types, **params}
    response = client.get(f"/api/v1/workloads/{workload_id}/metrics", params=query)
    assert response.status_code == status, response.text
    return response.json()


def _points(measurement) -> list[tuple[str, str]]:
    return [(v["timestamp"], v["value"]) for v in measurement["values"]]


def test_gauge_is_the_mean_of_each_interval(client, engine, workload_id):
    _write(engine, workload_id, "CPU_USAGE_CORES", list(range(60)))
    body = _get(client, workload_id, "CPU_USAGE_CORES", numberOfSamples=6)
    (measurement,) = body["measurements"]
    assert measurement["type"] == "CPU_USAGE_CORES"
    assert measurement["labels"] is None
    # Minutes 0-9 average 4.5, 10-19 average 14.5, ...; each stamped where its interval ends.
    assert _points(measurement) == [
        (_stamp(T0 + timedelta(minutes=10 * (i + 1))), f"{10 * i + 4.5}") for i in range(6)
    ]
    assert body["histogram"] == []


def test_exactly_n_evenly_spaced_points(client, engine, workload_id):
    _write(engine, workload_id, "POD_COUNT", [2] * 60)
    for count in (1, 7, 20, 60):
        body = _get(client, workload_id, "POD_COUNT", numberOfSamples=count)
        stamps = [
            datetime.fromisoformat(v["timestamp"].replace("Z", "+00:00"))
            for v in body["measurements"][0]["values"]
        ]
        assert len(stamps) == count
        step = 3_600_000 / count
        # Each point at the end of its interval: the first a step in, the last at the end.
        assert abs((stamps[0] - T0).total_seconds() * 1000 - step) <= 1
        gaps = {round((b - a).total_seconds() * 1000) for a, b in itertools.pairwise(stamps)}
        assert all(abs(gap - step) <= 1 for gap in gaps)
        assert stamps[-1] == T0 + timedelta(hours=1)


def test_zero_samples_means_the_default_twenty(client, engine, workload_id):
    _write(engine, workload_id, "POD_COUNT", [1] * 60)
    for params in ({"numberOfSamples": 0}, {}):
        body = _get(client, workload_id, "POD_COUNT", **params)
        assert len(body["measurements"][0]["values"]) == 20


def test_per_gpu_series_carry_their_gpu_label(client, engine, workload_id):
    _write(engine, workload_id, "GPU_UTILIZATION", [10] * 60, series="gpu=1")
    _write(engine, workload_id, "GPU_UTILIZATION", [90] * 60, series="gpu=0")
    _write(engine, workload_id, "GPU_UTILIZATION", [50] * 60, series="gpu=10")
    body = _get(client, workload_id, "GPU_UTILIZATION", numberOfSamples=2)
    assert [(m["labels"], m["values"][0]["value"]) for m in body["measurements"]] == [
        ({"gpu": "0"}, "90"),
        ({"gpu": "1"}, "10"),
        ({"gpu": "10"}, "50"),
    ]


def test_intervals_without_samples_have_no_point(client, engine, workload_id):
    _write(engine, workload_id, "CPU_MEMORY_USAGE_BYTES", [1e9] * 30 + [None] * 30)
    body = _get(client, workload_id, "CPU_MEMORY_USAGE_BYTES,GPU_ALLOCATION", numberOfSamples=6)
    memory, allocation = body["measurements"]
    assert [v["value"] for v in memory["values"]] == ["1000000000"] * 3
    assert allocation == {"type": "GPU_ALLOCATION", "labels": None, "values": []}


def test_samples_outside_the_range_are_ignored(client, engine, workload_id):
    _write(engine, workload_id, "CPU_LIMIT_CORES", [100, 100], start=T0 - timedelta(minutes=2))
    _write(engine, workload_id, "CPU_LIMIT_CORES", [4] * 60)
    _write(engine, workload_id, "CPU_LIMIT_CORES", [100], start=T0 + timedelta(hours=1))
    body = _get(client, workload_id, "CPU_LIMIT_CORES", numberOfSamples=3)
    assert [v["value"] for v in body["measurements"][0]["values"]] == ["4", "4", "4"]


def test_a_counter_counts_its_increase_across_restarts(client, engine, workload_id):
    # Every 10 minutes from 11:50: a running total that restarts at 12:30.
    totals = [100, 110, 130, 160, 5, 25, 30]
    _write(
        engine,
        workload_id,
        "NIM_REQUEST_SUCCESS_TOTAL",
        totals,
        start=T0 - timedelta(minutes=10),
        every=10 * MINUTE_MS,
    )
    body = _get(client, workload_id, "NIM_REQUEST_SUCCESS_TOTAL", numberOfSamples=3)
    # [12:00,12:20): 10 + 20; [12:20,12:40): 30 + 5 (restart); [12:40,13:00): 20 + 5.
    assert [v["value"] for v in body["measurements"][0]["values"]] == ["30", "35", "25"]


def test_a_counter_reads_at_its_rate_whatever_the_intervals_hold(client, engine, workload_id):
    # Two requests a second, sampled every 10 minutes from 11:50; 12-minute intervals hold one
    # sample or two, so the bare increase would alternate between 1,200 and 2,400.
    _write(
        engine,
        workload_id,
        "NIM_REQUEST_SUCCESS_TOTAL",
        [2 * 600 * i for i in range(8)],
        start=T0 - timedelta(minutes=10),
        every=10 * MINUTE_MS,
    )
    body = _get(client, workload_id, "NIM_REQUEST_SUCCESS_TOTAL", numberOfSamples=5)
    values = body["measurements"][0]["values"]
    # 12:00 to 13:00 in 12 minutes (each stamped at its end): every one 2 a second times 720 s.
    assert [v["timestamp"][11:16] for v in values] == ["12:12", "12:24", "12:36", "12:48", "13:00"]
    assert [v["value"] for v in values] == ["1440"] * 5


def test_a_counter_interval_without_an_earlier_sample_has_no_point(client, engine, workload_id):
    # The first sample is at 12:07 (nothing before it); the next ones every 10 minutes.
    _write(
        engine,
        workload_id,
        "NIM_REQUEST_SUCCESS_TOTAL",
        [500, 1100, 1700],
        start=T0 + timedelta(minutes=7),
        every=10 * MINUTE_MS,
    )
    body = _get(client, workload_id, "NIM_REQUEST_SUCCESS_TOTAL", numberOfSamples=6)
    values = body["measurements"][0]["values"]
    # [12:00,12:10) holds only the first sample: no rate, no point (not a false 0).
    # [12:10,12:20) holds 12:17 (600 in 10 minutes), [12:20,12:30) holds 12:27.
    assert [(v["timestamp"][11:16], v["value"]) for v in values] == [
        ("12:20", "600"),
        ("12:30", "600"),
    ]


def test_a_counter_as_large_as_ingest_takes_reads_without_overflowing(client, engine, workload_id):
    # Restarts from 1e300 every other second: 200 increases of 1e300 in 399 s, whose rate
    # times the hour is 1.8e303, though the increase times the step is beyond a double.
    _write(engine, workload_id, "NIM_REQUEST_SUCCESS_TOTAL", [0.0, 1e300] * 200, every=1000)
    body = _get(client, workload_id, "NIM_REQUEST_SUCCESS_TOTAL", numberOfSamples=1)
    (value,) = body["measurements"][0]["values"]
    assert float(value["value"]) == pytest.approx(200 * 1e300 / 399 * 3600)


def test_a_counter_rate_no_double_holds_has_no_point(client, engine, workload_id):
    # 1e300 in a millisecond, over a 3-day interval: about 2.6e308, beyond a double.
    _write(engine, workload_id, "NIM_REQUEST_SUCCESS_TOTAL", [0.0, 1e300], every=1)
    days = {"start": "2024-05-01T00:00:00Z", "end": "2024-05-04T00:00:00Z"}
    body = _get(client, workload_id, "NIM_REQUEST_SUCCESS_TOTAL", numberOfSamples=1, **days)
    assert body["measurements"][0]["values"] == []


def _histogram(engine, workload_id, buckets_per_minute: dict[str, list[float]]) -> None:
    for le, totals in buckets_per_minute.items():
        _write(engine, workload_id, "NIM_TIME_TO_FIRST_TOKEN_SECONDS", totals, series=f"le={le}")


def test_histogram_counts_are_cumulative_increases_per_interval(client, engine, workload_id):
    # Running totals at 12:00, 12:30 and 12:59 (every 29.5 minutes is not needed: use 30s steps).
    _histogram(
        engine,
        workload_id,
        {
            "0.1": [0, 40, 60],
            "1.0": [0, 80, 150],
            "2.0": [0, 95, 190],
            "+Inf": [0, 100, 200],
        },
    )
    body = _get(client, workload_id, "NIM_TIME_TO_FIRST_TOKEN_SECONDS", numberOfSamples=60)
    (series,) = body["histogram"]
    assert series["type"] == "NIM_TIME_TO_FIRST_TOKEN_SECONDS"
    # Each minute's increase stamped where the minute ends.
    assert series["values"] == [
        {
            "timestamp": _stamp(T0 + timedelta(minutes=1)),
            "data": {"0.1": "0", "1.0": "0", "2.0": "0", "+Inf": "0"},
        },
        {
            "timestamp": _stamp(T0 + timedelta(minutes=2)),
            "data": {"0.1": "40", "1.0": "80", "2.0": "95", "+Inf": "100"},
        },
        {
            "timestamp": _stamp(T0 + timedelta(minutes=3)),
            "data": {"0.1": "20", "1.0": "70", "2.0": "95", "+Inf": "100"},
        },
    ]
    assert body["measurements"] == []


def test_percentiles_interpolate_within_buckets(client, engine, workload_id):
    _histogram(
        engine,
        workload_id,
        {"0.1": [0, 40, 60], "1.0": [0, 80, 150], "2.0": [0, 95, 190], "+Inf": [0, 100, 200]},
    )
    body = _get(
        client,
        workload_id,
        "NIM_TIME_TO_FIRST_TOKEN_SECONDS_PERCENTILES",
        numberOfSamples=60,
    )
    (series,) = body["histogram"]
    # The minute from 12:00 holds no observations, so it has no point; the next ends 12:02.
    first, second = series["values"]
    assert first["timestamp"] == _stamp(T0 + timedelta(minutes=2))
    # Of 100: p50 (rank 50) lies 10/40 into (0.1, 1.0]; p90 (rank 90) 10/15 into (1.0, 2.0];
    # p99 is in +Inf, which reports the highest finite bound.
    assert first["data"] == {"p50": "0.325", "p90": "1.666667", "p99": "2"}
    # Of 100: 20 up to 0.1, 70 up to 1.0, 95 up to 2.0.
    # p50: 0.1 + 0.9 * 30/50 = 0.64; p90: 1 + 20/25 = 1.8; p99: +Inf -> 2.
    assert second["data"] == {"p50": "0.64", "p90": "1.8", "p99": "2"}


def test_a_failed_type_makes_a_207_and_the_rest_still_answer(client, engine, workload_id):
    # Buckets without +Inf cannot give percentiles; the other types are unaffected.
    _histogram(engine, workload_id, {"0.1": [0, 5], "1.0": [0, 9]})
    _write(engine, workload_id, "RUNNING_POD_COUNT", [1] * 60)
    response = client.get(
        f"/api/v1/workloads/{workload_id}/metrics",
        params={
            **HOUR,
            "metricType": "RUNNING_POD_COUNT,NIM_TIME_TO_FIRST_TOKEN_SECONDS_PERCENTILES,"
            "NIM_TIME_TO_FIRST_TOKEN_SECONDS",
            "numberOfSamples": 2,
        },
        headers={"Accept": "text/csv"},
    )
    assert response.status_code == 207
    assert response.headers["content-type"] == "application/json"
    assert (
        "NIM_TIME_TO_FIRST_TOKEN_SECONDS_PERCENTILES"
        in response.headers["x-gpufleet-metric-failures"]
    )
    body = response.json()
    assert body["measurements"] == [
        {
            "type": "RUNNING_POD_COUNT",
            "labels": None,
            "values": [
                {"value": "1", "timestamp": _stamp(T0 + timedelta(minutes=30))},
                {"value": "1", "timestamp": _stamp(T0 + timedelta(minutes=60))},
            ],
        },
        {"type": "NIM_TIME_TO_FIRST_TOKEN_SECONDS_PERCENTILES", "labels": None, "values": None},
    ]
    assert body["histogram"][0]["type"] == "NIM_TIME_TO_FIRST_TOKEN_SECONDS"


@pytest.fixture
def static_client(settings):
    """An app whose backend fails GPU utilisation as unreachable and answers CPU usage."""
    unreachable = MetricFailure("connection refused", unreachable=True)
    backend = StaticMetricsBackend(
        results={
            WorkloadMetricType.GPU_UTILIZATION: MetricResult(
                WorkloadMetricType.GPU_UTILIZATION, failure=unreachable
            ),
            WorkloadMetricType.GPU_MEMORY_USAGE_BYTES: MetricResult(
                WorkloadMetricType.GPU_MEMORY_USAGE_BYTES, failure=unreachable
            ),
        }
    )
    app = create_app(settings, metrics_backend=backend)
    with TestClient(app, raise_server_exceptions=False) as client:
        secret = settings.admin_client_secret.get_secret_value()
        client.headers.update(bearer(token_for(client, settings.admin_client_id, secret)))
        yield client, app.state.gpufleet.engine
    app.state.gpufleet.engine.dispose()


def test_unreachable_backend_for_every_type_is_503(static_client):
    client, engine = static_client
    workload_id = insert(engine, [workload()])[0]["id"]
    body = _get(client, workload_id, "GPU_UTILIZATION,CPU_USAGE_CORES", status=207)
    assert body["measurements"][0]["values"] is None
    assert body["measurements"][1]["values"] == []
    failed = _get(client, workload_id, "GPU_UTILIZATION,GPU_MEMORY_USAGE_BYTES", status=503)
    assert failed["code"] == 503


def test_csv_lists_every_point(client, engine, workload_id):
    _write(engine, workload_id, "GPU_UTILIZATION", [20] * 60, series="gpu=0")
    _histogram(engine, workload_id, {"0.5": [0, 3], "+Inf": [0, 4]})
    response = client.get(
        f"/api/v1/workloads/{workload_id}/metrics",
        params={
            **HOUR,
            "metricType": "GPU_UTILIZATION,NIM_TIME_TO_FIRST_TOKEN_SECONDS",
            "numberOfSamples": 4,
        },
        headers={"Accept": "text/csv"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    utilisation = [r for r in rows if r["type"] == "GPU_UTILIZATION"]
    assert [(r["series"], r["value"]) for r in utilisation] == [("gpu=0", "20")] * 4
    buckets = [(r["series"], r["value"]) for r in rows if r["type"].startswith("NIM")]
    assert buckets == [("0.5", "3"), ("+Inf", "4")]


def test_repeated_and_duplicate_metric_types(client, engine, workload_id):
    _write(engine, workload_id, "POD_COUNT", [3] * 60)
    response = client.get(
        f"/api/v1/workloads/{workload_id}/metrics",
        params=[
            *HOUR.items(),
            ("metricType", "POD_COUNT"),
            ("metricType", "POD_COUNT,CPU_USAGE_CORES"),
        ],
    )
    assert response.status_code == 200
    assert [m["type"] for m in response.json()["measurements"]] == ["POD_COUNT", "CPU_USAGE_CORES"]


def test_every_gauge_type_is_read_by_one_statement(client, engine, workload_id):
    _write(engine, workload_id, "CPU_USAGE_CORES", list(range(60)))
    _write(engine, workload_id, "POD_COUNT", [3] * 60)
    _write(engine, workload_id, "GPU_UTILIZATION", [90] * 60, series="gpu=0")
    _write(engine, workload_id, "NIM_REQUEST_SUCCESS_TOTAL", [10 * i for i in range(60)])
    statements: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        types = "POD_COUNT,NIM_REQUEST_SUCCESS_TOTAL,GPU_UTILIZATION,CPU_USAGE_CORES"
        body = _get(client, workload_id, types, numberOfSamples=6)
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    samples = [s for s in statements if "FROM metric_samples" in s]
    assert len(samples) == 2  # the three gauges together, the counter alone
    # The counter rose 90 in the 9 minutes its first interval's samples span: 10 a minute.
    assert [(m["type"], m["values"][0]["value"]) for m in body["measurements"]] == [
        ("POD_COUNT", "3"),
        ("NIM_REQUEST_SUCCESS_TOTAL", "100"),
        ("GPU_UTILIZATION", "90"),
        ("CPU_USAGE_CORES", "4.5"),
    ]


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"metricType": "GPU_UTILISATION"}, "metricType"),
        ({"metricType": ","}, "metricType"),
        ({"metricType": "GPU_UTILIZATION;DROP TABLE workloads"}, "metricType"),
        ({"start": "yesterday"}, "start"),
        ({"end": "2024-13-01T00:00:00Z"}, "end"),
        ({"end": HOUR["start"]}, "end"),
        ({"start": HOUR["end"], "end": HOUR["start"]}, "end"),
        ({"start": "2024-03-01T00:00:00Z"}, "end"),
        ({"numberOfSamples": -1}, "numberOfSamples"),
        ({"numberOfSamples": 1001}, "numberOfSamples"),
        ({"numberOfSamples": "ten"}, "numberOfSamples"),
        ({"numberOfSamples": 99999999999999999999}, "numberOfSamples"),
        ({"end": "2024-05-01T12:00:10Z", "numberOfSamples": 20}, "numberOfSamples"),
    ],
)
def test_bad_parameters_are_400_naming_them(client, workload_id, params, named):
    query = {**HOUR, "metricType": "GPU_UTILIZATION", **params}
    response = client.get(f"/api/v1/workloads/{workload_id}/metrics", params=query)
    assert response.status_code == 400, response.text
    assert f"'{named}'" in response.json()["message"]


def test_missing_required_parameters_are_400(client, workload_id):
    for missing in ("metricType", "start", "end"):
        query = {**HOUR, "metricType": "GPU_UTILIZATION"}
        del query[missing]
        response = client.get(f"/api/v1/workloads/{workload_id}/metrics", params=query)
        assert response.status_code == 400
        assert missing in response.json()["message"]


def test_unknown_workload_is_404_and_a_bad_id_400(client):
    query = {**HOUR, "metricType": "GPU_UTILIZATION"}
    missing = client.get(
        "/api/v1/workloads/7f0c2f3e-8a2b-4d5e-9f10-111213141516/metrics", params=query
    )
    assert missing.status_code == 404
    assert client.get("/api/v1/workloads/not-a-uuid/metrics", params=query).status_code == 400


def test_the_longest_range_is_a_setting(settings, engine):
    settings = settings.model_copy(update={"metrics_max_range_days": 1})
    app = create_app(settings)
    with TestClient(app, raise_server_exceptions=False) as client:
        secret = settings.admin_client_secret.get_secret_value()
        client.headers.update(bearer(token_for(client, settings.admin_client_id, secret)))
        workload_id = insert(engine, [workload()])[0]["id"]
        ok = {"start": "2024-05-01T00:00:00Z", "end": "2024-05-02T00:00:00Z"}
        too_long = {"start": "2024-05-01T00:00:00Z", "end": "2024-05-02T00:00:01Z"}
        url = f"/api/v1/workloads/{workload_id}/metrics"
        assert client.get(url, params={**ok, "metricType": "POD_COUNT"}).status_code == 200
        response = client.get(url, params={**too_long, "metricType": "POD_COUNT"})
        assert response.status_code == 400
        assert "1 days" in response.json()["message"]
    app.state.gpufleet.engine.dispose()
