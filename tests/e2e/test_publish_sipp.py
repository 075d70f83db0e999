"""A real `serve` PUBLISHes reg state (RFC 3903, RFC 3680) to sipp as the presence server.

The test registers over UDP itself (a plain socket, one REGISTER at a time, waiting for
each PUBLISH to be answered before the next change), sipp answers every PUBLISH with
`200 OK`, `SIP-ETag: etag-N` and the requested Expires (tests/e2e/sipp/presence-server.xml,
or presence-server-412.xml which refuses the second one with 412), and the checks are made
on sipp's message trace: how many PUBLISHes, their headers, SIP-If-Match chaining from
one 2xx's SIP-ETag to the next request, and each reginfo body (strict parser and XML
Schema, states, events, expires, version + 1). Only 127.0.0.1; sipp and every gateway are
stopped by PID.
"""

from __future__ import annotations

import re
import socket
import time
import uuid
from dataclasses import dataclass, field

import pytest

from domain.reginfo import ReginfoDocument
from sip_gateway.reginfo import parse_reginfo, validate_reginfo
from sip_gateway.sip import SipResponse, parse_message
from tests.e2e.conftest import HOST, Gateways, RunningGateway, free_port, wait_for_workers
from tests.e2e.sipp_peer import SippPeer, TracedMessage, sipp_peers  # noqa: F401 (fixture)

AOR = "sip:alice@example.com"
A = "sip:alice@192.0.2.1:5060"
B = "sip:alice@192.0.2.2:5060"
C = "sip:alice@192.0.2.3:5060"
REGINFO = "application/reginfo+xml"
SLACK = 2.0  # seconds between the Expires we compute and the gateway's
PUBLISH_WAIT = 10.0  # seconds a PUBLISH may take to follow its REGISTER
LIVE_EVENTS = {"registered", "created", "refreshed", "shortened"}

Exchange = tuple[TracedMessage, TracedMessage | None]


# --- the gateway and its presence server ----------------------------------------------

def proxy_uri(sipp_port: int, transport: str = "udp") -> str:
    return f"sip:{HOST}:{sipp_port}" + (";transport=tcp" if transport == "tcp" else "")


def publish_config(port: int, sipp_port: int, transport: str = "udp", workers: int = 0) -> str:
    """serve on 127.0.0.1:port, PUBLISHing through sipp on sipp_port over `transport`;
    min_expires 1 s."""
    return (f'[listen]\nudp = ["{HOST}:{port}"]\ntcp = ["{HOST}:{port}"]\n'
            f"udp_workers = {workers}\n[registrar]\nmin_expires = 1\n"
            f'[reginfo]\ndefault_domain = "example.com"\npublish_reginfo = true\n'
            f'outbound_proxy = "{proxy_uri(sipp_port, transport)}"\n'
            f'server_address = "sip:reginfo@{HOST}:{port}"\n')


@dataclass
class Setup:
    gateways: Gateways
    store_url: str
    peer: SippPeer
    port: int
    transport: str = "udp"
    gateway: RunningGateway | None = None
    workers: int = 0

    @property
    def config(self) -> str:
        return publish_config(self.port, self.peer.port, self.transport, self.workers)

    def start_gateway(self) -> RunningGateway:
        self.gateway = self.gateways.start(self.store_url, self.config)
        assert self.gateway.port == self.port
        if self.workers:
            wait_for_workers(self.gateway, self.workers)
        return self.gateway

    def context(self) -> str:
        return f"--- gateway log\n{self.gateway.log() if self.gateway else '(not started)'}"


def start(gateways, sqlite_url, sipp_peers, scenario: str = "presence-server.xml",
          transport: str = "udp", workers: int = 0) -> Setup:
    sipp_port = free_port()
    peer = sipp_peers.start(scenario, sipp_port, transport=transport)
    port = free_port()
    while port == sipp_port:
        port = free_port()
    setup = Setup(gateways, sqlite_url, peer, port, transport, workers=workers)
    setup.start_gateway()
    return setup


# --- a UA registering alice --------------------------------------------------------------

