"""Free loopback ports for servers the tests start, and who listens on one."""

from __future__ import annotations

import os
import socket
from pathlib import Path

_LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp's state column
# A port is free when picked, but only until the server binds it: another xdist worker picking a
# port meanwhile gets the same one once in some 14,000 (the kernel hands ``bind`` the odd ports
# of its ephemeral range), and the later server cannot listen. Such a start is tried again on
# another port, this many times in all.
PORT_ATTEMPTS = 5


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bind_refused(output: str) -> bool:
    """Whether a server's output says it could not listen because its port was taken (the
    words of PostgreSQL, Prometheus and Go's net package alike)."""
    return "address already in use" in output.lower()


def _listening_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == _LISTEN:
                inodes.add(fields[9])
    return inodes


def _family(pid: int) -> list[int]:
    """``pid`` and its descendants (worker processes inherit the listening socket)."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                pending += [int(child) for child in task.read_text().split()]
            except OSError:
                continue
    return found


def listens_on(pid: int, port: int) -> bool | None:
    """Whether process ``pid`` (or a process it started) holds the listening socket of
    ``port``; None where ``/proc`` does not tell (not Linux)."""
    if not Path("/proc/net/tcp").exists():
        return None
    sockets = {f"socket:[{inode}]" for inode in _listening_inodes(port)}
    for member in _family(pid):
        try:
            fds = os.listdir(f"/proc/{member}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{member}/fd/{fd}") in sockets:
                    return True
            except OSError:
                continue
    return False
