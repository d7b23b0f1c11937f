"""The Prometheus metrics backend against a real Prometheus on generated exporter series.

For every metric type the API's points must equal what Prometheus returns for the documented
expression (written out below, independently of the backend's table) over the same aligned
range; a few points are also checked against values worked out by hand from the generator.
Failures of the server, idle GPUs, settings and the SDK end to end are covered too.
"""

from __future__ import annotations

import itertools
import logging
import math
from datetime import UTC, datetime

import pytest
from runai.api_client import ApiClient
from runai.configuration import Configuration
from runai.runai_client import RunaiClient

from gpufleet.api.app import create_app
from gpufleet.cli import build_parser
from gpufleet.core.metric_values import WorkloadTarget
from gpufleet.metrics.backend import IdleRule
from gpufleet.metrics.embedded import EmbeddedMetricsBackend
from gpufleet.metrics.prometheus import PrometheusBackend
from gpufleet.metrics.promql import QUERIES
from gpufleet.metrics.tasks import refresh_idle_gpus
from gpufleet.metrics.types import METRIC_TYPES, WorkloadMetricType, format_value, wire_decimals
from gpufleet.settings import Settings
from gpufleet.settings_flags import settings_from_flags
from gpufleet.store.engine import create_store_engine
from gpufleet.store.migrate import upgrade
from gpufleet.store.pods import record_pods
from tests.support import prometheus as data
from tests.support.databases import ADMIN_ID, ADMIN_SECRET
from tests.support.factories import insert, workload
from tests.support.ports import free_port
from tests.support.prometheus_app import (
    assert_same_as_prometheus,
    client_for,
    copy_tsdb,
    direct,
    epoch,
    fetch_metrics,
    grid,
    iso,
    prometheus_settings,
    seed_workloads,
)
from tests.support.server import ServerProcess

# The module-scoped dataset, prom and t0 fixtures.
pytest_plugins = ["tests.support.prometheus_fixtures"]

M = WorkloadMetricType
MIB = 1024 * 1024
GIB = 1024 * MIB


@pytest.fixture
def settings(database_url, prom) -> Settings:
    return prometheus_settings(database_url, prom.url)


@pytest.fixture(scope="module")
def shared(module_database_url, prom):
    """One server for the read-only tests: (client, engine, workload ids by name)."""
    settings = prometheus_settings(module_database_url, prom.url)
    with client_for(create_app(settings)) as client:
        engine = client.app.state.gpufleet.engine
        yield client, engine, seed_workloads(engine)


# The documented expressions, for the generator's train (TRAIN_*), NIM (LLM) and vLLM (CHAT)
# workloads; {w} is the rate window and {step} the step in seconds.
_TRAIN = 'namespace="team-a", pod=~"train-0|train-1|train-2"'
_TRAIN_GPU = 'exported_namespace="team-a", exported_pod=~"train-0|train-1|train-2"'
_LIVE = (
    f'(max by (namespace, pod) (kube_pod_status_phase{{{_TRAIN}, phase=~"Pending|Running"}}) == 1)'
)
_BLANK = "140737488355328"
_LLM = 'namespace="team-b", pod="llm-7d9f-abcde"'
_CHAT = 'namespace="team-b", pod="chat-0"'


def _pct(bucket: str, selector: str) -> dict[str, str]:
    return {
        name: f"histogram_quantile({q}, sum by (le) (rate({bucket}{{{selector}}}[{{w}}])))"
        for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99))
    }


def _requests(kind: str, resource: str) -> str:
    return (
        f"sum(kube_pod_container_resource_{kind}{{{_TRAIN}, resource={resource}}}"
        f" * on (namespace, pod) group_left () {_LIVE})"
    )