class RegisteringUA:
    """REGISTERs for alice over UDP from one socket: one Call-ID, CSeq counting up."""

    def __init__(self, port: int):
        self.port = port
        self.call_id = f"{uuid.uuid4().hex}@e2e.test"
        self.cseq = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, 0))

    def close(self) -> None:
        self.sock.close()

    def register(self, *contacts: str, expires: int | None = None) -> SipResponse:
        """contacts: Contact header values (`<uri>;expires=N` or `*`); 200 required."""
        self.cseq += 1
        local = self.sock.getsockname()[1]
        branch = f"z9hG4bK{uuid.uuid4().hex}"
        lines = [f"REGISTER sip:example.com SIP/2.0",
                 f"Via: SIP/2.0/UDP {HOST}:{local};branch={branch};rport",
                 "Max-Forwards: 70", f"From: <{AOR}>;tag=e2e-ua", f"To: <{AOR}>",
                 f"Call-ID: {self.call_id}", f"CSeq: {self.cseq} REGISTER",
                 *(f"Contact: {contact}" for contact in contacts)]
        if expires is not None:
            lines.append(f"Expires: {expires}")
        lines += ["User-Agent: pua-reginfo-e2e publish", "Content-Length: 0", "", ""]
        data = "\r\n".join(lines).encode()
        deadline = time.monotonic() + 10
        wait = 0.5
        while time.monotonic() < deadline:  # RFC 3261 17.1.2.2 retransmission, roughly
            self.sock.sendto(data, (HOST, self.port))
            self.sock.settimeout(wait)
            try:
                while True:
                    response = parse_message(self.sock.recv(65535))
                    if (isinstance(response, SipResponse) and response.status >= 200
                            and branch in (response.headers.get("Via") or "")):
                        assert response.status == 200, (
                            f"REGISTER {contacts} answered {response.status} {response.reason}")
                        return response
            except socket.timeout:
                wait = min(wait * 2, 4)
        raise AssertionError(f"no final response to REGISTER {contacts}")


# --- what the registrar holds, as the test drives it -------------------------------------

@dataclass
class Expected:
    """One PUBLISH the gateway must send: kind, and for a document what it must say."""

    kind: str  # "initial", "modify", "remove"
    registration: str | None = None  # active / terminated
    live: dict[str, float] = field(default_factory=dict)  # uri -> absolute expiry
    changed: dict[str, str] = field(default_factory=dict)  # uri -> its event this time
    ended: dict[str, str] = field(default_factory=dict)  # uri -> unregistered / expired

    def expires_header(self, at: float) -> float | None:
        """The longest remaining binding lifetime at `at`; None when no binding is left."""
        return max(self.live.values()) - at if self.live else None


class Bindings:
    """alice's bindings: REGISTER through the UA, and what the next PUBLISH must be."""

    def __init__(self, ua: RegisteringUA):
        self.ua = ua
        self.live: dict[str, float] = {}

    def add(self, uri: str, expires: int, event: str | None = None) -> Expected:
        """Contact <uri>;expires=N: a new binding (registered) or a refresh."""
        known = uri in self.live
        before = time.time()
        self.ua.register(f"<{uri}>;expires={expires}")
        self.live[uri] = (before + time.time()) / 2 + expires
        kind = "modify" if len(self.live) > 1 or known else "initial"
        return Expected(kind, "active", dict(self.live),
                        {uri: event or ("refreshed" if known else "registered")})

    def remove(self, uri: str) -> Expected:
        self.ua.register(f"<{uri}>;expires=0")
        del self.live[uri]
        state = "active" if self.live else "terminated"
        return Expected("modify", state, dict(self.live), ended={uri: "unregistered"})

    def remove_all(self) -> Expected:
        self.ua.register("*", expires=0)
        ended = {uri: "unregistered" for uri in self.live}
        self.live.clear()
        return Expected("modify", "terminated", ended=ended)

    def lapse(self, uri: str) -> Expected:
        """The binding's lifetime runs out (the gateway's sweeper records `expired`)."""
        del self.live[uri]
        state = "active" if self.live else "terminated"
        return Expected("modify", state, dict(self.live), ended={uri: "expired"})


