"""Workload metrics latency through the API with the Prometheus backend, beside its floor.

A real Prometheus is started on the generated series of ``tests.support.prometheus`` and a real
``gpufleet serve`` process on a SQLite store holding the generated workloads and their pods. Each
scenario asks the API for six metric types x 1,000 samples over the data's three hours, and sends
the very same six PromQL range queries straight to Prometheus: concurrently (as the server does;
the floor) and one after another (for reference). Every request, the API's included, is sent
with urllib3 (the SDK's client, and the leanest of the Python clients measured: httpx spends
about three times its CPU time on a query), and every answer is parsed, so no client's cost
weighs on one side only. The three take turns in every round, so load on a shared machine
weighs on them alike. Prints p50/p95 and the median (and interquartile range) of the API /
floor ratio of each round, the server's CPU time per metrics request, a plain ``GET`` of the
workload for the cost every request pays (token, scope, one row), and how long the client takes
to parse the API's answer (the reference's object per point: about twice Prometheus' bytes).

    .venv/bin/python -m bench.prometheus_metrics --repeats 30
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

import orjson
import urllib3
from bench.floors import interleaved
from tests.support import prometheus as data
from tests.support.factories import insert, workload
from tests.support.server import ServerProcess

from gpufleet.core.metric_values import SampleWindow, WorkloadTarget
from gpufleet.metrics.prometheus import PrometheusBackend, QueryGrid
from gpufleet.metrics.types import WorkloadMetricType as M
from gpufleet.settings import Settings
from gpufleet.store.engine import create_store_engine
from gpufleet.store.migrate import upgrade
from gpufleet.store.pods import record_pods

SAMPLES = 1000
SCENARIOS = {
    "training (gauges, rates, joins)": (
        data.TRAIN,
        [
            M.GPU_UTILIZATION,
            M.GPU_MEMORY_USAGE_BYTES,
            M.CPU_USAGE_CORES,
            M.CPU_MEMORY_USAGE_BYTES,
            M.CPU_REQUEST_CORES,
            M.RUNNING_POD_COUNT,
        ],
    ),
    "inference (counters, histograms, percentiles)": (
        data.LLM,
        [
            M.NIM_NUM_REQUESTS_RUNNING,
            M.NIM_REQUEST_SUCCESS_TOTAL,
            M.NIM_GPU_CACHE_USAGE_PERC,
            M.NIM_TIME_TO_FIRST_TOKEN_SECONDS,
            M.NIM_TIME_TO_FIRST_TOKEN_SECONDS_PERCENTILES,
            M.NIM_E2E_REQUEST_LATENCY_SECONDS_PERCENTILES,
        ],
    ),
}
GPU_LABELS = {
    "GPUFLEET_PROMETHEUS_GPU_NAMESPACE_LABEL": "exported_namespace",
    "GPUFLEET_PROMETHEUS_GPU_POD_LABEL": "exported_pod",
}


def _seed(database_url: str) -> dict[str, str]:
    engine = create_store_engine(Settings(database_url=database_url))
    upgrade(engine)
    ids = {}
    for w in data.WORKLOADS:
        document = workload(name=w.name, namespace=w.namespace, gpus=w.allocated_gpus)
        insert(engine, [document])
        pods = [{"uid": f"uid-{p}", "name": p, "phase": "Running"} for p in w.pods]
        with engine.begin() as conn:
            observed = datetime.now(UTC)
            record_pods(conn, document["clusterId"], {document["id"]: (observed, pods)})
        ids[w.name] = document["id"]
    engine.dispose()
    return ids


def _ratios(api: list[float], floor: list[float]) -> list[float]:
    """The API / floor ratio of each round (the two ran back to back)."""
    return sorted(a / f for a, f in zip(api, floor, strict=True))


def _cpu_ms(pid: int) -> float:
    """CPU time (user and system) a process has used so far, in milliseconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def _p(timings: list[float], q: float) -> float:
    return timings[min(len(timings) - 1, int(q * len(timings)))]


def _iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, tz=UTC).isoformat().replace("+00:00", "Z")


