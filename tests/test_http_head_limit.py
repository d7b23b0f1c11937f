"""A request head larger than 16 KiB is refused with 431 before the app sees it, and one that
does not arrive in time with 408; heads within the bounds, bodies of any allowed size,
keep-alive and pipelined requests are served as usual.

Through a real server over raw sockets: the bound lives in the HTTP protocol (llhttp would
otherwise buffer a head of any size), so only bytes on a connection can show it.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import time

import pytest

from gpufleet.api.http_protocol import MAX_HEAD_BYTES
from tests.support.databases import ADMIN_ID, ADMIN_SECRET
from tests.support.server import ServerProcess

HEAD_TIMEOUT = 1.0


def _connect(server) -> socket.socket:
    host, port = server.base_url.removeprefix("http://").split(":")
    conn = socket.create_connection((host, int(port)), timeout=10)
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return conn


def _head(path: str, header_bytes: int = 0, extra: str = "") -> bytes:
    """A GET head of about ``header_bytes`` bytes in total (a padding header fills it)."""
    head = f"GET {path} HTTP/1.1\r\nhost: test\r\n{extra}"
    padding = max(0, header_bytes - len(head) - len("x-padding: \r\n\r\n"))
    return (head + f"x-padding: {'a' * padding}\r\n\r\n").encode()


class _Responses:
    """Responses read one by one from a connection (several may arrive in one read)."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self.buffer = b""

    def _more(self) -> None:
        chunk = self.conn.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed after {self.buffer!r}")
        self.buffer += chunk

    def next(self) -> tuple[int, dict[str, str], bytes]:
        """Status, headers and the body of the next response (its content-length)."""
        while b"\r\n\r\n" not in self.buffer:
            self._more()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {
            k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)
        }
        length = int(headers.get("content-length", "0"))
        while len(self.buffer) < length:
            self._more()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return int(status_line.split()[1]), headers, body


def _closed(conn: socket.socket) -> bool:
    try:
        return conn.recv(1) == b""
    except ConnectionResetError:
        return True


@pytest.mark.parametrize("piece", [None, 1000, 7])
def test_a_head_over_the_bound_is_refused_431_and_the_connection_closed(module_server, piece):
    wire = _head("/healthz", MAX_HEAD_BYTES + 4096)
    with _connect(module_server) as conn:
        pieces = (
            [wire] if piece is None else [wire[i : i + piece] for i in range(0, len(wire), piece)]
        )
        try:
            for part in pieces:
                conn.sendall(part)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before everything was sent: the answer is already waiting
        status, headers, body = _Responses(conn).next()
        assert status == 431
        assert headers["connection"] == "close"
        error = json.loads(body)
        assert error["code"] == 431
        assert "16 KiB" in error["message"]
        assert _closed(conn)