TRAIN_EXPRESSIONS = {
    M.GPU_UTILIZATION: f"avg by (gpu) (DCGM_FI_DEV_GPU_UTIL{{{_TRAIN_GPU}}} < {_BLANK})",
    M.GPU_MEMORY_USAGE_BYTES: f"sum by (gpu) (DCGM_FI_DEV_FB_USED{{{_TRAIN_GPU}}} < {_BLANK})"
    " * 1048576",
    M.GPU_MEMORY_REQUEST_BYTES: f"sum((DCGM_FI_DEV_FB_USED{{{_TRAIN_GPU}}} < {_BLANK})"
    f" + (DCGM_FI_DEV_FB_FREE{{{_TRAIN_GPU}}} < {_BLANK})) * 1048576",
    M.CPU_USAGE_CORES: f'sum(rate(container_cpu_usage_seconds_total{{{_TRAIN}, container!="",'
    ' container!="POD"}[{w}]))',
    M.CPU_REQUEST_CORES: _requests("requests", '"cpu"'),
    M.CPU_LIMIT_CORES: _requests("limits", '"cpu"'),
    M.CPU_MEMORY_USAGE_BYTES: f'sum(container_memory_working_set_bytes{{{_TRAIN}, container!="",'
    ' container!="POD"})',
    M.CPU_MEMORY_REQUEST_BYTES: _requests("requests", '"memory"'),
    M.CPU_MEMORY_LIMIT_BYTES: _requests("limits", '"memory"'),
    M.POD_COUNT: f"sum(kube_pod_status_phase{{{_TRAIN}}})",
    M.RUNNING_POD_COUNT: f'sum(kube_pod_status_phase{{{_TRAIN}, phase="Running"}})',
    M.GPU_ALLOCATION: _requests("requests", '"nvidia_com_gpu", node!=""'),
    M.NVLINK_BANDWIDTH_TOTAL: f"sum(DCGM_FI_PROF_NVLINK_TX_BYTES{{{_TRAIN_GPU}}} < {_BLANK})"
    f" + sum(DCGM_FI_PROF_NVLINK_RX_BYTES{{{_TRAIN_GPU}}} < {_BLANK})",
}
NIM_EXPRESSIONS = {
    M.NIM_NUM_REQUESTS_RUNNING: f"sum(num_requests_running{{{_LLM}}})",
    M.NIM_NUM_REQUESTS_WAITING: f"sum(num_requests_waiting{{{_LLM}}})",
    M.NIM_NUM_REQUEST_MAX: f"sum(num_request_max{{{_LLM}}})",
    M.NIM_REQUEST_SUCCESS_TOTAL: f"sum(rate(request_success_total{{{_LLM}}}[{{w}}])) * {{step}}",
    M.NIM_REQUEST_FAILURE_TOTAL: f"sum(rate(request_failure_total{{{_LLM}}}[{{w}}])) * {{step}}",
    M.NIM_GPU_CACHE_USAGE_PERC: f"avg(gpu_cache_usage_perc{{{_LLM}}})",
    M.NIM_TIME_TO_FIRST_TOKEN_SECONDS: "sum by (le) (rate(time_to_first_token_seconds_bucket"
    f"{{{_LLM}}}[{{w}}])) * {{step}}",
    M.NIM_E2E_REQUEST_LATENCY_SECONDS: "sum by (le) (rate(e2e_request_latency_seconds_bucket"
    f"{{{_LLM}}}[{{w}}])) * {{step}}",
    M.NIM_TIME_TO_FIRST_TOKEN_SECONDS_PERCENTILES: _pct("time_to_first_token_seconds_bucket", _LLM),
    M.NIM_E2E_REQUEST_LATENCY_SECONDS_PERCENTILES: _pct("e2e_request_latency_seconds_bucket", _LLM),
}
VLLM_EXPRESSIONS = {
    M.NIM_NUM_REQUESTS_RUNNING: f"sum(vllm:num_requests_running{{{_CHAT}}})",
    M.NIM_NUM_REQUESTS_WAITING: f"sum(vllm:num_requests_waiting{{{_CHAT}}})",
    M.NIM_REQUEST_SUCCESS_TOTAL: "sum(rate(vllm:request_success_total"
    f'{{{_CHAT}, finished_reason=~"stop|length"}}[{{w}}])) * {{step}}',
    M.NIM_REQUEST_FAILURE_TOTAL: "sum(rate(vllm:request_success_total"
    f'{{{_CHAT}, finished_reason!~"stop|length"}}[{{w}}])) * {{step}}',
    M.NIM_GPU_CACHE_USAGE_PERC: f"avg(vllm:kv_cache_usage_perc{{{_CHAT}}})",
    M.NIM_TIME_TO_FIRST_TOKEN_SECONDS: "sum by (le) (rate(vllm:time_to_first_token_seconds_bucket"
    f"{{{_CHAT}}}[{{w}}])) * {{step}}",
    M.NIM_E2E_REQUEST_LATENCY_SECONDS: "sum by (le) (rate(vllm:e2e_request_latency_seconds_bucket"
    f"{{{_CHAT}}}[{{w}}])) * {{step}}",
    M.NIM_TIME_TO_FIRST_TOKEN_SECONDS_PERCENTILES: _pct(
        "vllm:time_to_first_token_seconds_bucket", _CHAT
    ),
    M.NIM_E2E_REQUEST_LATENCY_SECONDS_PERCENTILES: _pct(
        "vllm:e2e_request_latency_seconds_bucket", _CHAT
    ),
}


