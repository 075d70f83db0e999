"""SUBSCRIBE as the notifier reads it, and the NOTIFY it sends back (RFC 6665, RFC 3680)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from sip_gateway.client.notify_request import NotifyDialog, build_notify, notify_hop_uri
from sip_gateway.errors import BadEvent, IntervalTooBrief, MalformedMessage, NotAcceptable
from sip_gateway.server.responses import response_for_error
from sip_gateway.server.watch_request import (
    DEFAULT_EXPIRES, WatchPolicy, granted_expires, read_subscribe,
)
from sip_gateway.sip import SubscriptionState, parse_message

POLICY = WatchPolicy(default_expires=3761, min_expires=60, max_expires=7200)


def subscribe(*extra: str, to_tag: str = "", contact: str | None = "<sip:w@10.0.0.9:5062>",
              from_tag: str = ";tag=w1") -> bytes:
    lines = ["SUBSCRIBE sip:alice@example.com SIP/2.0",
             "Via: SIP/2.0/UDP 10.0.0.9:5062;branch=z9hG4bK-s1",
             "Max-Forwards: 70", f"From: <sip:watcher@example.com>{from_tag}",
             f"To: <sip:alice@example.com>{to_tag}", "Call-ID: sub-1@10.0.0.9",
             "CSeq: 7 SUBSCRIBE"]
    if contact is not None:
        lines.append(f"Contact: {contact}")
    lines += list(extra) + ["Content-Length: 0", "", ""]
    return "\r\n".join(lines).encode()


def read(data: bytes):
    return read_subscribe(parse_message(data), POLICY)


def test_a_new_subscription_names_the_aor_the_watcher_and_the_dialog():
    request = read(subscribe("Event: reg", "Accept: application/reginfo+xml", "Expires: 600",
                             "Record-Route: <sip:p1.example.com;lr>",
                             "Record-Route: <sip:p2.example.com;lr>"))
    assert (request.resource, request.watcher, request.call_id, request.remote_tag) == (
        "sip:alice@example.com", "sip:watcher@example.com", "sub-1@10.0.0.9", "w1")
    assert request.local_tag is None and not request.in_dialog
    assert request.remote_target == "sip:w@10.0.0.9:5062"
    assert request.route_set == ("<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>")
    assert (request.expires, request.cseq) == (600, 7)


def test_a_refresh_names_our_tag():
    request = read(subscribe("Event: reg", to_tag=";tag=ours-1"))
    assert request.in_dialog and request.local_tag == "ours-1"
    assert request.expires == 3761 == DEFAULT_EXPIRES


@pytest.mark.parametrize("text, granted", [(None, 3761), ("0", 0), ("60", 60), ("3600", 3600),
                                           ("86400", 7200)])
def test_lifetimes(text, granted):
    assert granted_expires(text, POLICY) == granted


def test_a_lifetime_too_brief_is_refused_with_min_expires():
    with pytest.raises(IntervalTooBrief) as raised:
        read(subscribe("Event: reg", "Expires: 59"))
    response = response_for_error(parse_message(subscribe("Event: reg")), raised.value)
    assert response.status == 423 and response.headers.get("Min-Expires") == "60"
    with pytest.raises(MalformedMessage):
        read(subscribe("Event: reg", "Expires: soon"))


@pytest.mark.parametrize("event", [None, "presence", "reg-info", "message-summary"])
def test_other_packages_are_refused_489_with_allow_events(event):
    extra = () if event is None else (f"Event: {event}",)
    with pytest.raises(BadEvent) as raised:
        read(subscribe(*extra))
    response = response_for_error(parse_message(subscribe()), raised.value)
    assert response.status == 489 and response.headers.get("Allow-Events") == "reg"


@pytest.mark.parametrize("accept", [
    "application/reginfo+xml", "application/*", "*/*", "Application/Reginfo+XML;q=0.5",
    "application/pidf+xml, application/reginfo+xml"])
def test_an_accept_that_admits_reginfo(accept):
    assert read(subscribe("Event: reg", f"Accept: {accept}")).expires == 3761


@pytest.mark.parametrize("accept", ["application/pidf+xml", "text/plain",
                                    "application/reginfo+xml;q=0", "*/xml"])
def test_an_accept_that_does_not_is_refused_406(accept):
    with pytest.raises(NotAcceptable) as raised:
        read(subscribe("Event: reg", f"Accept: {accept}"))
    assert response_for_error(parse_message(subscribe()), raised.value).status == 406


@pytest.mark.parametrize("data", [
    subscribe("Event: reg", from_tag=""),
    subscribe("Event: reg", contact=None),
    subscribe("Event: reg", "Contact: <sip:other@10.0.0.9>"),
])
def test_a_dialog_that_cannot_be_made_is_refused_400(data):
    with pytest.raises(MalformedMessage):
        read(data)


DIALOG = NotifyDialog("sip:alice@example.com", "sip:watcher@example.com", "sub-1@10.0.0.9",
                      "ours-1", "w1", "sip:w@10.0.0.9:5062",
                      ("<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"))


def test_the_notify_answers_in_the_dialog_through_its_route_set():
    body = b"<?xml version='1.0'?><reginfo/>"
    request = build_notify(DIALOG, 3, SubscriptionState("active", expires=599), body,
                           via_host="127.0.0.1", via_port=5060, branch="z9hG4bK-n3",
                           contact="sip:reginfo@127.0.0.1:5060")
    again = parse_message(request.serialize())
    assert (again.method, again.uri) == ("NOTIFY", "sip:w@10.0.0.9:5062")
    headers = again.headers
    assert headers.get_all("Route") == ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
    assert headers.get("From") == "<sip:alice@example.com>;tag=ours-1"
    assert headers.get("To") == "<sip:watcher@example.com>;tag=w1"
    assert (headers.get("Call-ID"), headers.get("CSeq")) == ("sub-1@10.0.0.9", "3 NOTIFY")
    assert (headers.get("Event"), headers.get("Subscription-State")) == ("reg",
                                                                         "active;expires=599")
    assert headers.get("Content-Type") == "application/reginfo+xml"
    assert headers.get("Contact") == "<sip:reginfo@127.0.0.1:5060>"
    assert again.body == body
    assert notify_hop_uri(DIALOG) == "sip:p1.example.com;lr"


def test_a_final_notify_without_a_document():
    request = build_notify(DIALOG, 4, SubscriptionState("terminated", reason="timeout"), None,
                           via_host="::1", via_port=5060, branch="z9hG4bK-n4",
                           contact="<sip:reginfo@[::1]:5060>", transport="tcp")
    again = parse_message(request.serialize())
    assert again.headers.get("Subscription-State") == "terminated;reason=timeout"
    assert again.headers.get("Content-Type") is None and again.body == b""
    assert again.headers.get("Via").startswith("SIP/2.0/TCP [::1]:5060;")
    assert notify_hop_uri(replace(DIALOG, route_set=())) == "sip:w@10.0.0.9:5062"
