"""The SIP core's last line of defence: a failing handler costs one request a bare 500."""

from __future__ import annotations

import asyncio
import logging

from sip_gateway.server.core import SipCore
from sip_gateway.server.responses import make_response
from sip_gateway.sip import ServerTransactionLayer, SipResponse, parse_message
from sip_gateway.transport import Arrival

REGISTER = (b"REGISTER sip:example.com SIP/2.0\r\n"
            b"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-core-1\r\n"
            b"From: <sip:alice@example.com>;tag=a1\r\nTo: <sip:alice@example.com>\r\n"
            b"Call-ID: core-1\r\nCSeq: 1 REGISTER\r\nContact: <sip:alice@127.0.0.1:5070>\r\n"
            b"Content-Length: 0\r\n\r\n")


class FailingHandler:
    async def handle(self, request, arrival):
        raise RuntimeError('duplicate key value violates unique constraint "events_pkey"')


def test_a_handler_failure_is_a_500_that_tells_nothing_of_the_internals(caplog):
    core = SipCore(FailingHandler(), ServerTransactionLayer(), lambda: 0.0)
    sent: list[bytes] = []

    async def serve() -> None:
        core.receive_datagram(REGISTER, Arrival(("127.0.0.1", 5070), "udp", ("127.0.0.1", 5060)),
                              lambda data, destination: sent.append(data))
        await core.drain()

    with caplog.at_level(logging.ERROR):
        asyncio.run(serve())
    response = parse_message(sent[0])
    assert isinstance(response, SipResponse) and response.status == 500
    assert b"constraint" not in sent[0] and b"duplicate" not in sent[0]
    assert "internal error" in response.headers.get("Warning")
    assert "duplicate key" in caplog.text  # the operator still gets the details


class EchoHandler:
    """Answers 200 and keeps the request it was handed."""

    def __init__(self):
        self.requests = []

    async def handle(self, request, arrival):
        self.requests.append(request)
        return make_response(request, 200)


def _top_via_answered(via: bytes, source: tuple[str, int]) -> tuple[str, list[str]]:
    """The top Via the handler saw and the Via lines of the response."""
    handler = EchoHandler()
    core = SipCore(handler, ServerTransactionLayer(), lambda: 0.0)
    sent: list[bytes] = []

    async def serve() -> None:
        core.receive_datagram(REGISTER.replace(
            b"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-core-1", b"Via: " + via),
            Arrival(source, "udp", ("127.0.0.1", 5060)), lambda data, _: sent.append(data))
        await core.drain()

    asyncio.run(serve())
    return str(handler.requests[0].top_via), parse_message(sent[0]).headers.get_all("Via")


def test_the_top_via_is_stamped_and_written_as_we_write_it_whatever_came():
    # Nothing to stamp, written our way: the Via goes back as it came.
    plain = b"SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-v1"
    assert _top_via_answered(plain, ("127.0.0.1", 5070)) == (plain.decode(), [plain.decode()])
    # Nothing to stamp, written otherwise: it goes back as we write it.
    spaced = b"SIP/2.0/UDP  127.0.0.1 : 5070 ;branch=z9hG4bK-v2, SIP/2.0/UDP 10.0.0.9"
    assert _top_via_answered(spaced, ("127.0.0.1", 5070)) == (
        "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-v2",
        ["SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-v2", "SIP/2.0/UDP 10.0.0.9"])
    # From elsewhere, asking for rport: received and rport filled in (RFC 3581).
    stamped = "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-v3;rport=5999;received=10.0.0.1"
    assert _top_via_answered(b"SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-v3;rport",
                             ("10.0.0.1", 5999)) == (stamped, [stamped])


def _answers(data: bytes, source: tuple[str, int]) -> list[tuple[bytes, tuple[str, int]]]:
    core = SipCore(EchoHandler(), ServerTransactionLayer(), lambda: 0.0)
    sent: list[tuple[bytes, tuple[str, int]]] = []

    async def serve() -> None:
        core.receive_datagram(data, Arrival(source, "udp", ("127.0.0.1", 5060)),
                              lambda wire, destination: sent.append((wire, destination)))
        await core.drain()

    asyncio.run(serve())
    return sent


def test_an_unreadable_top_via_is_answered_400_where_the_request_came_from():
    bad_via = REGISTER.replace(b"branch=z9hG4bK-core-1", b";branch=z9hG4bK-core-1;,;")
    [(wire, destination)] = _answers(bad_via, ("127.0.0.1", 5999))
    assert parse_message(wire).status == 400 and destination == ("127.0.0.1", 5999)
    ack = bad_via.replace(b"REGISTER sip", b"ACK sip").replace(b"1 REGISTER", b"1 ACK")
    assert _answers(ack, ("127.0.0.1", 5999)) == []


def test_an_unparsable_request_is_answered_by_its_via_even_without_the_other_headers():
    broken = (b"OPTIONS sip:example.com SIP/2.0\r\n"
              b"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-core-2\r\nCSeq: 1 OPTIONS\r\n\r\n")
    [(wire, destination)] = _answers(broken, ("127.0.0.1", 5070))
    response = parse_message(wire)
    assert (response.status, response.headers.get("CSeq")) == (400, "1 OPTIONS")
    assert "To" not in response.headers and destination == ("127.0.0.1", 5070)
    assert _answers(broken.replace(b"OPTIONS sip", b"ACK sip"), ("127.0.0.1", 5070)) == []