def test_the_tables_cover_every_type():
    assert set(QUERIES) == set(M)
    assert set(TRAIN_EXPRESSIONS) | set(NIM_EXPRESSIONS) == set(M)


WINDOW = (1800, 9000, 20)  # 30 min to 2.5 h after the data starts, 20 samples: a 6-minute step


@pytest.mark.parametrize("metric_type", list(M), ids=lambda t: t.value)
def test_every_type_equals_prometheus(shared, prom, t0, metric_type):
    client, _, ids = shared
    name, expression = (
        ("train", TRAIN_EXPRESSIONS[metric_type])
        if metric_type in TRAIN_EXPRESSIONS
        else ("llm", NIM_EXPRESSIONS[metric_type])
    )
    start, end, samples = t0 + WINDOW[0], t0 + WINDOW[1], WINDOW[2]
    body = fetch_metrics(client, ids[name], [metric_type], start, end, samples)
    first, last, step = grid(start, end, samples)
    assert_same_as_prometheus(prom, body, metric_type, expression, first, last, step)


# Every type whose expression is one query, with the generated workload it is checked on.
_ONE_QUERY = [
    *((t, data.TRAIN, e) for t, e in TRAIN_EXPRESSIONS.items()),
    *((t, data.LLM, e) for t, e in NIM_EXPRESSIONS.items() if isinstance(e, str)),
]


def _wire_form_cases(prom, t0, backend):
    """(type, what the backend's query returns, what the plain expression returns)."""
    start, end, samples = t0 + WINDOW[0], t0 + WINDOW[1], WINDOW[2]
    first, last, step = grid(start, end, samples)
    for metric_type, generated, expression in _ONE_QUERY:
        target = WorkloadTarget("w", "", generated.namespace, generated.name, generated.pods)
        query = backend.query_for(metric_type, target, round(step * 1000))
        sent = prom.query_range(query, first, last, step)
        yield metric_type, sent, direct(prom, expression, first, last, step)


def test_prometheus_sends_values_in_the_wire_form(database_url, prom, t0):
    # Every range query asks Prometheus to round to the wire's six decimals, so the server
    # passes its values through unchanged: each is the wire's text of the unrounded value (at
    # an exact half the sixth decimal may differ by one: Prometheus rounds a half up).
    backend = PrometheusBackend(prometheus_settings(database_url, prom.url))
    longer = set()
    try:
        for metric_type, sent, unrounded in _wire_form_cases(prom, t0, backend):
            assert len(sent) == len(unrounded), metric_type
            exact = {tuple(sorted(s["metric"].items())): s["values"] for s in unrounded}
            for series in sent:
                texts = [value for _, value in series["values"]]
                assert wire_decimals(texts) is texts, metric_type  # already in the wire's form
                points = exact[tuple(sorted(series["metric"].items()))]
                assert [ts for ts, _ in series["values"]] == [ts for ts, _ in points]
                for text, (_, value) in zip(texts, points, strict=True):
                    if value in ("NaN", "+Inf", "-Inf"):
                        assert text == value
                        continue
                    if text != value:
                        longer.add(metric_type)
                    wire = format_value(float(value))
                    assert text == wire or abs(float(text) - float(value)) <= 5e-7, metric_type
    finally:
        backend.close()
    # Not vacuous: unrounded, several types have more digits than the wire keeps.
    assert len(longer) >= 2, longer


