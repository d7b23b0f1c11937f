"""With Prometheus as the metrics backend, the usage ledger's utilisation comes from PromQL.

The generated exporter data (tests/support/prometheus.py) gives every GPU a known utilisation,
so each hour's used and idle GPU-hours are worked out by hand.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gpufleet.api.app import create_app
from gpufleet.metrics.backend import IdleRule
from gpufleet.metrics.prometheus import PrometheusBackend
from gpufleet.metrics.usage_tasks import pull_utilisation
from gpufleet.store.usage_ledger import HeldState, Observation, record_observations
from gpufleet.store.usage_rollups import HOUR_MS, hour_of
from gpufleet.store.usage_utilisation import gpu_holders
from tests.support import prometheus as data
from tests.support.factories import CLUSTER_ID
from tests.support.prometheus_app import client_for, iso, prometheus_settings, seed_workloads

pytest_plugins = ["tests.support.prometheus_fixtures"]
HOURS = 3


def _hold(engine, workload_id: str, project: str, gpus: float, start_s: int) -> None:
    state = HeldState(CLUSTER_ID, "d", project, "ann", "Training", "default", gpu=gpus)
    released = state.released()
    with engine.begin() as conn:
        record_observations(
            conn,
            [
                Observation(workload_id, start_s * 1000, state),
                Observation(workload_id, (start_s + HOURS * 3600) * 1000, released),
            ],
        )


def test_used_and_idle_hours_come_from_prometheus(database_url, prom, t0):
    settings = prometheus_settings(database_url, prom.url)
    with client_for(create_app(settings)) as client:
        engine = client.app.state.gpufleet.engine
        backend = client.app.state.metrics_backend
        assert isinstance(backend, PrometheusBackend)
        ids = seed_workloads(engine)
        for name in ("train", "llm", "idle"):
            workload = next(w for w in data.WORKLOADS if w.name == name)
            _hold(engine, ids[name], name, workload.allocated_gpus, t0)
        rule = IdleRule(threshold_percent=1.0, window_seconds=300)
        end = datetime.fromtimestamp(t0 + HOURS * 3600, tz=UTC)
        written = pull_utilisation(engine, backend, rule, "replica", end, 60_000, HOURS)
        assert written == 3 * HOURS
        window = {"start": iso(t0), "end": iso(t0 + HOURS * 3600), "groupBy": "project"}
        values = client.get("/api/v1/usage", params=window).json()["values"]
    figures = {v["groups"][0]["value"]: v for v in values}
    # llm: one GPU at 70 %, never idle.
    assert figures["llm"]["allocatedGpuHours"] == pytest.approx(3.0)
    assert figures["llm"]["usedGpuHours"] == pytest.approx(3 * 0.7)
    assert figures["llm"]["idleGpuHours"] == pytest.approx(0.0)
    # idle: one GPU at 0 %, idle throughout.
    assert figures["idle"]["usedGpuHours"] == pytest.approx(0.0)
    assert figures["idle"]["idleGpuHours"] == pytest.approx(3.0)
    # train: four GPUs at 80 (40 from the third hour), 60, 20 and 0 % (the last one idle; its
    # sentinel reading is no reading): means 40, 40, 30 %, a quarter idle each hour.
    assert figures["train"]["allocatedGpuHours"] == pytest.approx(12.0)
    assert figures["train"]["usedGpuHours"] == pytest.approx(4 * (0.4 + 0.4 + 0.3))
    assert figures["train"]["idleGpuHours"] == pytest.approx(12 * 0.25)


def test_gpu_holders_are_read_a_page_at_a_time(engine, t0):
    # The pull holds one page of holders at a time, however many workloads held GPUs.
    ids = seed_workloads(engine)
    for name in ("train", "llm", "idle"):
        _hold(engine, ids[name], name, 1.0, t0)
    hour = hour_of(t0 * 1000) + HOUR_MS
    with engine.connect() as conn:
        everything, last = gpu_holders(conn, hour)
        pages, after = [], ""
        while after is not None:
            page, after = gpu_holders(conn, hour, after, limit=1)
            pages.append(page)
    assert last is not None
    assert [len(page) for page in pages] == [1, 1, 1, 0]
    assert [target for page in pages for target in page] == everything
    assert {target.id for target in everything} == {ids["train"], ids["llm"], ids["idle"]}
