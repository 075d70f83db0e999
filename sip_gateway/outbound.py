"""Requests we originate (PUBLISH, SUBSCRIBE) over the gateway's UDP socket (RFC 3261 17.1).

A thin asyncio shell around the sans-IO ClientTransactionLayer: `request` starts a
transaction, sends the request from the socket the gateway listens on (so responses come
back to it, RFC 3261 18.1.1 and the Via we stamp), and resolves with the final response,
or None when Timer F fired or the datagram could not be sent (the caller treats that as
408, RFC 3261 8.1.3.1). The gateway hands every received response to `on_response`;
retransmissions (Timer E) and timeouts run in `run_timers`.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable

from domain.uri import SipUri, parse_uri
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

log = logging.getLogger("pua_reginfo.outbound")
Address = tuple[str, int]
Send = Callable[[bytes, Address], None]


def next_hop(uri_text: str) -> Address:
    """The UDP address of a SIP URI used as next hop (host resolved once, port 5060 default)."""
    uri = parse_uri(uri_text.strip().strip("<>"))
    if not isinstance(uri, SipUri):
        raise ValueError(f"{uri_text!r} is not a SIP URI")
    host = uri.host.strip("[]")
    port = uri.port or 5060
    try:
        info = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except socket.gaierror as error:
        raise ValueError(f"cannot resolve {host!r}: {error}") from None
    address = info[0][4]
    return address[0], address[1]


class Outbound:
    """Client transactions over one UDP socket; one future per request in flight."""

    def __init__(self, send: Send, local: Address, *, timers: TimerValues | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.send, self.local, self.clock = send, local, clock
        self.layer = ClientTransactionLayer(timers)
        self._waiting: dict[ClientKey, tuple[asyncio.Future, Address]] = {}
        self._wakeup = asyncio.Event()

    def new_branch(self) -> str:
        return self.layer.new_branch()

    async def request(self, request: SipRequest, destination: Address) -> SipResponse | None:
        """Send `request`; its final response, or None on timeout or transport failure."""
        key = client_key(request)
        future = asyncio.get_running_loop().create_future()
        wire = self.layer.start(request, self.clock(), reliable=False)
        self._waiting[key] = (future, destination)
        try:
            self.send(wire, destination)
        except OSError as error:
            log.warning("%s to %s:%s not sent: %s", request.method, *destination, error)
            self._settle(self.layer.transport_error(key))
        self._wakeup.set()
        try:
            return await future
        finally:
            self._waiting.pop(key, None)

    def on_response(self, response: SipResponse) -> None:
        """A response arrived on the gateway's socket: pass it to its transaction."""
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
                    self.send(event.wire, waiting[1])
                except OSError as error:
                    log.warning("retransmission not sent: %s", error)
            elif isinstance(event, (TimedOut, TransportFailed)) and waiting is not None:
                if not waiting[0].done():
                    waiting[0].set_result(None)
