"""The caller's address: the connection's peer, or what a trusted proxy says it forwarded.

``X-Forwarded-For`` is believed only when the connection comes from a proxy listed in the
``trusted_proxies`` setting (none by default; the server runs uvicorn with its own proxy
handling off, so a sidecar on loopback cannot write any address it likes into the audit log
or the failure counters). The list is read from the right: the nearest hop that is not itself
a trusted proxy is the client.
"""

from __future__ import annotations

import ipaddress

from starlette.types import ASGIApp, Receive, Scope, Send

from gpufleet.settings import IpNetwork


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def forwarded_client(
    peer: str, forwarded_for: list[str], trusted: tuple[IpNetwork, ...]
) -> str | None:
    """The client address behind ``peer``, or None when the peer's word is not taken."""

    def is_trusted(address) -> bool:
        return address is not None and any(address in network for network in trusted)

    if not is_trusted(_address(peer)):
        return None
    hops = [hop for header in forwarded_for for hop in header.split(",")]
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            return None  # a garbled list: keep the peer rather than guess
        if not is_trusted(address):
            return str(address)
    return None


class ClientAddress:
    """Replaces ``scope["client"]`` by the forwarded address when a trusted proxy sent it."""

    def __init__(self, app: ASGIApp, trusted: tuple[IpNetwork, ...]) -> None:
        self.app = app
        self.trusted = trusted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.trusted and scope["type"] == "http" and scope.get("client"):
            forwarded = [
                value.decode("latin-1")
                for name, value in scope["headers"]
                if name == b"x-forwarded-for"
            ]
            client = forwarded_client(scope["client"][0], forwarded, self.trusted)
            if client is not None:
                scope = {**scope, "client": (client, 0)}
        await self.app(scope, receive, send)
