"""Responses (RFC 3261 8.2.6): the copied headers, our To tag, and errors told in a Warning."""

import pytest

from sip_gateway.errors import (
    BadEvent,
    Forbidden,
    IntervalTooBrief,
    MalformedMessage,
    MessageTooLarge,
    MethodNotAllowed,
    ServiceUnavailable,
    UnknownSubscription,
    UnsupportedMediaType,
    VersionNotSupported,
)
from sip_gateway.server.responses import (
    REASON_PHRASES,
    make_response,
    reason_phrase,
    response_for_error,
    to_tag_for,
    warning,
)
from sip_gateway.sip import NameAddr, SipResponse, parse_message

REGISTER = (
    b"REGISTER sip:example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-proxy;received=192.0.2.1\r\n"
    b"v: SIP/2.0/TCP 10.0.0.7:5070;branch=z9hG4bK-edge , SIP/2.0/UDP 10.0.0.8;branch=z9hG4bK-ua\r\n"
    b"Max-Forwards: 69\r\n"
    b'From: "Alice" <sip:alice@example.com>;tag=from-1\r\n'
    b"To: Alice <sip:alice@example.com>\r\n"
    b"Call-ID: call-1@10.0.0.8\r\n"
    b"CSeq: 42 REGISTER\r\n"
    b"Contact: <sip:alice@10.0.0.8>\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n"
)


def request(raw: bytes = REGISTER, **swap: str):
    """REGISTER above with header lines swapped (`Call_ID="x"` replaces the Call-ID line)."""
    for name, value in swap.items():
        name = name.replace("_", "-").encode()
        head, _, rest = raw.partition(b"\r\n" + name + b": ")
        raw = head + b"\r\n" + name + b": " + value.encode() + b"\r\n" + rest.partition(b"\r\n")[2]
    return parse_message(raw)


def reparsed(response: SipResponse) -> SipResponse:
    message = parse_message(response.serialize())
    assert message == response
    return message


# -- what every response copies (RFC 3261 8.2.6.2) ----------------------------------------

def test_a_response_echoes_every_via_in_order_and_the_dialog_headers():
    response = reparsed(make_response(request(), 200, to_tag="t1"))

    assert response.start_line() == "SIP/2.0 200 OK"
    names = [name for name, _ in response.headers]
    assert names == ["Via", "Via", "From", "To", "Call-ID", "CSeq", "Server", "Content-Length"]
    assert response.headers.get_all("Via") == [
        "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-proxy;received=192.0.2.1",
        "SIP/2.0/TCP 10.0.0.7:5070;branch=z9hG4bK-edge",
        "SIP/2.0/UDP 10.0.0.8;branch=z9hG4bK-ua",
    ]
    # The Via lines keep the values as received, comma list included.
    assert list(response.headers)[1] == ("Via", "SIP/2.0/TCP 10.0.0.7:5070;branch=z9hG4bK-edge"
                                                " , SIP/2.0/UDP 10.0.0.8;branch=z9hG4bK-ua")
    assert response.headers.get("From") == '"Alice" <sip:alice@example.com>;tag=from-1'
    assert response.headers.get("To") == "Alice <sip:alice@example.com>;tag=t1"
    assert response.headers.get("Call-ID") == "call-1@10.0.0.8"
    assert response.headers.get("CSeq") == "42 REGISTER"
    assert response.headers.get("Server") == "pua-reginfo"
    assert response.headers.get("Content-Length") == "0"


def test_a_to_tag_already_there_is_kept_and_a_100_gets_none():
    tagged = request(To="<sip:alice@example.com>;tag=theirs")
    assert make_response(tagged, 200, to_tag="ours").headers.get("To") == (
        "<sip:alice@example.com>;tag=theirs")
    assert make_response(request(), 100).headers.get("To") == "Alice <sip:alice@example.com>"
    assert make_response(request(), 100).start_line() == "SIP/2.0 100 Trying"


def test_without_a_to_tag_argument_the_stable_tag_is_used():
    response = make_response(request(), 404)
    assert NameAddr.parse(response.headers.get("To")).tag == to_tag_for(request())


def test_an_unreadable_to_is_echoed_as_it_came():
    response = make_response(request(To="<sip:alice@"), 400)
    assert response.headers.get("To") == "<sip:alice@"


