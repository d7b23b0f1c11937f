"""Every failure leaves the server in the reference Error shape, with the right status."""

from __future__ import annotations

import shutil
import signal

import pytest
from fastapi.testclient import TestClient

from gpufleet.api.app import create_app
from gpufleet.settings import Settings
from tests.support.databases import ADMIN_ID, ADMIN_SECRET
from tests.support.postgres import start_postgres
from tests.support.shared_app import admin_client

SECRET_DETAIL = "internal-detail-/etc/gpufleet/secret.key"


def _assert_error(response, code: int) -> dict:
    assert response.status_code == code, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) <= {"code", "message", "details"}
    assert body["code"] == code
    assert isinstance(body["message"], str)
    assert body["message"]
    return body


@pytest.mark.parametrize(
    ("method", "path", "code"),
    [
        ("GET", "/api/v1/nothing-here", 404),
        ("GET", "/api/v2/workloads", 404),
        ("GET", "/api/v1/workloads/count/extra", 404),
        ("DELETE", "/api/v1/workloads", 405),
        ("POST", "/api/v1/workloads/count", 405),
        ("PUT", "/api/v1/workloads/00000000-0000-0000-0000-000000000000", 405),
        ("GET", "/api/v1/token", 405),
    ],
)
def test_unknown_routes_and_methods(client, method, path, code):
    _assert_error(client.request(method, path), code)


def test_unexpected_errors_are_500_without_internals(app, client):
    def explode():
        raise RuntimeError(SECRET_DETAIL)

    app.add_api_route("/api/v1/explode", explode)
    response = client.get("/api/v1/explode")
    body = _assert_error(response, 500)
    assert SECRET_DETAIL not in response.text
    assert "RuntimeError" not in response.text
    assert "Traceback" not in response.text
    assert body["message"] == "Something went wrong."


def _assert_store_unavailable(client: TestClient, workload_id: str) -> None:
    for path in (
        "/api/v1/workloads",
        "/api/v1/workloads/count",
        f"/api/v1/workloads/{workload_id}",
    ):
        response = client.get(path)
        body = _assert_error(response, 503)
        for internal in ("sqlite", "psycopg", "SELECT", "127.0.0.1", "Traceback"):
            assert internal not in response.text, internal
        assert "unavailable" in body["message"]


WORKLOAD_ID = "6f1b1a86-8f3e-4b39-9d55-1d1c1b0f5a11"


def test_503_when_the_sqlite_directory_is_gone(tmp_path):
    directory = tmp_path / "store"
    directory.mkdir()
    settings = Settings(
        database_url=f"sqlite:///{directory / 'gpufleet.db'}",
        admin_client_id=ADMIN_ID,
        admin_client_secret=ADMIN_SECRET,
    )
    app = create_app(settings)
    with admin_client(app) as client:
        assert client.get("/api/v1/workloads").status_code == 200
        shutil.rmtree(directory)
        # Pooled connections would keep the deleted file open; new ones cannot open it.
        app.state.gpufleet.engine.dispose()
        _assert_store_unavailable(client, WORKLOAD_ID)
    app.state.gpufleet.engine.dispose()


def _crash(server) -> None:
    """Stop PostgreSQL the way an outage does: open sessions are cut, not waited for."""
    server.process.send_signal(signal.SIGINT)
    server.process.wait(timeout=30)
    server.process = None


def test_503_while_postgresql_is_stopped_and_recovery_after(tmp_path):
    server = start_postgres()
    try:
        url = server.create_database("outage")
        settings = Settings(
            database_url=url,
            admin_client_id=ADMIN_ID,
            admin_client_secret=ADMIN_SECRET,
            db_connect_timeout_seconds=2,
        )
        app = create_app(settings)
        with admin_client(app) as client:
            assert client.get("/api/v1/workloads").status_code == 200
            _crash(server)
            _assert_store_unavailable(client, WORKLOAD_ID)
            token = client.post(
                "/api/v1/token",
                json={
                    "grantType": "client_credentials",
                    "clientID": ADMIN_ID,
                    "clientSecret": ADMIN_SECRET,
                },
            )
            _assert_error(token, 503)
            server.start()
            assert client.get("/api/v1/workloads").status_code == 200
            assert client.get("/api/v1/workloads/count").json() == {"count": 0}
        app.state.gpufleet.engine.dispose()
    finally:
        server.destroy()
