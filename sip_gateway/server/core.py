"""The gateway core: bytes or messages in, responses out, through server transactions.

For each received request: stamp the top Via (received, rport), match it to a non-INVITE
server transaction (a retransmission is absorbed or answered from the transaction, never
applied again), hand new requests to the handler in a task of their own, and send the
response back the way RFC 3261 18.2.2 / RFC 3581 say. INVITE is refused statelessly
(405) and ACK dropped: this server holds no INVITE state. A message that does not parse
is answered 400 when enough of it survives to address a response, else dropped. Nothing
a peer sends can raise out of here. With per-source limits (`[security] max_rate`), a
request datagram is counted against its source before it is parsed: beyond the rate it
is answered 503 with Retry-After, beyond twice the rate dropped (source_limits.py).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from typing import Protocol

from domain import PuaReginfoError
from sip_gateway.errors import MethodNotAllowed, PeerError, ServiceUnavailable
from sip_gateway import trace
from sip_gateway.server.handlers import RequestHandler, to_uri
from sip_gateway.server.source_limits import SourceLimits, Verdict
from sip_gateway.server.responses import response_for_error
from sip_gateway.sip.routing import response_destination, stamp_via
from sip_gateway.sip import (
    Disposition,
    Headers,
    ServerTransactionLayer,
    SipRequest,
    SipResponse,
    Via,
    parse_message,
)
from sip_gateway.tallies import RequestTallies
from sip_gateway.transport import Address, Arrival, Send

log = logging.getLogger("pua_reginfo.sip")
INTERNAL_ERROR = "internal error; the server log has the details"  # no internals on the wire
_SALVAGE_LINE = re.compile(r"^([A-Za-z-]+)[ \t]*:[ \t]*(.*?)\s*$")
_COMPACT = {"v": "Via", "f": "From", "t": "To", "i": "Call-ID"}
_DIALOG_HEADERS = ("via", "from", "to", "call-id", "cseq")
RATE_RETRY_AFTER = 1  # seconds a source over its rate is asked to wait


class ClientSide(Protocol):
    """Where responses to our own requests go (the outbound client transactions)."""

    def on_response(self, response: SipResponse) -> None: ...
    def on_lost(self, address: Address) -> None: ...


class SipCore:
    """The MessageSink of every socket: requests to the handler through server
    transactions, responses and lost connections to the client side."""

    def __init__(self, handler: RequestHandler, transactions: ServerTransactionLayer,
                 clock: Callable[[], float], client: ClientSide | None = None,
                 tallies: RequestTallies | None = None, limits: SourceLimits | None = None):
        self.handler, self.transactions, self.clock = handler, transactions, clock
        self.limits = limits
        self.client = client
        self.tallies = tallies or RequestTallies()  # usually the handler's, counted on
        self.tasks: set[asyncio.Task] = set()
        self.accepting = True

    # Entry points (called by the transports) ---------------------------------------

    def receive_datagram(self, data: bytes, arrival: Arrival, send: Send) -> None:
        if trace.tracing():
            trace.received(data, arrival.transport, arrival.source)
            send = trace.traced(send, arrival.transport)
        verdict = None
        if self.limits is not None and not data.startswith(b"SIP/"):  # requests only
            verdict = self.limits.check(arrival.source[0], self.clock())
            if verdict is Verdict.DROP:
                self.tallies.dropped.add("rate_limit")
                return
        try:
            message = parse_message(data)
        except PeerError as error:
            self.answer_unparsable(data, error, arrival, send)
            return
        self.receive_message(message, arrival, send, reliable=False, verdict=verdict)

    def receive_message(self, message, arrival: Arrival, send: Send, *, reliable: bool,
                        verdict: Verdict | None = None) -> None:
        """`verdict`: the source limits' word on this request, if they had it already."""
        if reliable and trace.tracing():  # a datagram was traced as it came
            trace.received(message.serialize(), arrival.transport, arrival.source)
            send = trace.traced(send, arrival.transport)
        if not isinstance(message, SipRequest):
            if self.client is not None:
                self.client.on_response(message)  # our PUBLISH and SUBSCRIBE transactions
            return
        if verdict is None and self.limits is not None:
            verdict = self.limits.check(arrival.source[0], self.clock())
        if verdict is Verdict.DROP:
            self.tallies.dropped.add("rate_limit")
            return
        try:
            self._receive_request(message, arrival, send, reliable, verdict is Verdict.REFUSE)
        except PuaReginfoError as error:
            log.info("dropped request from %s: %s", _peer(arrival), error)

    def connection_lost(self, peer: Address) -> None:
        if self.client is not None:
            self.client.on_lost(peer)

    async def drain(self) -> None:
        """Stop taking new requests and wait for those in flight."""
        self.accepting = False
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)

    def expire_transactions(self) -> None:
        self.transactions.expire(self.clock())

    # Internals -----------------------------------------------------------------------

    def _receive_request(self, request: SipRequest, arrival: Arrival, send: Send,
                         reliable: bool, limited: bool = False) -> None:
        if not request.headers.get("Via") or request.method == "ACK":
            return
        try:
            top = stamp_via(request.top_via, arrival.source)
        except PeerError as error:  # RFC 4475 3.1.2.1: answered where it came from
            self._refuse(request, error, send, arrival.source)
            return
        destination = response_destination(top) if not reliable else arrival.source
        stamped = _with_top_via(request, top)
        if limited:
            error = ServiceUnavailable(f"more than {self.limits.rate:g} requests a second from "
                                       f"{arrival.source[0]}", retry_after=RATE_RETRY_AFTER,
                                       cause="rate_limit")
            self._refuse(stamped, error, send, destination)
            return
        try:  # every answer copies them (RFC 3261 8.2.6.2; RFC 4475 3.1.2.6)
            request.from_addr, request.to_addr
        except PeerError as error:
            self._refuse(stamped, error, send, destination)
            return
        if request.method == "INVITE" or not self.accepting:
            error = (MethodNotAllowed("INVITE is not served here", self.handler.allowed)
                     if self.accepting else ServiceUnavailable("shutting down", retry_after=5,
                                                               cause="shutting_down"))
            self._refuse(stamped, error, send, destination)
            return
        try:
            received = self.transactions.receive(request, self.clock(), reliable=reliable)
        except PeerError as error:  # no transaction key (e.g. an RFC 2543 request, bad To)
            self._refuse(stamped, error, send, destination)
            return
        if received.disposition is Disposition.ANSWERED:
            send(received.resend, destination)
        elif received.disposition is Disposition.REFUSED:
            error = ServiceUnavailable("too many transactions", retry_after=1, cause="overload")
            self._refuse(stamped, error, send, destination)
        elif received.disposition is Disposition.NEW:
            task = asyncio.get_running_loop().create_task(
                self._serve(stamped, received.key, arrival, send, destination))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _serve(self, request: SipRequest, key, arrival: Arrival, send: Send,
                     destination: tuple[str, int]) -> None:
        started = time.perf_counter()
        try:
            response = await self.handler.handle(request, arrival)
        except Exception:  # a bug must cost one request a 500, never the service
            log.exception("handler failed")
            try:
                response = response_for_error(request, _ServerError(INTERNAL_ERROR))
            except Exception:
                log.exception("no response could be built; transaction dropped")
                self.transactions.transport_error(key)
                return
        wire = self.transactions.respond(key, response, self.clock())
        if wire is not None:
            try:
                send(wire, destination)
            except OSError as error:
                self.transactions.transport_error(key)
                log.info("could not send to %s: %s", destination, error)
        seconds = time.perf_counter() - started
        method = method_label(request.method)
        self.tallies.answered.add(method, str(response.status))
        self.tallies.latency.observe(seconds, method)
        if log.isEnabledFor(logging.INFO):  # costs nothing when the request log is off
            fields = {"method": request.method, "aor": to_uri(request),
                      "call_id": request.headers.get("Call-ID") or "-",
                      "source": _peer(arrival), "result": response.status,
                      "latency_ms": round(seconds * 1000, 2),
                      "origin": ORIGINS.get(request.method, "-")}
            log.info("method=%(method)s aor=%(aor)s result=%(result)d latency_ms=%(latency_ms).2f"
                     " call_id=%(call_id)s source=%(source)s origin=%(origin)s", fields,
                     extra=fields)

    def _refuse(self, request: SipRequest, error: PeerError, send: Send,
                destination: tuple[str, int]) -> None:
        """Answer `request` with `error` at once, outside any transaction."""
        self._count(request.method, error)
        send(response_for_error(request, error).serialize(), destination)

    def _count(self, method: str, error: PeerError) -> None:
        self.tallies.answered.add(method_label(method), str(error.sip_status))
        if isinstance(error, ServiceUnavailable):
            self.tallies.unavailable.add(error.cause)

    def answer_unparsable(self, data: bytes, error: PeerError, arrival: Arrival, send: Send) -> None:
        """Answer an unparsable request 400 (or its status) if its Via survives; the other
        dialog headers are copied when they do too (RFC 4475 3.3.1)."""
        try:
            request = _salvaged_request(data)
            if request is None:
                log.info("dropped unparsable datagram from %s: %s", _peer(arrival), error)
                return
            top = stamp_via(Via.parse(request.headers.get_all("Via")[0]), arrival.source)
            response = response_for_error(_with_top_via(request, top), error)
            send(response.serialize(), response_destination(top))
            self._count(request.method, error)
        except (PuaReginfoError, ValueError, OSError, IndexError) as failure:
            log.info("dropped unparsable datagram from %s: %s (%s)", _peer(arrival), error, failure)


