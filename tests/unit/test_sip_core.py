"""The SIP core's last line of defence: a failing handler costs one request a bare 500."""

from __future__ import annotations

import asyncio
import logging

from sip_gateway.server.core import SipCore
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