# --- checks --------------------------------------------------------------------------------

def is_refresh(request: TracedMessage) -> bool:
    """RFC 3903 4.3: SIP-If-Match, no body, Expires > 0."""
    return (not request.body and request.header("SIP-If-Match") is not None
            and request.header("Expires") not in (None, "0"))


def check_headers(request: TracedMessage, setup: Setup) -> None:
    """The request line and headers every PUBLISH of the gateway carries."""
    assert request.start_line == f"PUBLISH {AOR} SIP/2.0", request
    headers = request.headers
    via = headers.get_all("Via")
    assert len(via) == 1, via
    sent_by = f"{setup.transport.upper()} {re.escape(HOST)}:{setup.port}"
    assert re.fullmatch(rf"SIP/2\.0/{sent_by};branch=z9hG4bK[^;]+;rport", via[0]), via[0]
    route = f"<{proxy_uri(setup.peer.port, setup.transport)};lr>"
    assert headers.get_all("Route") == [route], request
    assert headers.get("Max-Forwards") == "70"
    assert headers.get("To") == f"<{AOR}>"
    assert re.fullmatch(rf"<{re.escape(AOR)}>;tag=[^;]+", headers.get("From") or ""), request
    assert headers.get("Event") == "reg"
    assert re.fullmatch(r"[0-9]+ PUBLISH", headers.get("CSeq") or ""), request
    assert re.fullmatch(r"[0-9]+", headers.get("Expires") or ""), request
    length = headers.get("Content-Length")
    assert length is None or int(length) == len(request.body)
    if request.body:
        assert headers.get("Content-Type") == REGINFO
    else:
        assert "Content-Type" not in headers


def check_document(request: TracedMessage, expected: Expected) -> ReginfoDocument:
    """The body: strictly parsed, schema-valid, full state of alice as `expected` says."""
    validate_reginfo(request.body)
    doc = parse_reginfo(request.body)
    assert doc.state == "full"
    assert len(doc.registrations) == 1, doc
    registration = doc.registrations[0]
    assert registration.aor == AOR
    assert registration.state == expected.registration, registration
    contacts = {contact.uri: contact for contact in registration.contacts}
    assert len(contacts) == len(registration.contacts), f"a contact listed twice: {registration}"
    assert set(contacts) == set(expected.live) | set(expected.ended), (
        f"contacts {sorted(contacts)}, expected live {sorted(expected.live)} "
        f"and ended {sorted(expected.ended)}")
    for uri, expiry in expected.live.items():
        contact = contacts[uri]
        assert contact.state == "active", contact
        if uri in expected.changed:
            assert contact.event == expected.changed[uri], contact
        else:
            assert contact.event in LIVE_EVENTS, contact
        assert contact.expires is not None
        assert abs(contact.expires - (expiry - request.time)) <= SLACK, (
            f"{uri}: expires {contact.expires}, expected {expiry - request.time:.1f}")
    for uri, event in expected.ended.items():
        contact = contacts[uri]
        assert (contact.state, contact.event, contact.expires) == ("terminated", event, 0), contact
    return doc


def check_publish(exchange: Exchange, expected: Expected, setup: Setup
                  ) -> ReginfoDocument | None:
    request, response = exchange
    check_headers(request, setup)
    expires = int(request.header("Expires"))
    if_match = request.header("SIP-If-Match")
    if expected.kind == "remove":
        assert (expires, request.body) == (0, b""), f"not a removal:\n{request}"
        assert if_match is not None, request
        return None
    assert request.body, f"a {expected.kind} PUBLISH without a body:\n{request}"
    assert (if_match is None) == (expected.kind == "initial"), (
        f"SIP-If-Match {if_match!r} on what should be a {expected.kind} PUBLISH")
    wanted = expected.expires_header(request.time)
    if wanted is None:
        assert expires >= 1, request
    else:
        assert abs(expires - wanted) <= SLACK, f"Expires {expires}, expected {wanted:.1f}"
    return check_document(request, expected)