def test_the_to_tag_is_the_same_for_one_call_id_and_from_tag_and_differs_otherwise():
    retransmission = request(Via="SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-other",
                             CSeq="43 REGISTER")
    tag = to_tag_for(request())
    assert tag == to_tag_for(retransmission)
    assert tag != to_tag_for(request(From="<sip:alice@example.com>;tag=from-2"))
    assert tag != to_tag_for(request(Call_ID="call-2@10.0.0.8"))
    assert tag.isalnum() and 8 <= len(tag) <= 32


def test_reason_phrases_come_from_the_table_or_the_caller_or_the_status_class():
    assert REASON_PHRASES[423] == "Interval Too Brief"
    assert reason_phrase(481) == "Call/Transaction Does Not Exist"
    assert reason_phrase(486) == "Request Failure"
    assert reason_phrase(603) == "Global Failure"
    assert make_response(request(), 202).reason == "Accepted"
    assert make_response(request(), 200, "Fine").start_line() == "SIP/2.0 200 Fine"


def test_extra_headers_and_a_body_with_its_type_and_length():
    response = reparsed(make_response(request(), 200, headers=[("Expires", "60")],
                                      body=b"<x/>", content_type="application/reginfo+xml"))
    assert response.headers.get("Expires") == "60"
    assert response.headers.get("Content-Type") == "application/reginfo+xml"
    assert response.headers.get("Content-Length") == "4"
    assert response.body == b"<x/>"


def test_a_body_without_a_content_type_is_our_mistake():
    with pytest.raises(ValueError, match="content_type"):
        make_response(request(), 200, body=b"x")


# -- errors -----------------------------------------------------------------------------------

@pytest.mark.parametrize("error, status, reason", [
    (MalformedMessage("bad CSeq"), 400, "Bad Request"),
    (Forbidden("domain other.org is not served"), 403, "Forbidden"),
    (UnknownSubscription("no such dialog"), 481, "Call/Transaction Does Not Exist"),
    (MessageTooLarge("too big"), 513, "Message Too Large"),
    (VersionNotSupported("SIP/3.0"), 505, "Version Not Supported"),
])
def test_an_error_is_answered_with_its_status_the_standard_phrase_and_a_warning(error, status,
                                                                                 reason):
    response = reparsed(response_for_error(request(), error, "t1"))
    assert (response.status, response.reason) == (status, reason)
    assert response.headers.get("Warning") == f'399 pua-reginfo "{error}"'
    assert response.headers.get("To").endswith(";tag=t1")
    assert response.headers.get("CSeq") == "42 REGISTER"


def test_423_carries_min_expires():
    response = reparsed(response_for_error(request(), IntervalTooBrief(120)))
    assert response.start_line() == "SIP/2.0 423 Interval Too Brief"
    assert response.headers.get("Min-Expires") == "120"
    assert "120" in response.headers.get("Warning")


def test_489_carries_allow_events_and_415_accept():
    bad_event = response_for_error(request(), BadEvent("Event presence is not reg"))
    assert (bad_event.status, bad_event.headers.get("Allow-Events")) == (489, "reg")
    media = response_for_error(request(), UnsupportedMediaType("text/plain"))
    assert (media.status, media.headers.get("Accept")) == (415, "application/reginfo+xml")
    assert "Allow-Events" not in media.headers and "Accept" not in bad_event.headers


def test_405_carries_allow_and_503_retry_after_when_given():
    refused = response_for_error(request(), MethodNotAllowed("no INVITE", ("REGISTER", "NOTIFY")))
    assert (refused.status, refused.headers.get_all("Allow")) == (405, ["REGISTER", "NOTIFY"])
    busy = response_for_error(request(), ServiceUnavailable("store down", retry_after=30))
    assert (busy.status, busy.headers.get("Retry-After")) == (503, "30")
    assert "Retry-After" not in response_for_error(request(), ServiceUnavailable("down")).headers


def test_the_warning_text_escapes_quotes_and_drops_control_characters():
    text = 'bad "q" in C:\\contact\x00\r\nnext\tline\x85end'
    assert warning(text) == '399 pua-reginfo "bad \\"q\\" in C:\\\\contact next line end"'
    response = reparsed(response_for_error(request(), MalformedMessage(text)))
    assert response.headers.get_all("Warning") == [warning(text)]


def test_the_warning_text_is_capped_at_200_characters_without_splitting_an_escape():
    assert warning("x" * 500) == '399 pua-reginfo "' + "x" * 200 + '"'
    capped = warning("x" * 199 + '"tail')
    assert capped == '399 pua-reginfo "' + "x" * 199 + '"'
    response = reparsed(response_for_error(request(), MalformedMessage('"' * 300)))
    assert response.headers.get("Warning") == '399 pua-reginfo "' + '\\"' * 100 + '"'
