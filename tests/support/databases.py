"""The test database: which engine the suite runs on, and fresh databases on it.

``GPUFLEET_TEST_DATABASE`` picks ``sqlite`` (default) or ``postgresql`` (a server the fixtures
start). Every fixture that needs a database of its own asks ``fresh_database`` for one.
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ADMIN_ID = "test-admin"
ADMIN_SECRET = "test-admin-secret"
DATABASE = os.environ.get("GPUFLEET_TEST_DATABASE", "sqlite")
if DATABASE not in ("sqlite", "postgresql"):
    raise RuntimeError(f"GPUFLEET_TEST_DATABASE must be sqlite or postgresql, not {DATABASE!r}")

_counter = itertools.count()


@contextmanager
def fresh_database(
    request: pytest.FixtureRequest, directory: Path, *, migrated: bool = True
) -> Iterator[str]:
    """The URL of a new database, a copy of the migrated template or empty; dropped after.

    A SQLite database is a file in ``directory``; a PostgreSQL one lives on the session's server.
    """
    if DATABASE == "sqlite":
        target = directory / "gpufleet.db"
        if migrated:
            shutil.copyfile(request.getfixturevalue("sqlite_template"), target)
        yield f"sqlite:///{target}"
        return
    server = request.getfixturevalue("postgres_server")
    name = f"t{os.getpid()}_{next(_counter)}"
    try:
        yield server.create_database(name, template="gpufleet_template" if migrated else None)
    finally:
        server.drop_database(name)
