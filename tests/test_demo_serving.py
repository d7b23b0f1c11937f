"""The demo's services each answer at their own pace: requests a second and latencies differ
from one service to the next, grow slower under load, and wander at night instead of holding
one value; every service's latency buckets add up to its requests served."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest

from gpufleet.demo.metrics_history import LATENCY_BUCKETS
from gpufleet.demo.sim.engine import Simulation
from gpufleet.demo.sim.serving import Service, latency_scale, latency_shares
from gpufleet.metrics.types import WorkloadMetricType as M
from gpufleet.metrics.types import format_le

# A Monday evening into the night: the day's rhythm holds one value from 20:00 to 06:00.
START = datetime(2026, 11, 30, 19, 0, tzinfo=UTC)
TICKS = 2 * 60 * 8
EVERY = 10  # ticks between samples: 5 minutes
TTFT = M.NIM_TIME_TO_FIRST_TOKEN_SECONDS


@pytest.fixture(scope="module")
def evening() -> dict[str, list[tuple[datetime, dict[str, dict[str, float]]]]]:
    """Per service that ran from 20:00 to 02:00: (time, {type: {series: value}}) every 5
    minutes."""
    simulation = Simulation(3, START, warm_up=timedelta(hours=6))
    seen: dict[str, list] = defaultdict(list)
    for tick in range(TICKS):
        step = simulation.step(sample=tick % EVERY == 0, pods=False)
        by_workload: dict[str, dict[str, dict[str, float]]] = defaultdict(lambda: defaultdict(dict))
        for _, sample in step.samples:
            if sample["type"].startswith("NIM_"):
                series = ",".join(f"{k}={v}" for k, v in (sample.get("labels") or {}).items())
                by_workload[sample["workloadId"]][sample["type"]][series] = sample["value"]
        for workload_id, types in by_workload.items():
            seen[workload_id].append((simulation.now, types))
    # The services that served the whole evening and night.
    first, last = START + timedelta(hours=1), START + timedelta(hours=7)
    return {k: v for k, v in seen.items() if v[0][0] <= first and v[-1][0] >= last}


def _rate(points, since: datetime, until: datetime) -> float:
    """Requests a second served between the samples nearest ``since`` and ``until``."""
    inside = [(at, t) for at, t in points if since <= at <= until]
    (first_at, first), (last_at, last) = inside[0], inside[-1]
    served = (
        last[M.NIM_REQUEST_SUCCESS_TOTAL.value][""] - first[M.NIM_REQUEST_SUCCESS_TOTAL.value][""]
    )
    return served / (last_at - first_at).total_seconds()


def _median_ttft(types: dict[str, dict[str, float]], earlier: dict[str, dict[str, float]]):
    """The bound under which half the requests between two samples were answered."""
    now, before = types[TTFT.value], earlier[TTFT.value]
    counts = [(float(key.split("=")[1]), now[key] - before[key]) for key in now]
    total = max(count for _, count in counts)
    return min(bound for bound, count in counts if count >= total / 2)


def test_services_serve_at_paces_of_their_own(evening):
    assert len(evening) >= 6
    night = START.replace(hour=22)
    rates = [_rate(points, night, night + timedelta(hours=2)) for points in evening.values()]
    # No two services answer the same number of requests a second.
    assert len({round(rate) for rate in rates}) >= len(rates) - 1, rates
    assert max(rates) > 2 * min(rates)


def test_a_night_rate_wanders_rather_than_holding_one_value(evening):
    night = START.replace(hour=21)
    for workload_id, points in evening.items():
        rates = [
            _rate(points, night + timedelta(minutes=m), night + timedelta(minutes=m + 15))
            for m in range(0, 120, 15)
        ]
        spread = max(rates) / min(rates) - 1
        # The day's rhythm is flat at night: the service's own drift moves it, gently.
        assert 0.02 < spread < 0.6, (workload_id, rates)
        assert all(abs(b / a - 1) < 0.3 for a, b in pairwise(rates)), (workload_id, rates)


def test_latency_buckets_add_up_to_the_requests_served(evening):
    medians = set()
    for points in evening.values():
        for _, types in points[-4:]:
            served = types[M.NIM_REQUEST_SUCCESS_TOTAL.value][""]
            for metric_type in LATENCY_BUCKETS:
                buckets = types[metric_type.value]
                counts = [buckets[f"le={key}"] for key in _keys(metric_type)]
                assert counts == sorted(counts)
                assert counts[-1] == pytest.approx(served, abs=1)
        medians.add(_median_ttft(points[-1][1], points[-13][1]))
    # Services of different sizes answer their first token at different speeds.
    assert len(medians) >= 2, medians


def _keys(metric_type: M) -> list[str]:
    return [format_le(bound) for bound, _ in LATENCY_BUCKETS[metric_type]]


def test_latency_shares_scale_the_reference_shape():
    reference = tuple(share for _, share in LATENCY_BUCKETS[TTFT])
    assert latency_shares(TTFT, 1.0) == pytest.approx(reference)
    slower, faster = latency_shares(TTFT, 2.0), latency_shares(TTFT, 0.5)
    for bound_index, (bound, _) in enumerate(LATENCY_BUCKETS[TTFT]):
        if math.isinf(bound):
            assert slower[bound_index] == faster[bound_index] == 1.0
        else:
            assert slower[bound_index] <= reference[bound_index] <= faster[bound_index]
    for shares in (slower, faster):
        assert list(shares) == sorted(shares)
    # Twice as slow: a bound holds what half of it held (the reference's 0.05 s: 0.35).
    assert slower[3] == pytest.approx(0.35)


def test_a_congested_service_answers_more_slowly():
    profile = Service(popularity=1.0, per_pod=40.0, latency=1.0, failing=0.001)
    scales = [latency_scale(profile, busy) for busy in (0.2, 0.5, 0.7, 0.85, 1.0)]
    assert scales[:3] == [1.0, 1.0, 1.0]
    assert scales[2] < scales[3] < scales[4]
