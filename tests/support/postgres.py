"""A throwaway PostgreSQL server: initdb into a temporary directory, a free loopback port.

Used by the test suite (``GPUFLEET_TEST_DATABASE=postgresql``) and by the benchmarks. The
binaries come from the Debian ``postgresql`` package, which the README test command installs.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

from tests.support.ports import PORT_ATTEMPTS, bind_refused, free_port, listens_on


def find_bin(name: str) -> str:
    on_path = shutil.which(name)
    if on_path:
        return on_path
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    if candidates:
        return candidates[0]
    raise RuntimeError(
        f"PostgreSQL binary {name!r} not found; install the Debian 'postgresql' package "
        "(the README test command does this)"
    )


def _as_postgres_user() -> dict:
    """initdb and postgres refuse to run as root; drop to the 'postgres' user when we are root."""
    if os.geteuid() != 0:
        return {}
    import pwd

    entry = pwd.getpwnam("postgres")
    return {"user": entry.pw_uid, "group": entry.pw_gid}


class PostgresServer:
    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="gpufleet-pg-"))
        self.data = self.directory / "data"
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self._user = _as_postgres_user()
        if self._user:
            os.chown(self.directory, self._user["user"], self._user["group"])

    def initdb(self) -> None:
        subprocess.run(
            [
                find_bin("initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            **self._user,
        )

    def start(self) -> None:
        """Start on the server's port (the same one again after ``stop``), or on another when
        another worker's server took it before this one bound it."""
        for attempt in range(PORT_ATTEMPTS):
            if attempt:
                self.port = free_port()
            log_path = self.directory / "postgres.log"
            offset = log_path.stat().st_size if log_path.exists() else 0
            with open(log_path, "ab") as log:
                self.process = subprocess.Popen(
                    [
                        find_bin("postgres"),
                        "-D",
                        str(self.data),
                        "-p",
                        str(self.port),
                        "-c",
                        "listen_addresses=127.0.0.1",
                        "-c",
                        f"unix_socket_directories={self.directory}",
                        "-c",
                        "fsync=off",
                        "-c",
                        "synchronous_commit=off",
                        "-c",
                        "full_page_writes=off",
                        "-c",
                        "max_connections=200",
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    **self._user,
                )
            try:
                self.wait_ready()
                return
            except RuntimeError:
                exited = self.process.poll() is not None
                with open(log_path, "rb") as log:
                    log.seek(offset)
                    output = log.read().decode("utf-8", errors="replace")
                self.stop()
                if not (exited and bind_refused(output)) or attempt + 1 == PORT_ATTEMPTS:
                    raise

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Until this server (not another worker's on the same port) accepts connections."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"postgres exited; see {self.directory / 'postgres.log'}")
            try:
                with psycopg.connect(self.dsn("postgres"), connect_timeout=1):
                    if self.process is None or listens_on(self.process.pid, self.port) is not False:
                        return
            except psycopg.OperationalError:
                pass
            time.sleep(0.1)
        raise RuntimeError("postgres did not become ready")

    def stop(self, *, fast: bool = False) -> None:
        """Stop the server; ``fast`` ends open sessions at once (a clean, checkpointed stop).

        The default (SIGTERM, "smart" shutdown) waits for clients to disconnect first.
        """
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT if fast else signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def dsn(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str, template: str | None = None) -> str:
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            suffix = f" TEMPLATE {template}" if template else ""
            conn.execute(f'CREATE DATABASE "{name}"{suffix}')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def start_postgres() -> PostgresServer:
    server = PostgresServer()
    server.initdb()
    server.start()
    return server
