"""Run the real ``gpufleet serve`` process for end-to-end tests.

``ServerProcess`` starts the server as a subprocess (``python -m gpufleet.cli serve``) on a free
loopback port, waits until ``/readyz`` answers, and stops it again, also when the test fails.
Everything the process prints goes to a log file whose tail is shown when it fails to start::

    with ServerProcess(database_url, demo=True) as server:
        httpx.get(server.base_url + "/api/v1/workloads", headers=server.auth_headers())

The fixtures ``start_server`` and ``live_server`` in ``tests/conftest.py`` wrap it for tests.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from gpufleet.core.exit_codes import ExitCode
from tests.support.databases import ADMIN_ID, ADMIN_SECRET
from tests.support.ports import PORT_ATTEMPTS, free_port, listens_on

STARTUP_TIMEOUT_SECONDS = 120.0
STOP_TIMEOUT_SECONDS = 15.0
_LOG_TAIL_CHARS = 4000


class ServerStartError(RuntimeError):
    """The server exited or never became ready; the message carries the end of its log."""


class ServerProcess:
    """One ``gpufleet serve`` subprocess on ``database_url``.

    ``demo`` adds ``--demo`` (seeding the demo organisation into an empty store) with
    ``demo_workloads`` workloads when given; ``args`` are extra command-line arguments and
    ``extra_env`` extra environment variables (``GPUFLEET_*`` settings, for instance). The
    administrator is ``admin_id``/``admin_secret``. Inherited ``GPUFLEET_*`` variables are
    dropped so the caller alone decides the configuration.
    """

    def __init__(
        self,
        database_url: str,
        *,
        demo: bool = False,
        demo_workloads: int | None = None,
        args: Sequence[str] = (),
        extra_env: Mapping[str, str] | None = None,
        admin_id: str = ADMIN_ID,
        admin_secret: str = ADMIN_SECRET,
        log_dir: Path | None = None,
        startup_timeout: float = STARTUP_TIMEOUT_SECONDS,
    ) -> None:
        self.database_url = database_url
        self.demo = demo
        self.demo_workloads = demo_workloads
        self.args = tuple(args)
        self.extra_env = dict(extra_env or {})
        self.admin_id = admin_id
        self.admin_secret = admin_secret
        self.startup_timeout = startup_timeout
        self.port = 0
        self.log_path = Path(log_dir or tempfile.mkdtemp(prefix="gpufleet-server-")) / (
            f"server-{os.getpid()}-{id(self):x}.log"
        )
        self.process: subprocess.Popen | None = None
        self._log_offset = 0

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``, without a trailing slash."""
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        """The exact command line the server is started with."""
        command = [sys.executable, "-m", "gpufleet.cli", "serve"]
        command += ["--host", "127.0.0.1", "--port", str(self.port)]
        if self.demo:
            command.append("--demo")
            if self.demo_workloads is not None:
                command += ["--demo-workloads", str(self.demo_workloads)]
        return command + list(self.args)

    def environment(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("GPUFLEET_")}
        env.update(
            GPUFLEET_DATABASE_URL=self.database_url,
            GPUFLEET_ADMIN_CLIENT_ID=self.admin_id,
            GPUFLEET_ADMIN_CLIENT_SECRET=self.admin_secret,
            PYTHONUNBUFFERED="1",
        )
        env.update(self.extra_env)
        return env

    def start(self) -> ServerProcess:
        """Start the process and block until it listens and ``/readyz`` answers 200.

        A start whose port another worker's server took first is tried again on another port
        (``PORT_ATTEMPTS``).
        """
        if self.process is not None:
            raise RuntimeError("the server is already running")
        attempts_left = PORT_ATTEMPTS
        while True:
            attempts_left -= 1
            self.port = free_port()
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.log_path, "ab") as log:
                # The log may hold earlier starts' lines; this start's begin here.
                self._log_offset = log.tell()
                self.process = subprocess.Popen(
                    self.command(),
                    env=self.environment(),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            try:
                self._wait_ready()
                return self
            except ServerStartError:
                again = attempts_left > 0 and self._lost_its_port()
                self.stop()
                if not again:
                    raise
            except BaseException:
                self.stop()
                raise

    def _lost_its_port(self) -> bool:
        return (
            self.process is not None
            and self.process.poll() == ExitCode.CANNOT_LISTEN
            and f"cannot listen on 127.0.0.1:{self.port}" in self._output_of_this_start()
        )

    def _output_of_this_start(self) -> str:
        try:
            with open(self.log_path, "rb") as log:
                log.seek(self._log_offset)
                return log.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def _listens(self) -> bool:
        """Whether this process, not another that took the port first (another worker's
        server), is the one listening: told by ``/proc`` where there is one, else by this
        start's log (which says so only at log level info or below)."""
        assert self.process is not None
        holds = listens_on(self.process.pid, self.port)
        if holds is not None:
            return holds
        return f"listening on {self.base_url}" in self._output_of_this_start()

    def _wait_ready(self) -> None:
        # Ready once this process listens: until then a server that took the port first
        # could be the one answering /readyz.
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise ServerStartError(self._failure("exited before it was ready"))
            try:
                answer = httpx.get(self.base_url + "/readyz", timeout=2.0)
                if answer.status_code == 200 and self._listens():
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise ServerStartError(self._failure(f"was not ready after {self.startup_timeout:.0f}s"))

    def _failure(self, what: str) -> str:
        code = None if self.process is None else self.process.poll()
        return (
            f"gpufleet serve {what} (exit code {code}); log {self.log_path}:\n"
            f"{self.output()[-_LOG_TAIL_CHARS:]}"
        )

    def stop(self) -> int | None:
        """Stop the process (SIGTERM, then SIGKILL); returns its exit code."""
        process, self.process = self.process, None
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def output(self) -> str:
        """Everything the process has printed so far."""
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def token(self, client_id: str | None = None, client_secret: str | None = None) -> str:
        """A fresh access token (the administrator's unless other credentials are given)."""
        response = httpx.post(
            self.base_url + "/api/v1/token",
            json={
                "grantType": "client_credentials",
                "clientID": client_id or self.admin_id,
                "clientSecret": client_secret or self.admin_secret,
            },
            timeout=30.0,
        )
        response.raise_for_status()
        return response.json()["accessToken"]

    def auth_headers(self) -> dict[str, str]:
        """An ``Authorization`` header carrying a fresh administrator token."""
        return {"Authorization": f"Bearer {self.token()}"}

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()
