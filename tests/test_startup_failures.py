"""A ``gpufleet serve`` that cannot start says why in exactly one line, with its own exit code.

Each case runs the real command in a subprocess and reads what an operator would see.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
import sqlalchemy as sa

from gpufleet.core.exit_codes import ExitCode
from tests.support.ports import free_port

pytestmark = pytest.mark.e2e


def gpufleet(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GPUFLEET_")}
    return subprocess.run(
        [sys.executable, "-m", "gpufleet.cli", *args],
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def serve(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return gpufleet("serve", "--host", "127.0.0.1", *args, env=env)


def assert_one_line(result: subprocess.CompletedProcess, code: ExitCode, *fragments: str):
    assert result.returncode == code, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert "listening" not in result.stdout + result.stderr


def test_port_in_use(database_url):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = serve("--port", port, "--database-url", database_url)
    assert_one_line(result, ExitCode.CANNOT_LISTEN, f"127.0.0.1:{port}", "in use")


def test_metrics_port_in_use(database_url):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = serve(
            "--port", str(free_port()), "--metrics-port", port, "--database-url", database_url
        )
    assert_one_line(result, ExitCode.CANNOT_LISTEN, f"127.0.0.1:{port}")


def test_database_unreachable():
    closed = free_port()
    url = f"postgresql+psycopg://gpufleet:secret@127.0.0.1:{closed}/gpufleet"
    result = serve("--port", str(free_port()), "--database-url", url)
    assert_one_line(result, ExitCode.DATABASE_UNREACHABLE, str(closed))


def test_sqlite_file_that_cannot_be_opened(tmp_path):
    url = f"sqlite:///{tmp_path}/no/such/directory/gpufleet.db"
    result = serve("--port", str(free_port()), "--database-url", url)
    assert_one_line(result, ExitCode.DATABASE_UNREACHABLE, "unable to open database file")


# The commands that work on the database directly fail as ``serve`` does. The database is a
# SQLite path whichever database the pass runs on, so one pass is enough.
@pytest.mark.sqlite_pass
@pytest.mark.parametrize(
    "command",
    [
        ["access", "bootstrap"],
        ["access", "restore-admin"],
        ["clusters", "register", "a", "--server-url", "http://s"],
        ["demo", "agent-keys"],
    ],
)
def test_database_commands_that_cannot_open_it(tmp_path, command):
    url = f"sqlite:///{tmp_path}/no/such/directory/gpufleet.db"
    admin = {"GPUFLEET_ADMIN_CLIENT_ID": "a", "GPUFLEET_ADMIN_CLIENT_SECRET": "x" * 32}
    result = gpufleet(*command, "--database-url", url, env=admin)
    assert_one_line(result, ExitCode.DATABASE_UNREACHABLE, "unable to open database file")


def test_database_refusing_credentials(postgres_server):
    # The test server trusts every local user it knows; an unknown role is refused.
    url = postgres_server.url("postgres").replace("://postgres@", "://intruder@", 1)
    assert "intruder@" in url
    result = serve("--port", str(free_port()), "--database-url", url)
    assert_one_line(result, ExitCode.DATABASE_CREDENTIALS_REFUSED, "intruder")


def test_schema_newer_than_the_code(database_url):
    engine = sa.create_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE alembic_version SET version_num = 'f00d0fa11ed5'"))
    finally:
        engine.dispose()
    result = serve("--port", str(free_port()), "--database-url", database_url)
    assert_one_line(result, ExitCode.SCHEMA_TOO_NEW, "f00d0fa11ed5")
    upgrade = subprocess.run(
        [sys.executable, "-m", "gpufleet.cli", "db", "upgrade", "--database-url", database_url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert_one_line(upgrade, ExitCode.SCHEMA_TOO_NEW, "f00d0fa11ed5")


@pytest.mark.parametrize(
    ("args", "env", "setting"),
    [
        (["--port", "70000"], {}, "setting port"),
        ([], {"GPUFLEET_LOG_LEVEL": "loud"}, "setting log_level"),
        (["--shutdown-timeout-seconds", "-1"], {}, "setting shutdown_timeout_seconds"),
        (["--port", "70000", "--log-format", "xml"], {}, "setting log_format"),
    ],
)
def test_bad_settings(database_url, args, env, setting):
    result = serve("--database-url", database_url, *args, env=env)
    assert_one_line(result, ExitCode.USAGE, setting)
