"""One watcher's NOTIFY as a client transaction, and what its answer means (RFC 6665 4.2.2)."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from sip_gateway.client.notify_request import NotifyDialog
from sip_gateway.client.watcher_notifier import WatcherNotifier
from sip_gateway.sip import SubscriptionState
from tests.unit.sip_fakes import FakeOutbound, answer

DIALOG = NotifyDialog("sip:alice@example.com", "sip:watcher@example.com", "sub-1@10.0.0.9",
                      "ours-1", "w1", "sip:w@10.0.0.9:5062", ())
ACTIVE = SubscriptionState("active", expires=600)


def send(outbound, dialog=DIALOG, transport="udp", body=b"<reginfo/>"):
    return asyncio.run(WatcherNotifier(outbound).send(dialog, transport, 4, ACTIVE, body))


def test_a_2xx_delivers_it():
    outbound = FakeOutbound(answer(200))
    assert send(outbound).delivered
    [(request, hop)] = outbound.sent
    assert (request.method, request.uri, request.headers.get("CSeq")) == (
        "NOTIFY", "sip:w@10.0.0.9:5062", "4 NOTIFY")
    assert hop == (("10.0.0.9", 5062), "udp")
    assert request.headers.get("Contact") == "<sip:reginfo@127.0.0.1:5070>"
    assert request.headers.get("Via").startswith("SIP/2.0/UDP 127.0.0.1:5070;branch=")


@pytest.mark.parametrize("script, reason", [
    (answer(481, "Subscription Does Not Exist"), "481 Subscription Does Not Exist"),
    (answer(408, "Request Timeout"), "408 Request Timeout"),
    (answer(500, "Server Internal Error"), "500 Server Internal Error"),
    (None, "no answer (timeout or transport error)"),
])
def test_anything_else_fails_it(script, reason):
    delivery = send(FakeOutbound(script))
    assert not delivery.delivered and delivery.reason == reason


def test_it_goes_to_the_first_route_over_the_subscribes_transport():
    routed = replace(DIALOG, route_set=("<sip:10.0.0.7:5070;lr>", "<sip:10.0.0.8;lr>"))
    outbound = FakeOutbound(answer(200))
    assert send(outbound, routed, transport="tcp").delivered
    [(request, hop)] = outbound.sent
    assert hop == (("10.0.0.7", 5070), "tcp")
    assert request.headers.get("Via").startswith("SIP/2.0/TCP ")
    assert request.headers.get_all("Route") == list(routed.route_set)


def test_a_transport_the_uri_names_wins():
    outbound = FakeOutbound(answer(200))
    send(outbound, replace(DIALOG, remote_target="sip:w@10.0.0.9:5062;transport=tcp"))
    assert outbound.sent[0][1] == (("10.0.0.9", 5062), "tcp")


def test_an_unroutable_target_fails_without_sending():
    outbound = FakeOutbound()
    delivery = send(outbound, replace(DIALOG, remote_target="tel:+15551234"))
    assert not delivery.delivered and "no route to the watcher" in delivery.reason
    assert outbound.sent == []


def test_over_tcp_the_subscribes_own_connection_while_it_is_open():
    outbound = FakeOutbound(answer(200), answer(200))
    outbound.connections = frozenset({("10.0.0.9", 40123)})
    notifier = WatcherNotifier(outbound)
    asyncio.run(notifier.send(DIALOG, "tcp", 4, ACTIVE, b"<reginfo/>", "10.0.0.9:40123"))
    outbound.connections = frozenset()
    asyncio.run(notifier.send(DIALOG, "tcp", 5, ACTIVE, b"<reginfo/>", "10.0.0.9:40123"))
    assert [hop for _, hop in outbound.sent] == [(("10.0.0.9", 40123), "tcp"),
                                                 (("10.0.0.9", 5062), "tcp")]