def check_chain(exchanges: list[Exchange], *, call_id_may_change_at: set[int] = frozenset()
                ) -> None:
    """SIP-If-Match carries the SIP-ETag of the previous 2xx; one Call-ID per publication
    (from an initial PUBLISH to the next one), CSeq up; body versions + 1 per document."""
    etag = None
    call_id = None
    cseq = None
    version = None
    for index, (request, response) in enumerate(exchanges):
        assert response is not None, f"PUBLISH {index + 1} not answered"
        if_match = request.header("SIP-If-Match")
        initial = if_match is None
        if not initial:
            assert if_match == etag, (
                f"PUBLISH {index + 1}: SIP-If-Match {if_match!r}, the last SIP-ETag was {etag!r}")
        if initial or index in call_id_may_change_at:
            call_id = request.call_id
        else:
            assert request.call_id == call_id, f"PUBLISH {index + 1}: Call-ID changed"
            assert request.cseq > cseq, f"PUBLISH {index + 1}: CSeq {request.cseq} after {cseq}"
        cseq = request.cseq
        if request.body:
            doc_version = parse_reginfo(request.body).version
            if version is not None and not initial:
                assert doc_version == version + 1, (
                    f"PUBLISH {index + 1}: version {doc_version} after {version}")
            version = doc_version
        if response.status == 200:
            etag = response.header("SIP-ETag")
            if request.header("Expires") == "0":
                etag = version = None  # removed: the next publication starts afresh
        elif response.status == 412:
            etag = None


class Publishes:
    """The PUBLISH exchanges seen so far and the next expected one."""

    def __init__(self, setup: Setup):
        self.setup = setup
        self.seen = 0

    def expect(self, expected: Expected, *, allow_refreshes: bool = False,
               timeout: float = PUBLISH_WAIT) -> Exchange:
        """Wait for the next PUBLISH (skipping refreshes if allowed) and check it."""
        peer = self.setup.peer
        while True:
            exchanges = peer.wait_for_exchanges("PUBLISH", self.seen + 1, timeout,
                                                context=self.setup.context)
            exchange = exchanges[self.seen]
            self.seen += 1
            if allow_refreshes and is_refresh(exchange[0]):
                check_headers(exchange[0], self.setup)
                continue
            check_publish(exchange, expected, self.setup)
            return exchange

    def expect_none(self, seconds: float) -> None:
        time.sleep(seconds)
        extra = self.setup.peer.exchanges("PUBLISH")[self.seen:]
        assert not extra, "unexpected PUBLISH:\n" + "\n".join(str(r) for r, _ in extra)

    def all(self) -> list[Exchange]:
        return self.setup.peer.exchanges("PUBLISH")


def explain(setup: Setup) -> str:
    return f"{setup.peer.describe(60)}\n{setup.context()}"


# --- tests ---------------------------------------------------------------------------------

@pytest.mark.parametrize("transport, workers", [("udp", 0), ("tcp", 0), ("udp", 2)])
def test_publish_sequence(gateways, sqlite_url, sipp_peers, transport, workers):
    """register A, refresh A, add B, de-register B, Contact: * (terminated document, then
    removal), register C for 3 s and let it expire (expired document, then removal); the
    same over a TCP connection to the presence server (`;transport=tcp`), and with UDP
    workers taking the REGISTERs (the PUBLISH answers are steered to serve)."""
    setup = start(gateways, sqlite_url, sipp_peers, transport=transport, workers=workers)
    ua = RegisteringUA(setup.port)
    bindings = Bindings(ua)
    publishes = Publishes(setup)
    try:
        first = publishes.expect(bindings.add(A, 60))
        publishes.expect(bindings.add(A, 60))
        publishes.expect(bindings.add(B, 60))
        publishes.expect(bindings.remove(B))
        publishes.expect(bindings.remove_all())
        publishes.expect(Expected("remove"))
        publishes.expect_none(1.0)
        publishes.expect(bindings.add(C, 3))
        publishes.expect(bindings.lapse(C), allow_refreshes=True, timeout=3 + 1 + PUBLISH_WAIT)
        publishes.expect(Expected("remove"))
        publishes.expect_none(1.5)
        exchanges = publishes.all()
        check_chain(exchanges)
        check_contact_ids(exchanges)
        documents = [r for r, _ in exchanges if r.body]
        assert [parse_reginfo(r.body).version for r in documents[:5]] == [0, 1, 2, 3, 4]
        assert first[1].header("SIP-ETag") == "etag-1"
    except AssertionError as error:
        raise AssertionError(f"{error}\n{explain(setup)}") from None
    finally:
        ua.close()


