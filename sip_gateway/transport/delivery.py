"""What the sockets hand up: a message, where it came from, and how to answer it.

Every socket of the gateway (UDP and TCP listeners, and the TCP connections we open for
our own requests) delivers to one `MessageSink`, given when the transports start; the
sink (the SIP core) routes requests to the server side and responses to the client side.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from sip_gateway.errors import PeerError
from sip_gateway.sip import SipRequest, SipResponse, StreamFramer

READ_SIZE = 65536

Address = tuple[str, int]
Send = Callable[[bytes, Address], None]


@dataclass(frozen=True)
class Arrival:
    """Where a message came from and on which of our sockets."""

    source: Address
    transport: str  # "udp" or "tcp"
    local: Address


class MessageSink(Protocol):
    accepting: bool  # False once shutting down: stream reads stop

    def receive_datagram(self, data: bytes, arrival: Arrival, send: Send) -> None:
        """One UDP datagram, not parsed yet."""

    def receive_message(self, message: SipRequest | SipResponse, arrival: Arrival, send: Send,
                        *, reliable: bool) -> None:
        """One framed message from a stream; `send` answers on the same connection."""

    def answer_unparsable(self, data: bytes, error: PeerError, arrival: Arrival,
                          send: Send) -> None:
        """Stream bytes that could not be framed: answered if enough of them survived."""

    def connection_lost(self, peer: Address) -> None:
        """A connection we opened ended: what waits on it fails now."""


async def read_frames(reader: asyncio.StreamReader, framer: StreamFramer,
                      timeout: float) -> list | None:
    """The messages and keep-alives the next bytes of a stream complete (maybe none);
    None when the peer closed it. TimeoutError when nothing came within `timeout`,
    PeerError (its `failed_bytes` kept by the framer) when the bytes cannot be framed."""
    data = await asyncio.wait_for(reader.read(READ_SIZE), timeout)
    return framer.feed(data) if data else None
