"""Serving from several processes: ``gpufleet serve --workers N``.

The parent binds the listening sockets and prepares the store once, then forks N workers.
Each worker builds its own engine and app and accepts connections on the inherited sockets
(the kernel hands each connection to one of them). The parent serves nothing: it passes a
SIGTERM or SIGINT on to the workers (each drains and stops like a single server), starts a new
worker in place of one that died, and returns once all have stopped. Periodic tasks take a
database lease before each run (``metrics/tasks.py``), so N workers do that work once.

Workers live in their own process group, so a Ctrl-C reaches them once, through the parent;
a worker whose parent is gone stops by itself (``GracefulServer`` watches its parent).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable

log = logging.getLogger("gpufleet.server")
_STOPPING_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# A worker that keeps dying is restarted at most this often.
_RESTART_PAUSE_SECONDS = 1.0


class Workers:
    """The worker processes of one server; ``run_worker(index)`` serves until stopped."""

    def __init__(self, count: int, run_worker: Callable[[int], None]) -> None:
        self.count = count
        self._run_worker = run_worker
        self._pids: dict[int, int] = {}
        self._stopping = False

    def run(self) -> int:
        """Start every worker, keep them running until a signal, wait for all to stop."""
        previous = {sig: signal.signal(sig, self._stop) for sig in _STOPPING_SIGNALS}
        try:
            for index in range(self.count):
                self._start(index)
            log.info("serving from %d worker processes", self.count)
            while self._pids:
                try:
                    pid, status = os.wait()
                except ChildProcessError:
                    break
                self._exited(pid, status)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return 0

    def _exited(self, pid: int, status: int) -> None:
        index = self._pids.pop(pid, None)
        if index is None or self._stopping:
            return
        log.warning(
            "worker %d (process %d) exited with status %d; starting another",
            index,
            pid,
            os.waitstatus_to_exitcode(status),
        )
        time.sleep(_RESTART_PAUSE_SECONDS)
        if not self._stopping:
            self._start(index)

    def _start(self, index: int) -> None:
        pid = os.fork()
        if pid:
            self._pids[pid] = index
            return
        code = 1
        try:
            os.setpgid(0, 0)
            for sig in _STOPPING_SIGNALS:
                signal.signal(sig, signal.SIG_DFL)
            self._run_worker(index)
            code = 0
        except BaseException:
            log.exception("worker %d failed", index)
        finally:
            # Never return into the parent's code: the worker ends here.
            os._exit(code)

    def _stop(self, sig: int, _frame) -> None:
        self._stopping = True
        log.info("stopping %d workers", len(self._pids))
        for pid in list(self._pids):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