@pytest.mark.parametrize("metric_type", list(VLLM_EXPRESSIONS), ids=lambda t: t.value)
def test_vllm_names_equal_prometheus(shared, prom, t0, metric_type):
    client, _, ids = shared
    # An unaligned, odd range: 7 samples over 47 minutes and 13.5 seconds.
    start, end, samples = t0 + 1000.25, t0 + 1000.25 + 2833.5, 7
    body = fetch_metrics(client, ids["chat"], [metric_type], start, end, samples)
    first, last, step = grid(start, end, samples)
    assert step == math.ceil(2833.5 * 1000 / 7) / 1000
    assert_same_as_prometheus(
        prom, body, metric_type, VLLM_EXPRESSIONS[metric_type], first, last, step
    )


def _at(body, metric_type, when_s, labels=None):
    for item in body["measurements"]:
        if item["type"] == metric_type.value and item["labels"] == labels:
            for value in item["values"]:
                if epoch(value["timestamp"]) == when_s:
                    return float(value["value"])
    raise AssertionError(f"no {metric_type.value} {labels} point at {when_s}")


def test_hand_checked_training_values(shared, t0):
    client, _, ids = shared
    start, end, samples = t0 + WINDOW[0], t0 + WINDOW[1], WINDOW[2]
    body = fetch_metrics(client, ids["train"], list(TRAIN_EXPRESSIONS), start, end, samples)
    first, last, step = grid(start, end, samples)
    assert (first, last, step) == (t0 + 2160, t0 + 9000, 360)
    utilisation = [m for m in body["measurements"] if m["type"] == "GPU_UTILIZATION"]
    assert [m["labels"] for m in utilisation] == [{"gpu": "0"}, {"gpu": "1"}]
    assert all(len(m["values"]) == samples for m in utilisation)
    one_hour, two_hours = t0 + 3600, t0 + 7200
    gpu0, gpu1 = {"gpu": "0"}, {"gpu": "1"}
    # At one hour train-1's GPU 1 reports the DCGM sentinel: that sample is dropped.
    assert _at(body, M.GPU_UTILIZATION, one_hour, gpu0) == 50  # (80 + 20) / 2
    assert _at(body, M.GPU_UTILIZATION, one_hour, gpu1) == 60  # 60 alone
    assert _at(body, M.GPU_UTILIZATION, two_hours, gpu0) == 30  # (40 + 20) / 2
    assert _at(body, M.GPU_UTILIZATION, two_hours, gpu1) == 30  # (60 + 0) / 2
    assert _at(body, M.GPU_MEMORY_USAGE_BYTES, one_hour, gpu0) == 4000 * MIB
    assert _at(body, M.GPU_MEMORY_USAGE_BYTES, one_hour, gpu1) == 6000 * MIB
    assert _at(body, M.GPU_MEMORY_REQUEST_BYTES, one_hour) == 4 * data.FB_TOTAL_MIB * MIB
    assert _at(body, M.CPU_USAGE_CORES, one_hour) == 3.0  # the pod cgroup and pause excluded
    assert _at(body, M.CPU_MEMORY_USAGE_BYTES, one_hour) == 4 * GIB
    # train-2 has Succeeded: its requests and limits no longer count.
    assert _at(body, M.CPU_REQUEST_CORES, one_hour) == 8
    assert _at(body, M.CPU_LIMIT_CORES, one_hour) == 16
    assert _at(body, M.CPU_MEMORY_REQUEST_BYTES, one_hour) == 32 * GIB
    assert _at(body, M.CPU_MEMORY_LIMIT_BYTES, one_hour) == 64 * GIB
    assert _at(body, M.POD_COUNT, one_hour) == 3
    assert _at(body, M.RUNNING_POD_COUNT, one_hour) == 2
    assert _at(body, M.GPU_ALLOCATION, one_hour) == 4
    assert _at(body, M.NVLINK_BANDWIDTH_TOTAL, one_hour) == 4 * 1.5e9


