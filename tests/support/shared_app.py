"""One app and database shared by a whole test module, for tests that only read.

Building a fresh migrated database per test costs far more than the read-only tests that use
it; modules whose tests never write build one with ``shared_app`` instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from gpufleet.api.app import create_app
from gpufleet.settings import Settings
from tests.support.access import bearer, token_for
from tests.support.databases import ADMIN_ID, ADMIN_SECRET, fresh_database


@contextmanager
def shared_app(
    request: pytest.FixtureRequest, tmp_path_factory, **settings: object
) -> Iterator[FastAPI]:
    """An app on its own fresh database (SQLite file or a database on the test PostgreSQL).

    ``settings`` are passed on to ``Settings`` next to the database URL and the test admin.
    """
    with fresh_database(request, tmp_path_factory.mktemp("shared")) as url:
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


def admin_client(app: FastAPI) -> TestClient:
    """A TestClient (not yet entered) carrying an administrator's bearer token."""
    client = TestClient(app, raise_server_exceptions=False)
    client.headers.update(bearer(token_for(client, ADMIN_ID, ADMIN_SECRET)))
    return client
