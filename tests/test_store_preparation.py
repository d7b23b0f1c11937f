"""Replicas starting together on a new database: one prepares it, the others wait their turn.

Preparation (migrations, the first signing key, the administrator) spans several transactions;
a lock taken around all of it (an advisory lock on PostgreSQL, a file lock beside a SQLite
file) makes two servers started at the same moment both come up on one schema with one key.
Also: SQLite runs with the configured ``synchronous`` mode, FULL unless told otherwise.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import sqlalchemy as sa

from gpufleet.settings import Settings
from gpufleet.store.engine import create_store_engine
from tests.support.databases import DATABASE
from tests.support.server import ServerProcess


@pytest.fixture
def new_database_url(request, tmp_path):
    """An empty database: nothing migrated, no key, no administrator."""
    if DATABASE == "sqlite":
        yield f"sqlite:///{tmp_path / 'new.db'}"
        return
    server = request.getfixturevalue("postgres_server")
    name = f"new_{os.getpid()}"
    yield server.create_database(name)
    server.drop_database(name)


def test_two_servers_starting_together_prepare_one_store(new_database_url, tmp_path):
    servers = [ServerProcess(new_database_url, log_dir=tmp_path) for _ in range(2)]
    try:
        with ThreadPoolExecutor(2) as pool:
            for started in [pool.submit(server.start) for server in servers]:
                started.result()
        assert all(server.running for server in servers)
        engine = sa.create_engine(new_database_url)
        with engine.connect() as conn:
            keys = conn.execute(sa.text("SELECT count(*) FROM signing_keys")).scalar_one()
            admins = conn.execute(
                sa.text("SELECT count(*) FROM access_keys WHERE client_id = :id"),
                {"id": servers[0].admin_id},
            ).scalar_one()
        engine.dispose()
        assert (keys, admins) == (1, 1)
        # A token from one replica is accepted by the other: they share the one key.
        token = servers[0].token()
        for server in servers:
            response = httpx.get(
                server.base_url + "/api/v1/workloads/count",
                headers={"Authorization": f"Bearer {token}"},
            )
            assert response.status_code == 200
    finally:
        for server in servers:
            server.stop()


@pytest.mark.parametrize(("mode", "level"), [(None, 2), ("NORMAL", 1), ("EXTRA", 3)])
def test_sqlite_runs_with_the_configured_synchronous_mode(tmp_path, mode, level):
    options = {} if mode is None else {"sqlite_synchronous": mode}
    url = f"sqlite:///{tmp_path / 'any.db'}"
    engine = create_store_engine(Settings(database_url=url, **options))
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar_one() == level
    engine.dispose()