def test_running_pods_follow_the_phase(shared, t0):
    client, _, ids = shared
    body = fetch_metrics(client, ids["train"], [M.RUNNING_POD_COUNT], t0, t0 + 3600, 4)
    values = body["measurements"][0]["values"]
    # Points at 15, 30, 45 and 60 minutes; train-1 starts Running at 30 minutes.
    assert [epoch(v["timestamp"]) - t0 for v in values] == [900, 1800, 2700, 3600]
    assert [v["value"] for v in values] == ["1", "2", "2", "2"]


def test_hand_checked_inference_values(shared, t0):
    client, _, ids = shared
    start, end, samples = t0 + WINDOW[0], t0 + WINDOW[1], WINDOW[2]
    body = fetch_metrics(client, ids["llm"], list(NIM_EXPRESSIONS), start, end, samples)
    one_hour = t0 + 3600
    assert _at(body, M.NIM_NUM_REQUESTS_RUNNING, one_hour) == 4
    assert _at(body, M.NIM_NUM_REQUESTS_WAITING, one_hour) == 2
    assert _at(body, M.NIM_NUM_REQUEST_MAX, one_hour) == 256
    assert _at(body, M.NIM_GPU_CACHE_USAGE_PERC, one_hour) == 0.25
    # Per 6-minute step: 24 scrapes of +2 successes, one failure a minute.
    assert _at(body, M.NIM_REQUEST_SUCCESS_TOTAL, one_hour) == 48
    assert _at(body, M.NIM_REQUEST_FAILURE_TOTAL, one_hour) == 6
    histograms = {h["type"]: h["values"] for h in body["histogram"]}
    ttft = next(
        v
        for v in histograms["NIM_TIME_TO_FIRST_TOKEN_SECONDS"]
        if epoch(v["timestamp"]) == one_hour
    )
    assert ttft["data"] == {"0.1": "24", "0.5": "72", "1.0": "96", "2.0": "120", "+Inf": "120"}
    e2e = next(
        v
        for v in histograms["NIM_E2E_REQUEST_LATENCY_SECONDS"]
        if epoch(v["timestamp"]) == one_hour
    )
    assert e2e["data"] == {"0.5": "0", "1.0": "48", "5.0": "96", "10.0": "120", "+Inf": "144"}
    pct = next(
        v
        for v in histograms["NIM_TIME_TO_FIRST_TOKEN_SECONDS_PERCENTILES"]
        if epoch(v["timestamp"]) == one_hour
    )
    # Rank 60 of 120 lies in (0.1, 0.5] holding 24..72: 0.1 + 0.4 x 36/48.
    assert pct["data"] == {"p50": "0.4", "p90": "1.5", "p99": "1.95"}
    pct = next(
        v
        for v in histograms["NIM_E2E_REQUEST_LATENCY_SECONDS_PERCENTILES"]
        if epoch(v["timestamp"]) == one_hour
    )
    # Ranks in the +Inf bucket give the highest finite bound.
    assert pct["data"] == {"p50": "3", "p90": "10", "p99": "10"}


def test_windows_without_requests_have_zero_buckets_and_no_percentiles(shared, t0):
    client, _, ids = shared
    types = [M.NIM_TIME_TO_FIRST_TOKEN_SECONDS, M.NIM_TIME_TO_FIRST_TOKEN_SECONDS_PERCENTILES]
    body = fetch_metrics(client, ids["llm"], types, t0 + 7200, t0 + 10800, 10)
    histograms = {h["type"]: h["values"] for h in body["histogram"]}
    buckets = histograms["NIM_TIME_TO_FIRST_TOKEN_SECONDS"]
    assert len(buckets) == 10
    quiet = t0 + data.INFERENCE_QUIET_K * data.SCRAPE_SECONDS + 360
    assert all(set(v["data"].values()) == {"0"} for v in buckets if epoch(v["timestamp"]) >= quiet)
    stamps = [epoch(v["timestamp"]) for v in histograms[types[1].value]]
    assert stamps and max(stamps) < quiet  # NaN percentiles are left out, not sent as "NaN"
    assert len(stamps) == len([v for v in buckets if epoch(v["timestamp"]) < quiet])


