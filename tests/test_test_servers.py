"""The servers the tests start find a port of their own when the one they picked was taken.

Two xdist workers can pick the same free port; the later server cannot listen, and until it
gives up the earlier one answers on that port. Here the port is taken on purpose, by a socket
that answers every request as a ready server would.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import psycopg
import pytest

from tests.support import prometheus as data
from tests.support.ports import listens_on
from tests.support.postgres import PostgresServer

# One pass is enough: the servers are the same whichever database the pass runs on.
pytestmark = pytest.mark.sqlite_pass


class _Ready(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def taken_port() -> Iterator[int]:
    squatter = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ready)
    thread = threading.Thread(target=squatter.serve_forever, daemon=True)
    thread.start()
    yield squatter.server_address[1]
    squatter.shutdown()
    squatter.server_close()


def test_postgres_moves_to_another_port(taken_port):
    server = PostgresServer()
    try:
        server.port = taken_port
        server.initdb()
        server.start()
        assert server.port != taken_port
        assert listens_on(server.process.pid, server.port) is not False
        with psycopg.connect(server.dsn("postgres")) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        server.destroy()


def test_prometheus_moves_to_another_port(taken_port, tmp_path):
    if not data.prometheus_available():
        pytest.fail("prometheus is required (Debian package 'prometheus')")
    server = data.PrometheusServer(tmp_path / "tsdb", tmp_path)
    server.port = taken_port
    try:
        server.start()
        assert server.port != taken_port
        assert server.url.endswith(f":{server.port}")
        assert server.query("vector(1)")[0]["value"][1] == "1"
    finally:
        server.stop()
