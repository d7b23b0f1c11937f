"""A hand-driven HTTP/1.1 exchange, for bodies no ordinary client would send.

``exchange`` writes the request head, then the body chunk by chunk (plain or chunked
transfer encoding, optionally pausing between chunks), and stops sending as soon as the server
has answered. It reports the status, the answer's body and how many body bytes were sent.
"""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Exchange:
    status: int
    body: bytes
    sent: int


def _answered(sock: socket.socket) -> bool:
    return bool(select.select([sock], [], [], 0)[0])


def _send_body(sock: socket.socket, chunks: Iterable[bytes], *, chunked: bool, pause: float) -> int:
    sent = 0
    try:
        for chunk in chunks:
            if _answered(sock):
                return sent
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
            sent += len(chunk)
            if pause:
                time.sleep(pause)
        if chunked and not _answered(sock):
            sock.sendall(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass
    return sent


def _read_answer(sock: socket.socket) -> tuple[int, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        piece = sock.recv(65536)
        if not piece:
            raise ConnectionError(f"connection closed after {data!r}")
        data += piece
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        piece = sock.recv(65536)
        if not piece:
            break
        body += piece
    return int(lines[0].split()[1]), body


def exchange(
    port: int,
    method: str,
    path: str,
    *,
    headers: Mapping[str, str] | None = None,
    chunks: Iterable[bytes] = (),
    chunked: bool = False,
    pause: float = 0.0,
    wait_for_answer: float = 0.0,
    timeout: float = 120.0,
    reset_is_an_answer: bool = False,
) -> Exchange:
    """Send one request to ``127.0.0.1:port`` and return the server's answer.

    With ``wait_for_answer``, the body is held back that long after the head, so a server
    that answers without the body is seen to have read none of it. With
    ``reset_is_an_answer``, a connection reset while reading the answer is returned as status
    0: a server that closes a connection with unread body bytes makes the kernel send a reset,
    which may discard its answer before the client reads it, so the answer itself is lost
    but how much of the body was sent still shows that the server stopped reading.
    """
    head = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
    head += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if chunked:
        head.append("Transfer-Encoding: chunked")
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        select.select([sock], [], [], wait_for_answer)
        sent = _send_body(sock, chunks, chunked=chunked, pause=pause)
        try:
            status, body = _read_answer(sock)
        except ConnectionResetError:
            if not reset_is_an_answer:
                raise
            status, body = 0, b""
    return Exchange(status, body, sent)


def repeated(chunk: bytes, total: int) -> Iterable[bytes]:
    """``total`` bytes as repetitions of ``chunk`` (the last one cut short)."""
    while total > 0:
        yield chunk[:total]
        total -= len(chunk)