def check_contact_ids(exchanges: list[Exchange]) -> None:
    """RFC 3680 5.4: a contact keeps its id from document to document."""
    ids: dict[str, str] = {}
    for request, _ in exchanges:
        if not request.body:
            continue
        for contact in parse_reginfo(request.body).registrations[0].contacts:
            assert ids.setdefault(contact.uri, contact.id) == contact.id, (
                f"{contact.uri}: id {contact.id} after {ids[contact.uri]}")


def test_412_republishes_newest_document_as_initial(gateways, sqlite_url, sipp_peers):
    """sipp answers the second PUBLISH (a modify) 412: the next PUBLISH is an initial one,
    no SIP-If-Match, with the newest document; later changes chain from its SIP-ETag."""
    setup = start(gateways, sqlite_url, sipp_peers, "presence-server-412.xml")
    ua = RegisteringUA(setup.port)
    bindings = Bindings(ua)
    publishes = Publishes(setup)
    try:
        publishes.expect(bindings.add(A, 60))
        refreshed = bindings.add(A, 60)
        refused = publishes.expect(refreshed)
        assert refused[1].status == 412, refused[1]
        refreshed.kind = "initial"
        again = publishes.expect(refreshed)
        assert again[1].status == 200
        assert again[0].body == refused[0].body, "the 412'd document is not the one re-sent"
        publishes.expect(bindings.add(B, 60))
        publishes.expect_none(1.0)
        exchanges = publishes.all()
        check_chain(exchanges)
        assert [r.header("SIP-If-Match") for r, _ in exchanges] == [None, "etag-1", None, "etag-3"]
        versions = [parse_reginfo(r.body).version for r, _ in exchanges]
        assert versions == [versions[0], versions[0] + 1, versions[0] + 1, versions[0] + 2]
    except AssertionError as error:
        raise AssertionError(f"{error}\n{explain(setup)}") from None
    finally:
        ua.close()


def test_restart_keeps_publication(gateways, sqlite_url, sipp_peers):
    """Stop serve after three changes, start it again on the same store and port: nothing
    is re-sent or lost, and the next change modifies the publication (SIP-If-Match of the
    last SIP-ETag, version + 1) because the publication state is stored."""
    setup = start(gateways, sqlite_url, sipp_peers)
    ua = RegisteringUA(setup.port)
    bindings = Bindings(ua)
    publishes = Publishes(setup)
    try:
        publishes.expect(bindings.add(A, 60))
        publishes.expect(bindings.add(A, 60))
        before = publishes.expect(bindings.add(B, 60))
        assert setup.gateway.stop() == 0, setup.gateway.log()
        publishes.expect_none(0.5)
        setup.start_gateway()
        publishes.expect_none(1.5)
        after = publishes.expect(bindings.remove(B))
        assert after[0].header("SIP-If-Match") == before[1].header("SIP-ETag") == "etag-3"
        assert (parse_reginfo(after[0].body).version
                == parse_reginfo(before[0].body).version + 1)
        publishes.expect(bindings.remove_all())
        publishes.expect(Expected("remove"))
        publishes.expect_none(1.0)
        exchanges = publishes.all()
        assert len(exchanges) == 6
        check_chain(exchanges, call_id_may_change_at={3})
        check_contact_ids(exchanges)
    except AssertionError as error:
        raise AssertionError(f"{error}\n{explain(setup)}") from None
    finally:
        ua.close()
