"""Reporting how far a demo seeding run has got.

On a terminal it is a rich progress bar on stderr; when asked for progress without a terminal
(CI logs, pipes) it is a plain line on stderr every tenth of the way; otherwise log records.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

log = logging.getLogger("gpufleet.demo")


class SeedProgress(Protocol):
    def advance(self, done: int) -> None: ...

    def note(self, message: str) -> None: ...


class _Lines:
    """A line every tenth of the way, to stderr or to the log."""

    def __init__(self, total: int, *, to_stderr: bool) -> None:
        self._total = total
        self._done = 0
        self._reported = 0
        self._step = max(total // 10, 1)
        self._to_stderr = to_stderr

    def advance(self, done: int) -> None:
        self._done += done
        if self._done - self._reported >= self._step or self._done == self._total:
            self._reported = self._done
            self.note(f"seeded {self._done} of {self._total} demo workloads")

    def note(self, message: str) -> None:
        if self._to_stderr:
            print(message, file=sys.stderr, flush=True)
        else:
            log.info(message)


class _Bar:
    def __init__(self, bar, task) -> None:
        self._bar = bar
        self._task = task

    def advance(self, done: int) -> None:
        self._bar.advance(self._task, done)

    def note(self, message: str) -> None:
        self._bar.console.print(message)


@contextmanager
def seed_progress(show: bool, total: int) -> Iterator[SeedProgress]:
    """The reporter for one seeding run of ``total`` workloads."""
    from rich.console import Console

    console = Console(stderr=True)
    if not show or not console.is_terminal:
        yield _Lines(total, to_stderr=show)
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("seeding workloads"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console) as bar:
        yield _Bar(bar, bar.add_task("seed", total=total))
