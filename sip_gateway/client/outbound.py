"""Requests we originate (PUBLISH, SUBSCRIBE) over UDP or TCP (RFC 3261 17.1, 18.1).

A thin asyncio shell around the sans-IO ClientTransactionLayer: `request` starts a
transaction toward a `Hop` (address and transport) and resolves with the final response,
or None when Timer F fired or the request could not be sent (the caller treats that as
408, RFC 3261 8.1.3.1). The `ClientTransport` port sends: UDP requests leave from the
socket the gateway listens on (so responses come back to it, RFC 3261 18.1.1 and the Via
we stamp), and Timer E retransmits them; TCP requests go over one reused connection per
next hop (no retransmissions, RFC 3261 17.1.2.2). The SIP core hands every response to
`on_response`, and a lost connection to `on_lost`, which ends its transactions at once.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable
from typing import NamedTuple, Protocol

from domain.uri import SipUri, parse_uri
from sip_gateway import trace
from sip_gateway.sip import SipRequest, SipResponse
from sip_gateway.sip.client_transaction import (
    ClientKey,
    ClientTransactionLayer,
    ResponseDisposition,
    Retransmit,
    TimedOut,
    TransportFailed,
    client_key,
)
from sip_gateway.sip.timers import TimerValues
from sip_gateway.transport import Address

log = logging.getLogger("pua_reginfo.outbound")
CARRIED = ("udp", "tcp")  # the transports our requests can go over


class ClientTransport(Protocol):
    """How requests we originate leave (the gateway's Transports)."""

    def sent_by(self, transport: str) -> Address | None:
        """Our Via sent-by over `transport`; None when we cannot send over it."""

    def send_datagram(self, data: bytes, address: Address) -> None:
        """Send over UDP; OSError when the socket is closed."""

    async def send_stream(self, data: bytes, address: Address) -> None:
        """Write on the TCP connection with `address` (opened on demand); OSError if lost."""

    def connected(self, address: Address) -> bool:
        """Whether a TCP connection with `address` is open now."""


class Hop(NamedTuple):
    """Where a request goes next: an address and the transport to reach it."""

    address: Address
    transport: str = "udp"  # "udp" or "tcp"


def next_hop(uri_text: str) -> Hop:
    """The next hop of a SIP URI (RFC 3263 without DNS: host resolved once, port 5060
    default, `transport=udp|tcp`; `sips` and other transports are refused)."""
    uri = parse_uri(uri_text.strip().strip("<>"))
    if not isinstance(uri, SipUri):
        raise ValueError(f"{uri_text!r} is not a SIP URI")
    transport = (uri.param("transport") or "udp").lower()
    if uri.scheme.lower() != "sip" or transport not in CARRIED:
        raise ValueError(f"{uri_text!r}: only sip: over udp or tcp is supported")
    host = uri.host.strip("[]")
    port = uri.port or 5060
    kind = socket.SOCK_STREAM if transport == "tcp" else socket.SOCK_DGRAM
    try:
        info = socket.getaddrinfo(host, port, type=kind)
    except socket.gaierror as error:
        raise ValueError(f"cannot resolve {host!r}: {error}") from None
    address = info[0][4]
    return Hop((address[0], address[1]), transport)


class Outbound:
    """Client transactions over the gateway's transports; one future per request in
    flight."""

    def __init__(self, transport: ClientTransport, *, timers: TimerValues | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.transport, self.clock = transport, clock
        self.layer = ClientTransactionLayer(timers)
        self._waiting: dict[ClientKey, tuple[asyncio.Future, Hop]] = {}
        self._wakeup = asyncio.Event()

    def new_branch(self) -> str:
        return self.layer.new_branch()

    def connected(self, address: Address) -> bool:
        """Whether a TCP connection with `address` is open now (a watcher's own)."""
        return self.transport.connected(address)

    def reaches(self, hop: Hop) -> bool:
        """Whether requests can go over `hop`'s transport from here."""
        return self.transport.sent_by(hop.transport) is not None

    def sent_by(self, hop: Hop) -> Address:
        """The Via sent-by of a request over `hop` (RFC 3261 18.1.1)."""
        local = self.transport.sent_by(hop.transport)
        if local is None:
            raise ValueError(f"no {hop.transport} listener to send requests from")
        return local

    async def request(self, request: SipRequest, hop: Hop) -> SipResponse | None:
        """Send `request`; its final response, or None on timeout or transport failure."""
        key = client_key(request)
        future = asyncio.get_running_loop().create_future()
        reliable = hop.transport == "tcp"
        wire = self.layer.start(request, self.clock(), reliable=reliable)
        self._waiting[key] = (future, hop)
        try:
            if not self.reaches(hop):
                raise OSError(f"no {hop.transport} transport for outbound requests")
            if trace.tracing():
                trace.sent(wire, hop.transport, hop.address)
            if reliable:
                await self.transport.send_stream(wire, hop.address)
            else:
                self.transport.send_datagram(wire, hop.address)
        except OSError as error:
            log.warning("%s to %s:%s/%s not sent: %s", request.method, *hop.address,
                        hop.transport, error)
            self._settle(self.layer.transport_error(key))
        self._wakeup.set()
        try:
            return await future
        finally:
            self._waiting.pop(key, None)

    def on_lost(self, address: Address) -> None:
        """A TCP connection ended: the transactions waiting on it fail now (17.1.4)."""
        for key, (_, hop) in list(self._waiting.items()):
            if hop.transport == "tcp" and hop.address == address:
                self._settle(self.layer.transport_error(key))

    def on_response(self, response: SipResponse) -> None:
        """A response arrived on one of the gateway's sockets: pass it to its transaction."""
        result = self.layer.receive_response(response, self.clock())
        if result.disposition is ResponseDisposition.STRAY:
            log.debug("stray response %s dropped", response.status)
            return
        self._wakeup.set()
        if result.disposition is ResponseDisposition.MATCHED and response.status >= 200:
            waiting = self._waiting.get(result.key)
            if waiting is not None and not waiting[0].done():
                waiting[0].set_result(response)

    async def run_timers(self) -> None:
        """Fire Timers E, F and K when due, forever."""
        while True:
            deadline = self.layer.next_deadline()
            delay = 1.0 if deadline is None else max(0.0, deadline - self.clock())
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), min(delay, 1.0))
            except asyncio.TimeoutError:
                pass
            self._settle(self.layer.on_timer(self.clock()))

    def _settle(self, events) -> None:
        for event in events:
            waiting = self._waiting.get(event.key)
            if isinstance(event, Retransmit) and waiting is not None:
                try:
                    if trace.tracing():
                        trace.sent(event.wire, "udp", waiting[1].address)
                    self.transport.send_datagram(event.wire, waiting[1].address)
                except OSError as error:
                    log.warning("retransmission not sent: %s", error)
            elif isinstance(event, (TimedOut, TransportFailed)) and waiting is not None:
                if not waiting[0].done():
                    waiting[0].set_result(None)
