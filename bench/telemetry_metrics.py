"""Telemetry over 100,000 workloads and a 7-day metrics query, each beside its SQL floor.

* telemetry: ``WORKLOADS_COUNT`` and ``GPU_ALLOCATION`` grouped by two fields, through the
  in-process API, beside the very ``SELECT … GROUP BY`` the store runs, executed straight
  through the driver;
* metrics: 6 types of one workload over 7 days of one-minute samples, 1,000 points each,
  beside the statements the embedded backend runs (every gauge in one grouped statement, each
  counter alone), straight through the driver, and beside the floor written by hand; the
  three take turns in every round.

Prints the median of each and the ratio to its floor.

    .venv/bin/python -m bench.telemetry_metrics
    .venv/bin/python -m bench.telemetry_metrics --workloads 20000 --postgresql
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.floors import interleaved
from fastapi.testclient import TestClient

from gpufleet.api.app import create_app
from gpufleet.api.routes.metrics import metrics_json
from gpufleet.core.metric_values import SampleWindow, WorkloadTarget
from gpufleet.core.times import to_ms
from gpufleet.metrics.types import METRIC_TYPES, MetricKind, WorkloadMetricType
from gpufleet.query.listing import WorkloadSelection
from gpufleet.settings import Settings
from gpufleet.store.metric_samples import append_samples, increase_statement, means_statement
from gpufleet.store.telemetry import (
    TelemetryGroupBy,
    TelemetryQuery,
    TelemetryType,
    telemetry_statement,
)
from gpufleet.store.workloads import insert_workloads

ADMIN_ID, ADMIN_SECRET = "bench-admin", "bench-admin-secret"
CLUSTERS = [str(uuid.UUID(int=n + 1)) for n in range(3)]
PHASES = ["Running", "Pending", "Completed", "Failed", "Stopped", "Initializing"]
GROUP_BY = (TelemetryGroupBy.DEPARTMENT_ID, TelemetryGroupBy.PHASE)
METRIC_TYPE_NAMES = [
    WorkloadMetricType.GPU_UTILIZATION,
    WorkloadMetricType.GPU_MEMORY_USAGE_BYTES,
    WorkloadMetricType.CPU_USAGE_CORES,
    WorkloadMetricType.CPU_MEMORY_USAGE_BYTES,
    WorkloadMetricType.NIM_REQUEST_SUCCESS_TOTAL,
    WorkloadMetricType.NIM_TIME_TO_FIRST_TOKEN_SECONDS_PERCENTILES,
]
TELEMETRY_TYPES = (TelemetryType.WORKLOADS_COUNT, TelemetryType.GPU_ALLOCATION)
TTFT_BUCKETS = ((0.05, 0.3), (0.1, 0.6), (0.5, 0.9), (1.0, 0.98), (math.inf, 1.0))


def _workload(rng: random.Random, n: int, now: datetime) -> dict:
    created = now - timedelta(minutes=rng.randint(1, 60 * 24 * 30))
    gpus = rng.choice([0.0, 0.5, 1.0, 2.0, 4.0, 8.0])
    department = str(rng.randint(1, 20))
    project = f"{department}-{rng.randint(1, 10)}"
    return {
        "tenantId": 1,
        "runningPods": 1,
        "phaseUpdatedAt": created,
        "k8sPhaseUpdatedAt": created,
        "updatedAt": created,
        "source": "CLI",
        "type": rng.choice(["Training", "Workspace", "Inference"]),
        "name": f"bench-{n}",
        "id": str(uuid.UUID(int=rng.getrandbits(128))),
        "priority": 50,
        "priorityClassName": "train",
        "submittedBy": "bench@example.com",
        "clusterId": rng.choice(CLUSTERS),
        "projectName": f"project-{project}",
        "projectId": project,
        "departmentName": f"department-{department}",
        "departmentId": department,
        "namespace": f"runai-{project}",
        "createdAt": created,
        "workloadRequestedResources": {"gpu": {"request": gpus}},
        "allocatedResources": {"gpu": gpus},
        "phase": rng.choice(PHASES),
        "conditions": [],
        "k8sPhase": "Running",
        "currentNodePools": rng.choice([[], ["default"], ["a100", "h100"]]),
        "category": rng.choice(["Train", "Build", "Deploy"]),
    }


def _history(workload_id: str, start_ms: int, minutes: int, rng: random.Random):
    success = 0.0
    for minute in range(minutes):
        ts = start_ms + minute * 60_000
        for gpu in range(2):
            yield (workload_id, "GPU_UTILIZATION", f"gpu={gpu}", ts, rng.uniform(0, 100))
            yield (workload_id, "GPU_MEMORY_USAGE_BYTES", f"gpu={gpu}", ts, rng.uniform(1e9, 8e10))
        yield (workload_id, "CPU_USAGE_CORES", "", ts, rng.uniform(0, 8))
        yield (workload_id, "CPU_MEMORY_USAGE_BYTES", "", ts, rng.uniform(1e9, 3e10))
        success += rng.randint(0, 500)
        yield (workload_id, "NIM_REQUEST_SUCCESS_TOTAL", "", ts, success)
        for bound, share in TTFT_BUCKETS:
            le = "+Inf" if bound == math.inf else str(bound)
            yield (
                workload_id,
                "NIM_TIME_TO_FIRST_TOKEN_SECONDS",
                f"le={le}",
                ts,
                round(success * share),
            )


def _median_ms(action: Callable[[], object], repeats: int) -> float:
    action()  # warm caches and plans
    timings = []
    for _ in range(repeats):
        began = time.perf_counter()
        action()
        timings.append((time.perf_counter() - began) * 1000)
    return statistics.median(timings)


def _gauges_by_hand(target: str, gauges: list[str], window: SampleWindow) -> str:
    types = ", ".join(f"'{name}'" for name in gauges)
    interval = f"((ts_ms - {window.start_ms}) * {window.count}) / {window.span_ms}"
    return (
        f"SELECT metric_type, series, {interval} AS i, avg(value) FROM metric_samples "
        f"WHERE workload_id = '{target}' AND metric_type IN ({types}) "
        f"AND ts_ms >= {window.start_ms} AND ts_ms < {window.end_ms} "
        f"GROUP BY metric_type, series, i ORDER BY metric_type, series, i"
    )


def _raw(engine, statements, sql: tuple[str, ...] | list[str] = ()):
    """Run compiled statements (and plain SQL) straight through the DB driver."""
    compiled = [
        str(s.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True}))
        for s in statements
    ] + list(sql)

    def run() -> None:
        with engine.raw_connection() as connection:
            cursor = connection.cursor()
            for sql in compiled:
                cursor.execute(sql)
                cursor.fetchall()
            cursor.close()

    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--postgresql", action="store_true", help="use a throwaway PostgreSQL")
    parser.add_argument("--metrics-only", action="store_true", help="skip the telemetry part")
    args = parser.parse_args()
    if args.postgresql:
        from tests.support.postgres import start_postgres

        server = start_postgres()
        try:
            return _run(args, server.create_database("bench"))
        finally:
            server.destroy()
    return _run(args, args.database_url or f"sqlite:///{Path(tempfile.mkdtemp()) / 'bench.db'}")


def _run(args: argparse.Namespace, url: str) -> int:
    print(f"{url.partition(':')[0]}, load average {os.getloadavg()[0]:.1f}")
    settings = Settings(
        database_url=url,
        admin_client_id=ADMIN_ID,
        admin_client_secret=ADMIN_SECRET,
        idle_gpu_interval_seconds=0,
        metrics_retention_interval_seconds=0,
    )
    app = create_app(settings)
    engine = app.state.gpufleet.engine
    rng = random.Random(7)
    now = datetime.now(UTC).replace(second=0, microsecond=0)

    began = time.perf_counter()
    items = [_workload(rng, n, now) for n in range(args.workloads)]
    with engine.begin() as conn:
        for offset in range(0, len(items), 5000):
            insert_workloads(conn, items[offset : offset + 5000])
    target = items[0]["id"]
    minutes = args.days * 24 * 60
    start = now - timedelta(days=args.days)
    with engine.begin() as conn:
        samples = append_samples(conn, _history(target, to_ms(start), minutes, rng))
    print(
        f"loaded {args.workloads} workloads and {samples} samples "
        f"in {time.perf_counter() - began:.1f}s"
    )

    with TestClient(app) as client:
        token = client.post(
            "/api/v1/token",
            json={
                "grantType": "client_credentials",
                "clientID": ADMIN_ID,
                "clientSecret": ADMIN_SECRET,
            },
        ).json()["accessToken"]
        client.headers["Authorization"] = f"Bearer {token}"
        for kind in () if args.metrics_only else TELEMETRY_TYPES:
            params = {"telemetryType": kind.value, "groupBy": ",".join(g.value for g in GROUP_BY)}
            api = _median_ms(
                lambda p=params: client.get("/api/v1/workloads/telemetry", params=p), args.repeats
            )
            query = TelemetryQuery(kind, WorkloadSelection(now=now), GROUP_BY)
            floor = _median_ms(
                _raw(engine, [telemetry_statement(engine.dialect.name, query)]), args.repeats
            )
            print(
                f"telemetry {kind.value:<16} api {api:8.1f} ms  "
                f"floor {floor:8.1f} ms  ratio {api / floor:5.2f}"
            )

        window = SampleWindow.between(start, now, 1000)
        params = {
            "metricType": ",".join(t.value for t in METRIC_TYPE_NAMES),
            "start": start.isoformat(),
            "end": now.isoformat(),
            "numberOfSamples": 1000,
        }
        response = client.get(f"/api/v1/workloads/{target}/metrics", params=params)
        assert response.status_code == 200, response.text
        gauges, counter_statements = [], []
        for metric_type in METRIC_TYPE_NAMES:
            info = METRIC_TYPES[metric_type]
            if info.kind in (MetricKind.GAUGE, MetricKind.PER_GPU):
                gauges.append(info.stored_type.value)
                continue
            at_rate = info.kind is MetricKind.COUNTER
            stored = info.stored_type.value
            counter_statements.append(increase_statement(target, stored, window, at_rate=at_rate))
        # The server's own statements: every gauge in one grouped statement, each counter alone.
        server = _raw(engine, [means_statement(target, gauges, window), *counter_statements])
        # By hand: the gauges' grouped pass written out; the counters' increases as the server
        # computes them (a window function per series, no cheaper plan for the same rows).
        by_hand = _raw(engine, counter_statements, [_gauges_by_hand(target, gauges, window)])
        backend = app.state.observed_backend
        metrics_target = WorkloadTarget(target, "", "", "")

        def in_process() -> bytes:
            """The backend's answer as the route serialises it, without the HTTP request."""
            results = backend.workload_metrics(metrics_target, METRIC_TYPE_NAMES, window)
            return metrics_json(results)

        api_ms, server_ms, floor_ms, backend_ms, get_ms = interleaved(
            [
                lambda: client.get(f"/api/v1/workloads/{target}/metrics", params=params),
                server,
                by_hand,
                in_process,
                lambda: client.get(f"/api/v1/workloads/{target}"),
            ],
            args.repeats,
        )
        api, server_median = statistics.median(api_ms), statistics.median(server_ms)
        floor = min(server_median, statistics.median(floor_ms))
        ratios = [a / min(s, f) for a, s, f in zip(api_ms, server_ms, floor_ms, strict=True)]
        print(
            f"metrics {len(METRIC_TYPE_NAMES)} types x 1000 over {args.days}d  "
            f"api {api:8.1f} ms  server {server_median:8.1f} ms  floor {floor:8.1f} ms  "
            f"api/floor {api / floor:5.2f} (per round {statistics.median(ratios):5.2f})  "
            f"server/floor {server_median / floor:5.2f}"
        )
        print(
            f"  of the API: backend and body in-process {statistics.median(backend_ms):8.1f} ms, "
            f"a GET of the workload {statistics.median(get_ms):6.1f} ms"
        )
    engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