def test_a_thousand_samples_come_back_aligned(shared, t0):
    client, _, ids = shared
    body = fetch_metrics(client, ids["train"], [M.CPU_USAGE_CORES], t0 + 60, t0 + 10800, 1000)
    values = body["measurements"][0]["values"]
    assert len(values) == 1000
    stamps_ms = [round(epoch(v["timestamp"]) * 1000) for v in values]
    assert {b - a for a, b in itertools.pairwise(stamps_ms)} == {10_740}
    assert all(s % 10_740 == 0 for s in stamps_ms)
    assert stamps_ms[-1] <= (t0 + 10800) * 1000


BROKEN = "sum(rate(container_cpu_usage_seconds_total{${pods}}[${w}]"  # unbalanced


def test_one_broken_type_is_a_partial_success(settings, t0, caplog):
    backend = PrometheusBackend(settings, queries={**QUERIES, M.CPU_USAGE_CORES: BROKEN})
    with client_for(create_app(settings, metrics_backend=backend)) as client:
        ids = seed_workloads(client.app.state.gpufleet.engine)
        with caplog.at_level(logging.ERROR, logger="gpufleet.metrics.prometheus"):
            response = client.get(
                f"/api/v1/workloads/{ids['train']}/metrics",
                params={
                    "metricType": "CPU_USAGE_CORES,POD_COUNT",
                    "start": iso(t0 + 1800),
                    "end": iso(t0 + 3600),
                },
            )
    assert response.status_code == 207
    body = response.json()
    assert body["measurements"][0] == {"type": "CPU_USAGE_CORES", "labels": None, "values": None}
    assert body["measurements"][1]["type"] == "POD_COUNT"
    assert {v["value"] for v in body["measurements"][1]["values"]} == {"3"}
    assert "CPU_USAGE_CORES" in response.headers["X-Gpufleet-Metric-Failures"]
    # The query is logged for the operator, and kept from the client.
    logged = [r.getMessage() for r in caplog.records]
    assert any("container_cpu_usage_seconds_total" in m and "train-0" in m for m in logged)
    assert "container_cpu" not in response.text + str(response.headers)
    assert "train-0" not in response.text + str(response.headers)


def test_every_type_broken_is_500_without_the_query(settings, t0, caplog):
    backend = PrometheusBackend(settings, queries=dict.fromkeys(M, BROKEN))
    with client_for(create_app(settings, metrics_backend=backend)) as client:
        ids = seed_workloads(client.app.state.gpufleet.engine)
        with caplog.at_level(logging.ERROR, logger="gpufleet.metrics.prometheus"):
            body = fetch_metrics(
                client, ids["train"], [M.CPU_USAGE_CORES, M.POD_COUNT], t0, t0 + 600, 5, status=500
            )
    assert body["code"] == 500
    assert "container_cpu" not in str(body) and "train" not in str(body)
    assert sum("container_cpu_usage_seconds_total" in r.getMessage() for r in caplog.records) == 2


@pytest.fixture
def degraded_prom(dataset, tmp_path):
    """A second Prometheus whose remote read fails: every answer carries a warning."""
    server = data.PrometheusServer(copy_tsdb(dataset[1], tmp_path), tmp_path)
    server.start(remote_read_url=f"http://127.0.0.1:{free_port()}/api/v1/read")
    yield server
    server.stop()


def test_warnings_are_207_and_a_stopped_prometheus_is_503(database_url, degraded_prom, t0):
    settings = prometheus_settings(database_url, degraded_prom.url)
    with client_for(create_app(settings)) as client:
        ids = seed_workloads(client.app.state.gpufleet.engine)
        types = [M.GPU_UTILIZATION, M.POD_COUNT]
        body = fetch_metrics(client, ids["train"], types, t0 + 1800, t0 + 3600, 5, status=207)
        # Partial answers keep their data.
        assert [len(m["values"]) for m in body["measurements"]] == [5, 5, 5]
        degraded_prom.stop()
        body = fetch_metrics(client, ids["train"], types, t0 + 1800, t0 + 3600, 5, status=503)
    assert body["code"] == 503
    assert "prometheus" in body["message"]


