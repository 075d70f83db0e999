"""Who may SUBSCRIBE to an AoR's reg state, who is a sync peer, and how the handler answers
(RFC 3680 6, RFC 6665 4.2.1)."""

from __future__ import annotations

import asyncio

import pytest

from sip_gateway.errors import Forbidden
from sip_gateway.server.handlers import GatewayPolicy, RequestHandler
from sip_gateway.server.notify_modes import notify_mode
from sip_gateway.server.peers import TrustedPeers
from sip_gateway.server.registrar import RegistrarPolicy
from sip_gateway.server.watch_access import WatcherAccess
from sip_gateway.server.watch_request import WatchPolicy
from sip_gateway.sip import parse_message
from sip_gateway.transport import Arrival
from tests.unit.test_watch_request import subscribe

TRUSTED = TrustedPeers(["10.0.0.0/8"])
DOMAINS = RegistrarPolicy(("example.com",), 60, 3600, 3600)
ALICE = "sip:alice@example.com"


def access(watch_own: bool = False, peers=()) -> WatcherAccess:
    return WatcherAccess.of(TRUSTED, DOMAINS, watch_own, peers)


def test_trusted_networks_may_watch_any_aor_of_our_domains():
    assert access().check(ALICE, "sip:vm@example.com", "10.1.2.3") is False
    with pytest.raises(Forbidden, match="not served"):
        access().check("sip:alice@elsewhere.org", "sip:vm@example.com", "10.1.2.3")


def test_from_elsewhere_only_the_aor_in_from_and_only_with_watch_own():
    with pytest.raises(Forbidden, match="not a trusted peer"):
        access().check(ALICE, ALICE, "192.0.2.7")
    assert access(watch_own=True).check(ALICE, "sip:Alice@Example.COM", "192.0.2.7") is False
    with pytest.raises(Forbidden, match="only the AoR in From"):
        access(watch_own=True).check(ALICE, "sip:mallory@example.com", "192.0.2.7")


def test_sync_peers_by_network_or_from_uri():
    peers = access(peers=["10.9.0.0/16", "sip:reginfo@node-b.example.com"])
    assert peers.check(ALICE, "sip:x@example.com", "10.9.1.1") is True
    assert peers.check(ALICE, "sip:reginfo@node-b.example.com", "10.1.1.1") is True
    assert peers.check(ALICE, "sip:reginfo@node-c.example.com", "10.1.1.1") is False


class Watches:
    def __init__(self) -> None:
        self.asked = []

    async def watch(self, ask, local_tag, arrival, peer) -> None:
        self.asked.append((ask, local_tag, arrival.transport, peer))


def handler(watching: bool) -> tuple[RequestHandler, Watches]:
    watches = Watches()
    policy = GatewayPolicy(DOMAINS, TRUSTED, notify_mode("rfc"),
                           watching=WatchPolicy(3761, 60, 7200) if watching else None,
                           access=access() if watching else None)
    return RequestHandler(None, policy, lambda: 0.0, watches=watches), watches


ARRIVAL = Arrival(("10.0.0.9", 5062), "udp", ("10.0.0.1", 5060))


def test_a_subscribe_is_answered_200_with_expires_contact_and_our_to_tag():
    served, watches = handler(True)
    request = parse_message(subscribe("Event: reg", "Expires: 600"))
    response = asyncio.run(served.handle(request, ARRIVAL))
    assert response.status == 200
    assert response.headers.get("Expires") == "600"
    assert response.headers.get("Contact") == "<sip:reginfo@10.0.0.1:5060;transport=udp>"
    [(ask, local_tag, transport, peer)] = watches.asked
    assert response.to_addr.tag == local_tag and ask.resource == ALICE
    assert (transport, peer) == ("udp", False)
    options = asyncio.run(served.handle(
        parse_message(subscribe().replace(b"SUBSCRIBE", b"OPTIONS")), ARRIVAL))
    assert "SUBSCRIBE" in options.headers.get_all("Allow")


def test_untrusted_subscribe_is_403_and_nothing_is_recorded():
    served, watches = handler(True)
    request = parse_message(subscribe("Event: reg"))
    response = asyncio.run(served.handle(request, Arrival(("192.0.2.7", 5062), "udp",
                                                          ("10.0.0.1", 5060))))
    assert response.status == 403 and not watches.asked


def test_with_the_role_off_subscribe_is_405():
    served, watches = handler(False)
    response = asyncio.run(served.handle(parse_message(subscribe("Event: reg")), ARRIVAL))
    assert response.status == 405 and "SUBSCRIBE" not in response.headers.get_all("Allow")
    assert not watches.asked
