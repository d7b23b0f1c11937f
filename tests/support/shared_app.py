"""One app and database shared by a whole test module, for tests that only read.

Building a fresh migrated database per test costs far more than the read-only tests that use
it; modules whose tests never write build one with ``shared_app`` instead.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from gpufleet.api.app import create_app
from gpufleet.settings import Settings
from tests.conftest import ADMIN_ID, ADMIN_SECRET, DATABASE

_counter = itertools.count()


@contextmanager
def shared_app(
    request: pytest.FixtureRequest, tmp_path_factory, **settings: object
) -> Iterator[FastAPI]:
    """An app on its own fresh database (SQLite file or a database on the test PostgreSQL).

    ``settings`` are passed on to ``Settings`` next to the database URL and the test admin.
    """
    server = None
    if DATABASE == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('shared') / 'gpufleet.db'}"
    else:
        server = request.getfixturevalue("postgres_server")
        name = f"m{os.getpid()}_{next(_counter)}"
        url = server.create_database(name, template="gpufleet_template")
    app = create_app(
        Settings(
            database_url=url,
            admin_client_id=ADMIN_ID,
            admin_client_secret=ADMIN_SECRET,
            **settings,
        )
    )
    try:
        yield app
    finally:
        app.state.gpufleet.engine.dispose()
        if server is not None:
            server.drop_database(name)


def admin_client(app: FastAPI) -> TestClient:
    """A TestClient (not yet entered) carrying an administrator's bearer token."""
    client = TestClient(app, raise_server_exceptions=False)
    response = client.post(
        "/api/v1/token",
        json={
            "grantType": "client_credentials",
            "clientID": ADMIN_ID,
            "clientSecret": ADMIN_SECRET,
        },
    )
    assert response.status_code == 200, response.text
    client.headers["Authorization"] = f"Bearer {response.json()['accessToken']}"
    return client