def test_default_label_names_miss_dcgm_series_behind_a_proxy(database_url, prom, t0):
    # The generated DCGM series carry the exporter's own pod in namespace/pod.
    settings = prometheus_settings(
        database_url,
        prom.url,
        prometheus_gpu_namespace_label="namespace",
        prometheus_gpu_pod_label="pod",
    )
    with client_for(create_app(settings)) as client:
        ids = seed_workloads(client.app.state.gpufleet.engine)
        body = fetch_metrics(
            client, ids["train"], [M.GPU_UTILIZATION, M.POD_COUNT], t0, t0 + 600, 5
        )
    assert body["measurements"][0] == {"type": "GPU_UTILIZATION", "labels": None, "values": []}
    assert len(body["measurements"][1]["values"]) == 5


@pytest.mark.parametrize(
    ("names", "llm", "chat"), [("nim", "4", None), ("vllm", None, "3"), ("both", "4", "3")]
)
def test_inference_metric_names(database_url, prom, t0, names, llm, chat):
    settings = prometheus_settings(database_url, prom.url, prometheus_inference_metrics=names)
    with client_for(create_app(settings)) as client:
        ids = seed_workloads(client.app.state.gpufleet.engine)
        got = []
        for name in ("llm", "chat"):
            body = fetch_metrics(client, ids[name], [M.NIM_NUM_REQUESTS_RUNNING], t0, t0 + 600, 2)
            values = body["measurements"][0]["values"]
            got.append(values[0]["value"] if values else None)
    assert got == [llm, chat]


@pytest.mark.parametrize(
    "pod", ["train-.*", 'we"ird\\pod', "train-0|train-1", "трейн-0", "x') or 1=1 --"]
)
def test_pod_names_are_matched_literally(shared, t0, pod):
    client, engine, _ = shared
    document = workload(namespace="team-a", gpus=1.0)
    insert(engine, [document])
    with engine.begin() as conn:
        record_pods(
            conn,
            document["clusterId"],
            {document["id"]: (datetime.now(UTC), [{"uid": "u", "name": pod, "phase": "Running"}])},
        )
    body = fetch_metrics(client, document["id"], [M.GPU_UTILIZATION, M.POD_COUNT], t0, t0 + 600, 5)
    assert [m["values"] for m in body["measurements"]] == [[], []]


def test_a_workload_without_pods_has_no_data(shared, t0):
    client, engine, _ = shared
    document = workload(namespace="team-a")
    insert(engine, [document])
    body = fetch_metrics(client, document["id"], [M.POD_COUNT], t0, t0 + 600, 5)
    assert body["measurements"] == [{"type": "POD_COUNT", "labels": None, "values": []}]


def _idle(client, workload_id):
    body = client.get(f"/api/v1/workloads/{workload_id}").json()
    return body["idleGpus"], body["idleAllocatedGpus"]


def test_idle_gpus_come_from_prometheus_utilisation(shared, t0):
    client, engine, ids = shared
    backend = client.app.state.metrics_backend
    assert isinstance(backend, PrometheusBackend)
    rule = IdleRule(threshold_percent=1.0, window_seconds=300)
    refresh_idle_gpus(engine, backend, rule, datetime.fromtimestamp(t0 + 7200, tz=UTC))
    # train: one of its four reported GPUs (train-1's GPU 1) idles; 4 GPUs / 4 = 1 each.
    assert _idle(client, ids["train"]) == (1, 1.0)
    assert _idle(client, ids["idle"]) == (1, 1.0)
    assert _idle(client, ids["llm"]) == (0, 0.0)
    assert _idle(client, ids["chat"]) == (0, 0.0)
    # The sentinel at one hour is no reading, so it does not make the GPU busy.
    when = data.SENTINEL_K * data.SCRAPE_SECONDS + 120
    refresh_idle_gpus(engine, backend, rule, datetime.fromtimestamp(t0 + when, tz=UTC))
    assert _idle(client, ids["train"]) == (1, 1.0)
    # Three minutes into the data nothing has been reported for the whole window.
    refresh_idle_gpus(engine, backend, rule, datetime.fromtimestamp(t0 + 180, tz=UTC))
    assert _idle(client, ids["idle"]) == (0, 0.0)
    # At 65% the 60% and 20% GPUs idle too, but train-0's GPU 0 ran at 80% within the window.
    lenient = IdleRule(threshold_percent=65.0, window_seconds=300)
    refresh_idle_gpus(engine, backend, lenient, datetime.fromtimestamp(t0 + 7200, tz=UTC))
    assert _idle(client, ids["train"]) == (3, 3.0)
    assert _idle(client, ids["chat"]) == (1, 1.0)