class _ServerError(PeerError):
    sip_status = 500


def _with_top_via(request: SipRequest, top: Via) -> SipRequest:
    """The request with its top Via as we stamped it (received, rport); what was already
    parsed of it comes along. When stamping changed nothing and the first Via line reads
    as we would write it, that is the request itself."""
    text = str(top)
    if request.__dict__.get("top_via") == top and _first_via_line(request) == text:
        return request
    parsed = {name: request.__dict__[name] for name in _PARSED if name in request.__dict__}
    return SipRequest.trusted(request.method, request.uri, request.version,
                              request.headers.with_top("Via", text), request.body,
                              top_via=top, **parsed)


def _first_via_line(request: SipRequest) -> str | None:
    return next((value for key, _, value in request.headers.wire() if key == "via"), None)


_PARSED = ("from_addr", "to_addr", "cseq")


def _salvaged_request(data: bytes) -> SipRequest | None:
    data = data.lstrip(b"\r\n")  # CRLFs before the start line are ignored (RFC 3261 7.5)
    head = data.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0][:16384]
    lines = head.decode("utf-8", "replace").splitlines()
    if not lines:
        return None
    parts = lines[0].rstrip(" ").split(" ")  # RFC 4475 3.1.2.8: spaces in the Request-URI
    if len(parts) < 3 or not parts[-1].startswith("SIP/") or not parts[0].isalpha():
        return None
    if parts[0].upper() == "ACK":  # never answered (RFC 3261 17.2.1)
        return None
    found: list[tuple[str, str]] = []
    for line in lines[1:]:
        match = _SALVAGE_LINE.match(line)
        if match:
            name = _COMPACT.get(match.group(1).lower(), match.group(1))
            if name.lower() in _DIALOG_HEADERS:
                found.append((name, match.group(2)))
    if "via" not in {name.lower() for name, _ in found}:
        return None  # nowhere to answer; the other dialog headers are copied when there
    return SipRequest(parts[0].upper(), "sip:invalid", "SIP/2.0", Headers(found))


# The origin of the changes a request records (the events' `origin`), for the request log.
ORIGINS = {"REGISTER": "register", "NOTIFY": "notify"}
KNOWN_METHODS = frozenset({"REGISTER", "NOTIFY", "SUBSCRIBE", "OPTIONS", "PUBLISH", "INVITE",
                           "ACK", "BYE", "CANCEL", "MESSAGE", "INFO", "PRACK", "UPDATE",
                           "REFER"})


def method_label(method: str) -> str:
    """A method as a metric label: the RFC 3261 family by name, any other as "other" (a
    peer must not be able to grow the metrics without bound)."""
    return method if method in KNOWN_METHODS else "other"


def _peer(arrival: Arrival) -> str:
    host, port = arrival.source
    return f"{arrival.transport}:{host}:{port}"