def test_a_header_that_never_ends_is_refused_without_being_kept(module_server):
    # No end of line at all: llhttp alone would keep appending to one header value, and the
    # server would wait for the rest (the read below would time out).
    with _connect(module_server) as conn:
        try:
            conn.sendall(b"GET /healthz HTTP/1.1\r\nhost: test\r\nx-endless: ")
            for _ in range(50 * MAX_HEAD_BYTES // 4096):
                conn.sendall(b"a" * 4096)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused while sending
        try:
            status = _Responses(conn).next()[0]
        except ConnectionResetError:
            status = 431  # the answer was lost to the reset of the unread bytes
        assert status == 431


def test_heads_within_the_bound_are_served_on_one_connection(module_server):
    with _connect(module_server) as conn:
        # Each head just under the bound, one after the other on a kept-alive connection:
        # the bound applies to each head, not to the connection.
        responses = _Responses(conn)
        for _ in range(3):
            conn.sendall(_head("/healthz", MAX_HEAD_BYTES - 64))
            status, headers, _ = responses.next()
            assert status == 200
            assert headers.get("connection") != "close"


def test_pipelined_requests_in_one_write_are_all_answered(module_server):
    with _connect(module_server) as conn:
        conn.sendall(_head("/healthz", 200) * 3 + _head("/readyz", 9000))
        responses = _Responses(conn)
        assert [responses.next()[0] for _ in range(4)] == [200, 200, 200, 200]


def test_a_body_larger_than_the_bound_sent_with_its_head_is_not_a_head(module_server):
    # One write holding a small head and 200 KiB of body: only the head counts.
    body = json.dumps({"grantType": "client_credentials", "padding": "a" * 200_000}).encode()
    head = (
        "POST /api/v1/token HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    ).encode()
    with _connect(module_server) as conn:
        conn.sendall(head + body)
        status, _, answer = _Responses(conn).next()
    assert status not in (431, 500)
    assert json.loads(answer)["code"] == status


def _send_until_refused(conn: socket.socket, first: bytes, filler: bytes, limit: int) -> int:
    """Send ``first``, then ``filler`` until ``limit`` bytes or the server stops reading; the
    status of the answer (431 or 400 if the refusal's answer was lost to a reset: it is the
    only thing that resets these connections)."""
    try:
        conn.sendall(first)
        for _ in range(limit // len(filler)):
            conn.sendall(filler)
    except (BrokenPipeError, ConnectionResetError):
        pass
    try:
        return _Responses(conn).next()[0]
    except ConnectionResetError:
        return -1


def test_trailers_are_not_taken_for_headers(module_server):
    # A token sent after the body (a chunked body's trailer) does not authenticate.
    token = module_server.auth_headers()["Authorization"]
    wire = (
        b"GET /api/v1/workloads?limit=1 HTTP/1.1\r\nhost: test\r\n"
        b"transfer-encoding: chunked\r\n\r\n0\r\nauthorization: " + token.encode() + b"\r\n\r\n"
    )
    with _connect(module_server) as conn:
        conn.sendall(wire)
        status, _, body = _Responses(conn).next()
    assert status == 401, body
    # The same request with the token in its head is served.
    with _connect(module_server) as conn:
        conn.sendall(
            wire.replace(
                b"host: test\r\n", b"host: test\r\nauthorization: " + token.encode() + b"\r\n"
            )
        )
        assert _Responses(conn).next()[0] == 200


@pytest.mark.parametrize(
    ("first", "filler"),
    [
        # Endless trailers after a one-byte body.
        (b"1\r\na\r\n0\r\n", b"x-trailer: " + b"a" * 100 + b"\r\n"),
        # One trailer value that never ends.
        (b"1\r\na\r\n0\r\nx-endless: ", b"a" * 4096),
        # A chunk extension that never ends.
        (b"1;ext=", b"a" * 4096),
    ],
    ids=["many trailers", "endless trailer", "endless extension"],
)
def test_chunked_framing_and_trailers_are_bounded(module_server, first, filler):
    head = b"POST /api/v1/token HTTP/1.1\r\nhost: test\r\ntransfer-encoding: chunked\r\n\r\n"
    with _connect(module_server) as conn:
        status = _send_until_refused(conn, head + first, filler, 50 * MAX_HEAD_BYTES)
    assert status in (400, -1)


@pytest.mark.parametrize(("size", "count"), [(1024, 200), (1, 20_000)])
def test_a_chunked_body_of_many_chunks_is_read_whole(module_server, size, count):
    # Chunks of a kilobyte, and of one byte (more framing than data, as a client streaming
    # tiny pieces sends): neither is a run of framing without data.
    chunk = b"%x\r\n" % size + b"a" * size + b"\r\n"
    chunks = chunk * count + b"0\r\n\r\n"
    head = (
        b"POST /api/v1/token HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n"
        b"transfer-encoding: chunked\r\n\r\n"
    )
    with _connect(module_server) as conn:
        conn.sendall(head + chunks)
        status, _, body = _Responses(conn).next()
    # Read whole and refused by the app as the JSON it is not: not a framing refusal.
    assert status == 400
    assert "framing" not in json.loads(body)["message"]


def test_a_large_head_after_a_body_in_the_same_write_is_refused(module_server):
    body = b"a" * 20_000
    first = (
        b"POST /healthz HTTP/1.1\r\nhost: test\r\ncontent-length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )
    with _connect(module_server) as conn:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            conn.sendall(first + _head("/healthz", 5 * MAX_HEAD_BYTES))
        responses = _Responses(conn)
        statuses = []
        with contextlib.suppress(ConnectionError):
            while True:
                statuses.append(responses.next()[0])
    # The refusal is written at once, before or instead of the first request's answer (405:
    # /healthz takes no POST); the large head is never served.
    assert 431 in statuses
    assert set(statuses) <= {405, 431}, statuses


def test_a_head_sent_in_parts_after_another_request_is_counted_whole(module_server):
    second = _head("/healthz", 2 * MAX_HEAD_BYTES)
    with _connect(module_server) as conn:
        conn.sendall(_head("/healthz", 200) + second[:MAX_HEAD_BYTES])
        responses = _Responses(conn)
        assert responses.next()[0] == 200
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            conn.sendall(second[MAX_HEAD_BYTES:])
        assert responses.next()[0] == 431


def _statuses_until_closed(conn: socket.socket) -> list[int]:
    responses = _Responses(conn)
    statuses = []
    with contextlib.suppress(ConnectionError):
        while True:
            statuses.append(responses.next()[0])
    return statuses


def test_trailers_after_much_data_are_bounded_still(module_server):
    # Data the app never reads (a GET answers without it) does not buy room for trailers.
    head = b"GET /healthz HTTP/1.1\r\nhost: test\r\ntransfer-encoding: chunked\r\n\r\n"
    data = (b"1000\r\n" + b"a" * 4096 + b"\r\n") * 64
    with _connect(module_server) as conn:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            conn.sendall(head + data + b"0\r\nx-endless: ")
            for _ in range(200 * 1024 // 4096):  # less than the data sent before it
                conn.sendall(b"a" * 4096)
        statuses = _statuses_until_closed(conn)
    # The GET's own answer comes first, then the refusal (lost when the refused connection is
    # reset under the bytes still arriving); unrefused, the read above would time out.
    assert statuses in ([200, 400], [200], []), statuses


# _head writes two headers with the optional space after the colon, which is not counted.
@pytest.mark.parametrize("size", [MAX_HEAD_BYTES + 3, MAX_HEAD_BYTES + 3000, 20_300])
def test_a_head_pipelined_behind_a_request_is_measured_whole(module_server, size):
    with _connect(module_server) as conn:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            conn.sendall(_head("/healthz", 100) + _head("/healthz", size))
        statuses = _statuses_until_closed(conn)
    assert 431 in statuses
    assert statuses.count(200) <= 1, statuses  # the first request only


def test_a_head_at_the_bound_then_a_chunked_body_in_pieces_is_served(module_server):
    extra = "transfer-encoding: chunked\r\ncontent-type: application/json\r\n"
    head = b"POST" + _head("/api/v1/token", MAX_HEAD_BYTES - 1, extra=extra).removeprefix(b"GET")
    assert len(head) == MAX_HEAD_BYTES
    with _connect(module_server) as conn:
        conn.sendall(head)
        for piece in (b"2\r\n", b"{}\r\n", b"0\r\n", b"\r\n"):
            time.sleep(0.05)
            conn.sendall(piece)
        status, _, body = _Responses(conn).next()
    assert status == 400  # the app's answer to an empty grant, not a framing refusal
    assert "framing" not in json.loads(body)["message"]


def test_nothing_after_an_upgrade_request_is_parsed(module_server):
    # llhttp skips the body of a request asking for an upgrade; what the body holds must not
    # be served as requests of their own.
    smuggled = b"GET /api/v1/smuggled HTTP/1.1\r\nhost: test\r\n\r\n"

    def head(length: int) -> bytes:
        return (
            b"POST /healthz HTTP/1.1\r\nhost: test\r\nconnection: upgrade\r\nupgrade: foo\r\n"
            b"content-length: %05d\r\n\r\n" % length
        )

    # The request to smuggle ends the body, and begins where a parser fed 4 KiB at a time
    # would take it up.
    body = b"a" * (4096 - len(head(0))) + smuggled
    with _connect(module_server) as conn:
        conn.sendall(head(len(body)) + body)
        statuses = _statuses_until_closed(conn)
    assert len(statuses) == 1, statuses  # the request's own answer, then the connection closes


@pytest.mark.parametrize("headers", [1, 500])
def test_a_head_at_the_bound_without_optional_spaces_is_served(module_server, headers):
    # "name:value" is as valid as "name: value"; the head is measured from what it holds.
    lines = "".join(f"x-{n:04d}:v\r\n" for n in range(headers - 1))
    head = f"GET /healthz HTTP/1.1\r\nhost:test\r\n{lines}x-padding:".encode()
    head += b"a" * (MAX_HEAD_BYTES - len(head) - 4) + b"\r\n\r\n"
    assert len(head) == MAX_HEAD_BYTES
    with _connect(module_server) as conn:
        conn.sendall(head)
        assert _Responses(conn).next()[0] == 200


@pytest.fixture(scope="module")
def impatient_server(module_database_url, tmp_path_factory):
    """A server giving a head one second, and a body ten."""
    env = {
        "GPUFLEET_HEAD_READ_TIMEOUT_SECONDS": str(HEAD_TIMEOUT),
        "GPUFLEET_BODY_READ_TIMEOUT_SECONDS": "10",
    }
    log_dir = tmp_path_factory.mktemp("head-timeout")
    with ServerProcess(module_database_url, extra_env=env, log_dir=log_dir) as process:
        yield process


def _trickle(conn: socket.socket, wire: bytes, seconds: float) -> bool:
    """Send ``wire`` a byte at a time over about ``seconds``; True if the server answered or
    closed before all of it was sent (sending stops as soon as there is something to read)."""
    pause = seconds / len(wire)
    for byte in wire:
        if select.select([conn], [], [], pause)[0]:
            return True
        try:
            conn.sendall(bytes([byte]))
        except (BrokenPipeError, ConnectionResetError):
            return True
    return False


def test_a_connection_that_sends_nothing_is_closed_when_the_head_time_runs_out(
    impatient_server,
):
    with _connect(impatient_server) as conn:
        began = time.monotonic()
        assert _closed(conn)  # the socket's own timeout is 10 s: it raises if nothing happens
        assert time.monotonic() - began >= HEAD_TIMEOUT * 0.9


def _timed_out(conn: socket.socket) -> None:
    status, headers, body = _Responses(conn).next()
    assert status == 408
    assert headers["connection"] == "close"
    assert json.loads(body) == {
        "code": 408,
        "message": "The request's headers did not arrive in time.",
    }
    assert _closed(conn)


def test_a_trickled_head_is_answered_408_and_closed(impatient_server):
    wire = _head("/healthz", 200)
    with _connect(impatient_server) as conn:
        began = time.monotonic()
        assert _trickle(conn, wire, HEAD_TIMEOUT * 4)
        assert time.monotonic() - began < HEAD_TIMEOUT * 3
        _timed_out(conn)


def _in_two_parts(conn: socket.socket, wire: bytes, seconds: float) -> bool:
    """Send half of ``wire``, then the rest ``seconds`` later; True if the server answered or
    closed meanwhile. One pause, not one per byte: on a loaded machine each of a trickle's
    pauses oversleeps, and a trickle meant to take half the head time took all of it."""
    half = len(wire) // 2
    conn.sendall(wire[:half])
    if select.select([conn], [], [], seconds)[0]:
        return True
    conn.sendall(wire[half:])
    return False


def test_each_request_on_a_kept_alive_connection_has_the_whole_time_for_its_head(
    impatient_server,
):
    wire = _head("/healthz", 60)
    with _connect(impatient_server) as conn:
        responses = _Responses(conn)
        # Each head arrives in parts over half the time, the whole exchange longer than it.
        for _ in range(3):
            assert not _in_two_parts(conn, wire, HEAD_TIMEOUT / 2)
            assert responses.next()[0] == 200
        time.sleep(HEAD_TIMEOUT / 2)
        assert _trickle(conn, wire, HEAD_TIMEOUT * 4)
        _timed_out(conn)


def test_a_body_may_take_longer_than_the_head(impatient_server):
    body = json.dumps(
        {"grantType": "client_credentials", "clientID": ADMIN_ID, "clientSecret": ADMIN_SECRET}
    ).encode()
    head = (
        b"POST /api/v1/token HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\n\r\n" % len(body)
    )
    with _connect(impatient_server) as conn:
        conn.sendall(head)
        assert not _trickle(conn, body, HEAD_TIMEOUT * 2)
        status, _, answer = _Responses(conn).next()
        assert status == 200, answer
        assert json.loads(answer)["accessToken"]
