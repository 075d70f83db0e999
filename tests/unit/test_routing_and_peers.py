"""Response routing (RFC 3261 18.2.2, RFC 3581) and the trusted-peer list."""

import pytest

from sip_gateway.server.peers import TrustedPeers
from sip_gateway.sip.routing import response_destination, stamp_via
from sip_gateway.sip import Via


@pytest.mark.parametrize("via, source, stamped, destination", [
    ("SIP/2.0/UDP 192.0.2.1:5070;branch=z9hG4bK1", ("192.0.2.1", 5070),
     "SIP/2.0/UDP 192.0.2.1:5070;branch=z9hG4bK1", ("192.0.2.1", 5070)),
    ("SIP/2.0/UDP 10.0.0.5:5070;branch=z9hG4bK1", ("192.0.2.9", 40000),
     "SIP/2.0/UDP 10.0.0.5:5070;branch=z9hG4bK1;received=192.0.2.9", ("192.0.2.9", 5070)),
    ("SIP/2.0/UDP 10.0.0.5;branch=z9hG4bK1;rport", ("192.0.2.9", 40000),
     "SIP/2.0/UDP 10.0.0.5;branch=z9hG4bK1;rport=40000;received=192.0.2.9", ("192.0.2.9", 40000)),
    ("SIP/2.0/UDP phone.example.com;branch=z9hG4bK1", ("192.0.2.9", 5060),
     "SIP/2.0/UDP phone.example.com;branch=z9hG4bK1;received=192.0.2.9", ("192.0.2.9", 5060)),
    ("SIP/2.0/UDP [2001:db8::1]:5080;branch=z9hG4bK1;rport", ("2001:db8::1", 5081),
     "SIP/2.0/UDP [2001:db8::1]:5080;branch=z9hG4bK1;rport=5081", ("2001:db8::1", 5081)),
])
def test_the_top_via_is_stamped_and_responses_follow_it(via, source, stamped, destination):
    result = stamp_via(Via.parse(via), source)
    assert str(result) == stamped
    assert response_destination(result) == destination


def test_a_spoofed_received_is_replaced_by_the_real_source():
    result = stamp_via(Via.parse("SIP/2.0/UDP 10.0.0.5;branch=z9hG4bK1;received=203.0.113.1"),
                       ("192.0.2.9", 5060))
    assert result.received == "192.0.2.9"


@pytest.mark.parametrize("address, allowed", [
    ("127.0.0.1", True), ("127.1.2.3", True), ("::1", True), ("::ffff:127.0.0.1", True),
    ("10.0.0.1", False), ("2001:db8::1", False), ("not-an-ip", False),
])
def test_trusted_peers(address, allowed):
    assert TrustedPeers(["127.0.0.0/8", "::1/128"]).allows(address) is allowed
