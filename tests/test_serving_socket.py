"""The listening socket ``gpufleet serve`` hands to uvicorn: its connections send at once.

With Nagle's algorithm on, a response written as headers then body waited for the client's
delayed acknowledgement before the body left (40 ms on Linux), on every keep-alive request
with a small answer (a count, a get, a token). asyncio turns it off only on connections of a
socket that says it is TCP; the server's connections are served the same way here.
"""

from __future__ import annotations

import asyncio
import socket

from gpufleet.api.serving import listen


def test_connections_of_the_listening_socket_have_nagle_off():
    sock = listen("127.0.0.1", 0)
    port = sock.getsockname()[1]

    async def accepted_nodelay() -> int:
        seen: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        class Probe(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                conn = transport.get_extra_info("socket")
                seen.set_result(conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()

        server = await asyncio.get_running_loop().create_server(Probe, sock=sock)
        async with server:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                return await asyncio.wait_for(seen, 10)
            finally:
                writer.close()

    assert asyncio.run(accepted_nodelay()) != 0
