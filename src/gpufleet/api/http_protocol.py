"""The HTTP/1.1 protocol the server speaks: uvicorn's httptools protocol, with bounds on what
a request may send besides its body.

httptools (llhttp, in C) parses a request in a fraction of the time h11 (pure Python) takes,
a measurable share of a cheap request. h11 refuses a head (request line and headers) larger
than 16 KiB; llhttp keeps buffering one, and a chunked body's framing and trailers too, so a
client could send them until the server ran out of memory. This protocol feeds the parser what
arrives in slices and counts what is not body data:

* a head larger than ``MAX_HEAD_BYTES`` is answered 431 and the connection closed, before the
  app sees it: the parser never holds more than the bound and a slice of a head, and a
  complete head is measured from what it holds (its method, target and headers; optional
  whitespace, which is not kept, is left out);
* a chunked body may carry at most ``MAX_HEAD_BYTES`` of framing (chunk sizes, extensions) or
  trailers in a row, without data between; more is answered 400 and the connection closed;
* trailers are dropped: uvicorn would add them to the request's headers, where a header sent
  after the body (a token, a forwarded address) would pass for one of the head;
* after a request asking for a protocol upgrade (the server has no WebSocket endpoint), the
  connection closes with its answer and nothing more is parsed: llhttp skips such a request's
  body, which would otherwise be read as the requests that follow;
* a head must arrive whole within ``head_timeout_seconds`` of the connection opening or of its
  first byte: uvicorn bounds only the idle time after a response, so a client that connected
  and sent nothing, or trickled a head a byte at a time, held its connection for ever. A head
  begun is answered 408 and the connection closed; a connection that sent nothing is closed.

The bytes of a ``Content-Length`` body are fed as they come, uncounted (the app bounds the
body, see ``api/limits.py``).
"""

from __future__ import annotations

import asyncio

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# What h11 allows, and what proxies commonly allow (nginx's large_client_header_buffers is 4
# buffers of 8 KiB). A bearer token is about 700 bytes.
MAX_HEAD_BYTES = 16 * 1024
# What the parser is fed at a time while bytes are counted.
_SLICE = 4096
# A request line's spaces, version and line end, and the head's closing line end.
_REQUEST_LINE_AND_END = len(" HTTP/1.1\r\n") + 1 + 2
# A header's colon and line end (the space after the colon is optional).
_HEADER_FRAMING = 3


def _refusal(status: int, reason: str, message: str) -> bytes:
    body = orjson.dumps({"code": status, "message": message})
    return (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    ).encode() + body


_HEAD_TOO_LARGE = _refusal(
    431,
    "Request Header Fields Too Large",
    f"The request's headers are larger than {MAX_HEAD_BYTES // 1024} KiB.",
)
_HEAD_TOO_SLOW = _refusal(408, "Request Timeout", "The request's headers did not arrive in time.")
_FRAMING_TOO_LARGE = _refusal(
    400,
    "Bad Request",
    "The request's chunked body carries too long a run of framing or trailers.",
)


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` with the bounds of the module's docstring."""

    def __init__(self, *args, head_timeout_seconds: float = 30.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._head_timeout = head_timeout_seconds
        self._head_timer: asyncio.TimerHandle | None = None
        # Of the current request: bytes fed while counting (its head, a chunked body), the
        # body data among them, counted bytes since the last data, and what remains of a
        # Content-Length body (fed uncounted).
        self._counted = 0
        self._counted_data = 0
        self._since_data = 0
        self._body_left = 0
        self._head_done = False
        self._counting = False  # while a counted slice is being parsed
        self._finished = False  # refused, or after an upgrade request: parse nothing more
        self._refused = False  # answered by this protocol: the app sees nothing more

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._head_arrived()
        super().connection_lost(exc)

    def _await_head(self) -> None:
        """Start the head's clock, unless it already runs (a head's first byte keeps the time
        the connection opened with)."""
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self._head_timeout, self._head_timed_out)

    def _head_arrived(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if self.pipeline or (self.cycle is not None and not self.cycle.response_complete):
            # A request is being answered and reading may be paused until it is: the client
            # is not the one holding the head back.
            self._await_head()
        elif self._counted:
            self._refuse(_HEAD_TOO_SLOW)
        else:  # nothing of a request was sent
            self._finished = True
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        rest = memoryview(data)  # slices of it copy nothing
        while rest and not (self._finished or self.transport.is_closing()):
            if self._body_left:
                part, rest = rest[: self._body_left], rest[self._body_left :]
                super().data_received(part)
                continue
            size = _SLICE
            if not self._head_done:  # never more of a head than the bound
                size = min(size, MAX_HEAD_BYTES - self._counted)
                if size <= 0:
                    self._refuse(_HEAD_TOO_LARGE)
                    return
            part, rest = rest[:size], rest[size:]
            self._counted += len(part)
            self._count_slice(part)

    def _count_slice(self, part: memoryview) -> None:
        in_body, data_before = self._head_done, self._counted_data
        self._counting = True
        try:
            super().data_received(part)
        finally:
            self._counting = False
        if not (in_body and self._head_done):
            return
        self._since_data = 0 if self._counted_data > data_before else self._since_data + len(part)
        if self._since_data > MAX_HEAD_BYTES:
            self._refuse(_FRAMING_TOO_LARGE)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_done = False
        self._await_head()

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self._head_done:  # after the head, a trailer: never a header of the request
            super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._head_done = True
        self._head_arrived()
        if self._refused:
            return
        if self._head_size() > MAX_HEAD_BYTES:
            self._refuse(_HEAD_TOO_LARGE)
            return
        self._since_data = 0
        self._body_left = _content_length(self.headers)
        super().on_headers_complete()
        if self.parser.should_upgrade():
            self._finished = True
            self.cycle.keep_alive = False
            self.flow.pause_reading()  # what follows would only be thrown away

    def _head_size(self) -> int:
        """The bytes of the head just parsed, but for optional whitespace (never kept)."""
        headers = sum(len(name) + len(value) for name, value in self.headers)
        return (
            len(self.parser.get_method())
            + len(self.url)
            + _REQUEST_LINE_AND_END
            + headers
            + _HEADER_FRAMING * len(self.headers)
        )

    def on_body(self, body: bytes) -> None:
        if self._body_left:
            self._body_left -= len(body)
        if self._counting:
            self._counted_data += len(body)
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if not self._refused:
            super().on_message_complete()
        self._counted = self._counted_data = self._body_left = 0

    def _refuse(self, response: bytes) -> None:
        self._finished = self._refused = True
        if not self.transport.is_closing():
            self.transport.write(response)
            self.transport.close()


def _content_length(headers: list[tuple[bytes, bytes]]) -> int:
    """The declared length of a request's body; 0 without one or when it is chunked (llhttp has
    refused a request declaring both, or a malformed length)."""
    length = 0
    for name, value in headers:
        if name == b"transfer-encoding":
            return 0
        if name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                return 0
    return max(length, 0)
