"""Oversized and slow request bodies, to every endpoint, through the real server process.

Every operation of the OpenAPI document gets a declared-too-large body, a streamed 100 MB body
and, for a few, a trickled one, from an anonymous caller, a viewer and an administrator, all at
once. The server refuses each in the Error shape without reading more than its limit, answers
before reading anything where a token or a permission is missing, keeps ``/healthz`` answering
and its memory bounded.
"""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import orjson
import pytest

from tests.support.access import key_with_role
from tests.support.raw_http import Exchange, exchange, repeated
from tests.support.server import ServerProcess

MIB = 1024 * 1024
INGEST_LIMIT = 8 * MIB
DEFAULT_LIMIT = MIB
READ_TIMEOUT = 2
FLOOD = 100 * MIB
# Generous: bodies are cut at their limit, so a few concurrent ones cannot add this much.
RSS_GROWTH_BOUND = 400 * MIB
CHUNK = b'{"samples": [' + b" " * (256 * 1024 - 13)
PATH_VALUES = {
    "workloadId": "00000000-0000-4000-8000-000000000001",
    "clusterId": "00000000-0000-4000-8000-0000000000c1",
    "ruleId": "1",
}


@pytest.fixture(scope="module")
def server(module_database_url, tmp_path_factory):
    env = {
        "GPUFLEET_INGEST_MAX_BODY_BYTES": str(INGEST_LIMIT),
        "GPUFLEET_BODY_READ_TIMEOUT_SECONDS": str(READ_TIMEOUT),
    }
    log_dir = tmp_path_factory.mktemp("limits")
    with ServerProcess(module_database_url, extra_env=env, log_dir=log_dir) as process:
        yield process


@pytest.fixture(scope="module")
def callers(server) -> dict[str, dict[str, str]]:
    with httpx.Client(base_url=server.base_url, headers=server.auth_headers()) as admin:
        viewer = key_with_role(admin, "viewer", "tenant")
        agent = key_with_role(admin, "cluster-agent", "cluster", PATH_VALUES["clusterId"])
    return {"anonymous": {}, "viewer": viewer, "agent": agent, "admin": server.auth_headers()}


@pytest.fixture(scope="module")
def operations(server) -> list[tuple[str, str]]:
    document = httpx.get(server.base_url + "/openapi.json").json()
    found = []
    for template, methods in document["paths"].items():
        path = re.sub(r"\{(\w+)\}", lambda m: PATH_VALUES.get(m.group(1), "x"), template)
        found.extend((method.upper(), path) for method in methods)
    assert any(path.startswith("/api/v1/ingest/") for _, path in found)
    return found


def rss_bytes(server: ServerProcess) -> int:
    status = Path(f"/proc/{server.process.pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) * 1024


def limit_of(path: str) -> int:
    return INGEST_LIMIT if path.startswith("/api/v1/ingest/") else DEFAULT_LIMIT


def assert_error_shape(answer: Exchange) -> None:
    body = orjson.loads(answer.body)
    assert body["code"] == answer.status
    assert body["message"]


def flood(port: int, method: str, path: str, headers: dict[str, str]) -> Exchange:
    return exchange(
        port,
        method,
        path,
        headers=headers,
        chunks=repeated(CHUNK, FLOOD),
        chunked=True,
        reset_is_an_answer=True,
    )


def test_declared_oversized_bodies_are_refused_before_reading(server, callers, operations):
    for name, headers in callers.items():
        for method, path in operations:
            length = {"Content-Length": str(limit_of(path) + 1)}
            answer = exchange(server.port, method, path, headers={**headers, **length})
            assert answer.status == 413, (name, method, path, answer)
            assert_error_shape(answer)


def test_a_body_is_not_read_before_the_caller_may_send_it(server, callers, operations):
    """Anonymous callers get 401 and viewers their 403 on ingest with no body byte sent."""
    cases = [("anonymous", m, p) for m, p in operations if p.startswith("/api/v1/")]
    cases = [c for c in cases if c[2] != "/api/v1/token"]
    cases += [("viewer", m, p) for m, p in operations if p.startswith("/api/v1/ingest/")]
    for name, method, path in cases:
        # Nothing is sent until the server answers; it answers without the body.
        answer = exchange(
            server.port,
            method,
            path,
            headers={**callers[name], "Content-Length": str(limit_of(path))},
            chunks=[b" " * limit_of(path)],
            wait_for_answer=30,
        )
        expected = 401 if name == "anonymous" else 403
        assert answer.status == expected, (name, method, path, answer)
        assert answer.sent == 0
        assert_error_shape(answer)


def test_floods_and_trickles_leave_the_server_answering_with_bounded_memory(
    server, callers, operations
):
    before = rss_bytes(server)
    jobs = [(flood, (server.port, m, p, h)) for h in callers.values() for m, p in operations]
    trickle_targets = [
        ("POST", "/api/v1/token", {}),
        ("POST", "/api/v1/access-keys", callers["admin"]),
        ("POST", f"/api/v1/ingest/clusters/{PATH_VALUES['clusterId']}/workloads", callers["agent"]),
    ]
    peak, health = before, []
    with ThreadPoolExecutor(max_workers=6) as pool:
        floods = [pool.submit(job, *args) for job, args in jobs]
        slow = [
            pool.submit(
                exchange,
                server.port,
                method,
                path,
                headers={**headers, "Content-Length": "1000"},
                chunks=[b" "] * 1000,
                pause=0.2,
            )
            for method, path, headers in trickle_targets
        ]
        while not all(f.done() for f in floods + slow):
            health.append(httpx.get(server.base_url + "/healthz", timeout=60).status_code)
            peak = max(peak, rss_bytes(server))
            time.sleep(0.1)
    assert health
    assert set(health) == {200}
    assert peak - before < RSS_GROWTH_BOUND, (before, peak)
    for (_, (_, method, path, _)), future in zip(jobs, floods, strict=True):
        answer = future.result()
        assert answer.status < 500, (method, path, answer)
        assert answer.sent < FLOOD, (method, path)
        if answer.status >= 400:
            assert_error_shape(answer)
    for (method, path, _), future in zip(trickle_targets, slow, strict=True):
        answer = future.result()
        assert answer.status == 408, (method, path, answer)
        assert answer.sent < 1000
        assert_error_shape(answer)
