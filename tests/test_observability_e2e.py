"""A real ``gpufleet serve`` process as an operator runs it: JSON logs and a metrics port that a
real Prometheus scrapes."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support import prometheus as prometheus_support
from tests.support.ports import free_port
from tests.support.server import ADMIN_ID, ServerProcess

pytestmark = pytest.mark.e2e
WAIT_SECONDS = 60.0


@pytest.fixture(scope="module")
def metrics_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def server(module_database_url, metrics_port, tmp_path_factory) -> Iterator[ServerProcess]:
    args = ["--log-format", "json", "--metrics-port", str(metrics_port)]
    with ServerProcess(
        module_database_url, args=args, log_dir=tmp_path_factory.mktemp("server")
    ) as process:
        yield process


@pytest.fixture(scope="module")
def prometheus(
    metrics_port, server, tmp_path_factory
) -> Iterator[prometheus_support.PrometheusServer]:
    if not prometheus_support.prometheus_available():
        pytest.fail("prometheus is required (Debian package 'prometheus')")
    workdir = tmp_path_factory.mktemp("prometheus")
    (workdir / "tsdb").mkdir()
    scraper = prometheus_support.PrometheusServer(workdir / "tsdb", workdir)
    scraper.start(scrape_target=f"127.0.0.1:{metrics_port}")
    yield scraper
    scraper.stop()


def log_lines(server: ServerProcess) -> list[dict]:
    """Every line the server wrote, each parsed as JSON (a line that is not fails the test)."""
    return [json.loads(line) for line in server.output().splitlines() if line.strip()]


def test_prometheus_scrapes_the_metrics_port(server, prometheus):
    headers = server.auth_headers()
    for _ in range(3):
        response = httpx.get(server.base_url + "/api/v1/workloads", headers=headers)
        assert response.status_code == 200
    query = (
        'sum(gpufleet_http_requests_total{job="gpufleet",route="/api/v1/workloads",status="200"})'
    )
    deadline = time.monotonic() + WAIT_SECONDS
    result: list[dict] = []
    while time.monotonic() < deadline:
        result = prometheus.query(query)
        if result and float(result[0]["value"][1]) >= 3:
            break
        time.sleep(0.5)
    assert result and float(result[0]["value"][1]) == 3
    up = prometheus.query('up{job="gpufleet"}')
    assert [float(r["value"][1]) for r in up] == [1.0]


def test_metrics_are_on_their_own_port_only(server, metrics_port):
    assert httpx.get(server.base_url + "/metrics").status_code == 404
    on_port = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics")
    assert on_port.status_code == 200
    assert "gpufleet_db_pool_connections" in on_port.text
    assert httpx.get(f"http://127.0.0.1:{metrics_port}/api/v1/workloads").status_code == 404


def test_json_log_lines_carry_the_request_id(server):
    headers = {**server.auth_headers(), "X-Request-Id": "trace-4f2a-e2e"}
    missing = httpx.get(
        server.base_url + "/api/v1/workloads/00000000-0000-4000-8000-000000000000", headers=headers
    )
    assert missing.status_code == 404
    assert missing.headers["X-Request-Id"] == "trace-4f2a-e2e"
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        mine = [line for line in log_lines(server) if line.get("request_id") == "trace-4f2a-e2e"]
        if mine:
            break
        time.sleep(0.1)
    [access] = mine
    assert access["logger"] == "gpufleet.access"
    assert access["level"] == "info"
    assert access["route"] == "/api/v1/workloads/{workloadId}"
    assert access["status"] == 404
    assert access["client_id"] == ADMIN_ID
    assert access["duration_ms"] >= 0
    assert {"time", "message"} <= set(access)


def test_every_line_is_json_with_the_common_fields(server):
    lines = log_lines(server)
    assert lines
    for line in lines:
        assert {"time", "level", "logger", "message"} <= set(line), line
    assert any(line["message"].startswith("gpufleet listening on") for line in lines)