def test_the_backend_is_chosen_by_settings(database_url, prom):
    plain = Settings(
        database_url=database_url, admin_client_id=ADMIN_ID, admin_client_secret=ADMIN_SECRET
    )
    app = create_app(plain)
    assert isinstance(app.state.metrics_backend, EmbeddedMetricsBackend)
    app.state.gpufleet.engine.dispose()
    args = build_parser().parse_args(
        [
            "serve",
            "--database-url",
            database_url,
            "--prometheus-url",
            prom.url,
            "--prometheus-gpu-pod-label",
            "exported_pod",
            "--prometheus-verify-tls",
            "false",
        ]
    )
    settings = settings_from_flags(args, Settings)
    assert settings.prometheus_url == prom.url and settings.prometheus_verify_tls is False
    app = create_app(settings)
    assert isinstance(app.state.metrics_backend, PrometheusBackend)
    app.state.metrics_backend.close()
    app.state.gpufleet.engine.dispose()


@pytest.mark.e2e
def test_the_sdk_reads_prometheus_metrics_from_a_real_server(database_url, prom, tmp_path, t0):
    engine = create_store_engine(Settings(database_url=database_url))
    upgrade(engine)
    ids = seed_workloads(engine)
    engine.dispose()
    env = {
        "GPUFLEET_PROMETHEUS_URL": prom.url,
        "GPUFLEET_PROMETHEUS_SCRAPE_INTERVAL_SECONDS": str(data.SCRAPE_SECONDS),
        "GPUFLEET_PROMETHEUS_GPU_NAMESPACE_LABEL": "exported_namespace",
        "GPUFLEET_PROMETHEUS_GPU_POD_LABEL": "exported_pod",
    }
    with ServerProcess(database_url, extra_env=env, log_dir=tmp_path) as server:
        config = Configuration(
            client_id=ADMIN_ID, client_secret=ADMIN_SECRET, runai_base_url=server.base_url
        )
        with RunaiClient(ApiClient(config)) as sdk:
            api = sdk.workloads.workloads
            start = datetime.fromtimestamp(t0 + WINDOW[0], tz=UTC)
            end = datetime.fromtimestamp(t0 + WINDOW[1], tz=UTC)
            train = api.get_workload_metrics(
                ids["train"], ["GPU_UTILIZATION", "GPU_ALLOCATION"], start, end, 20
            ).data
            llm = api.get_workload_metrics(
                ids["llm"], [t.value for t in NIM_EXPRESSIONS], start, end, 20
            ).data
    gpus = [m for m in train["measurements"] if m["type"] == "GPU_UTILIZATION"]
    assert [m["labels"] for m in gpus] == [{"gpu": "0"}, {"gpu": "1"}]
    (allocation,) = [m for m in train["measurements"] if m["type"] == "GPU_ALLOCATION"]
    assert {v["value"] for v in allocation["values"]} == {"4"}
    assert {m["type"] for m in llm["measurements"]} == {
        t.value for t in NIM_EXPRESSIONS if not METRIC_TYPES[t].is_histogram_shaped
    }
    assert all(len(m["values"]) == 20 for m in llm["measurements"])
    assert {h["type"] for h in llm["histogram"]} == {
        t.value for t in NIM_EXPRESSIONS if METRIC_TYPES[t].is_histogram_shaped
    }
