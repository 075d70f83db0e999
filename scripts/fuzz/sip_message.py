"""Target: one datagram through the SIP parser (sip_gateway/sip/message.py).

Property: parse_message raises nothing but a PeerError, and the salvage answer the core
sends for it (SipCore.answer_unparsable) parses again with that status. A message that
parses serializes to bytes that parse to the same message; its Via, From, To and CSeq
read or raise a PeerError; the responses built for a request parse again.
"""

from __future__ import annotations

from sip_gateway.errors import PeerError
from sip_gateway.server.core import SipCore
from sip_gateway.sip import ServerTransactionLayer, SipRequest, SipResponse, parse_message
from sip_gateway.transport import Arrival

from scripts.fuzz import seeds
from scripts.fuzz.checks import answers, reparsed

NAME = "sip_message"
ARRIVAL = Arrival(("127.0.0.1", 5999), "udp", ("127.0.0.1", 5060))
_CORE = SipCore(None, ServerTransactionLayer(), lambda: 0.0)  # only its salvage is used


seed_inputs = seeds.sip_messages


def check(data: bytes) -> None:
    try:
        message = parse_message(data)
    except PeerError as error:
        _salvaged(data, error)
        return
    wire = message.serialize()
    again = parse_message(wire)
    assert again.serialize() == wire, (data, wire)
    for name in ("top_via", "from_addr", "to_addr", "cseq"):
        try:
            getattr(message, name)
        except PeerError:
            continue
    if isinstance(message, SipRequest):
        answers(message)


def _salvaged(data: bytes, error: PeerError) -> None:
    sent: list[bytes] = []
    _CORE.answer_unparsable(data, error, ARRIVAL, lambda wire, _: sent.append(wire))
    for wire in sent:
        response = parse_message(wire)
        assert isinstance(response, SipResponse), wire
        assert response.status == error.sip_status, (response.status, error)
        reparsed(response)