def run(repeats: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="gpufleet-bench-prom-"))
    start = data.data_start(time.time())
    end = start + data.SAMPLES * data.SCRAPE_SECONDS
    prom = data.PrometheusServer(data.build_tsdb(work / "tsdb", start), work).start()
    database_url = f"sqlite:///{work / 'gpufleet.db'}"
    ids = _seed(database_url)
    env = {
        "GPUFLEET_PROMETHEUS_URL": prom.url,
        "GPUFLEET_PROMETHEUS_SCRAPE_INTERVAL_SECONDS": str(data.SCRAPE_SECONDS),
        "GPUFLEET_IDLE_GPU_INTERVAL_SECONDS": "0",
        "GPUFLEET_LOG_LEVEL": "warning",
        **GPU_LABELS,
    }
    server = ServerProcess(database_url, extra_env=env, log_dir=work).start()
    settings = Settings(
        prometheus_url=prom.url,
        prometheus_scrape_interval_seconds=data.SCRAPE_SECONDS,
        prometheus_gpu_namespace_label="exported_namespace",
        prometheus_gpu_pod_label="exported_pod",
    )
    backend = PrometheusBackend(settings)
    grid = QueryGrid.for_window(SampleWindow(start * 1000, end * 1000, SAMPLES))
    form_times = {
        "start": f"{grid.first_ms / 1000:.3f}",
        "end": f"{grid.last_ms / 1000:.3f}",
        "step": f"{grid.step_ms / 1000:.3f}",
    }
    api = urllib3.connection_from_url(
        server.base_url, headers=server.auth_headers(), timeout=60, retries=False
    )
    # Uncompressed, as the server asks: gzip makes Prometheus slower on this network.
    direct = urllib3.connection_from_url(prom.url, maxsize=8, timeout=60, retries=False)
    form_headers = {
        "Accept-Encoding": "identity",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    pool = ThreadPoolExecutor(8)
    print(f"{SAMPLES} samples over 3 h (step {grid.step_ms} ms), {repeats} runs each, ms")
    print(
        f"{'scenario':<48} {'API p50':>8} {'p95':>7} {'floor p50':>10} {'p95':>7} "
        f"{'serial p50':>11} {'ratio':>6} {'IQR':>9} {'server CPU':>10} {'GET p50':>8} "
        f"{'parse p50':>9}"
    )
    try:
        for name, (generated, types) in SCENARIOS.items():
            target = WorkloadTarget(
                ids[generated.name], "", generated.namespace, generated.name, generated.pods
            )
            queries = [backend.query_for(t, target, grid.step_ms) for t in types]
            params = {
                "metricType": ",".join(t.value for t in types),
                "start": _iso(start),
                "end": _iso(end),
                "numberOfSamples": SAMPLES,
            }

            path = f"/api/v1/workloads/{ids[generated.name]}/metrics"
            server_cpu: list[float] = []
            parse_ms: list[float] = []

            def through_api(path=path, params=params, server_cpu=server_cpu, parse_ms=parse_ms):
                began = _cpu_ms(server.process.pid)
                response = api.request("GET", path, fields=params)
                server_cpu.append(_cpu_ms(server.process.pid) - began)
                assert response.status == 200, response.data
                parsing = time.perf_counter()
                orjson.loads(response.data)
                parse_ms.append((time.perf_counter() - parsing) * 1000)

            def workload(path=f"/api/v1/workloads/{ids[generated.name]}"):
                assert api.request("GET", path).status == 200

            def one(query):
                body = urlencode({"query": query, **form_times})
                response = direct.urlopen(
                    "POST", "/api/v1/query_range", body=body, headers=form_headers
                )
                assert orjson.loads(response.data)["status"] == "success"
                return response

            api_ms, floor_ms, serial_ms, get_ms = interleaved(
                [
                    through_api,
                    lambda queries=queries: list(pool.map(one, queries)),
                    lambda queries=queries: [one(q) for q in queries],
                    workload,
                ],
                repeats,
            )
            ratios = _ratios(api_ms, floor_ms)
            api_ms, floor_ms, serial_ms = sorted(api_ms), sorted(floor_ms), sorted(serial_ms)
            print(
                f"{name:<48} {_p(api_ms, 0.5):8.1f} {_p(api_ms, 0.95):7.1f} "
                f"{_p(floor_ms, 0.5):10.1f} {_p(floor_ms, 0.95):7.1f} "
                f"{_p(serial_ms, 0.5):11.1f} {_p(ratios, 0.5):5.2f}x "
                f"{_p(ratios, 0.25):5.2f}-{_p(ratios, 0.75):.2f} "
                f"{sum(server_cpu[1:]) / repeats:10.1f} {_p(sorted(get_ms), 0.5):8.1f} "
                f"{_p(sorted(parse_ms), 0.5):9.1f}"
            )
    finally:
        api.close()
        direct.close()
        pool.shutdown()
        backend.close()
        server.stop()
        prom.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    run(parser.parse_args().repeats)


if __name__ == "__main__":
    main()
