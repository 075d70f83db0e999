"""SIP messages: the Kamailio NOTIFYs, header rules of RFC 3261 7.3, caps, serializing."""

import re
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from sip_gateway.errors import MalformedMessage, MessageTooLarge, PeerError
from sip_gateway.sip import (
    ContentType,
    CSeq,
    Event,
    Headers,
    NameAddr,
    SipRequest,
    SipResponse,
    SubscriptionState,
    VersionNotSupported,
    header_key,
    parse_message,
)

NOTIFY_CASES = Path(__file__).resolve().parents[1] / "fixtures" / "kamailio-5.6" / "notify-cases"
FIXTURES = sorted(NOTIFY_CASES.glob("*.sip"))

REGISTER = (
    b"REGISTER sip:example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5091;branch=z9hG4bK-6658-1-0\r\n"
    b"Max-Forwards: 70\r\n"
    b"From: <sip:alice@example.com>;tag=6658-1\r\n"
    b"To: <sip:alice@example.com>\r\n"
    b"Call-ID: lab-alice-dev2@127.0.0.1\r\n"
    b"CSeq: 1 REGISTER\r\n"
    b'Contact: <sip:alice@127.0.0.1:5093;transport=udp>;q=0.5;+sip.instance="<urn:uuid:0-2>"\r\n'
    b"Expires: 1800\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n"
)


def register(*drop: str, extra: bytes = b"", body: bytes = b"") -> bytes:
    """The REGISTER above without the named headers, with extra header lines and a body."""
    head, _, _ = REGISTER.partition(b"\r\n\r\n")
    lines = [ln for ln in head.split(b"\r\n") if ln.split(b":")[0].decode() not in drop]
    return b"\r\n".join(lines) + b"\r\n" + extra + b"\r\n" + body


# -- the 43 NOTIFYs a real Kamailio 5.6 handled -------------------------------------------

@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_every_kamailio_notify_parses_with_its_headers(path):
    raw = path.read_bytes()
    case = int(path.name[:2])
    message = parse_message(raw)

    assert isinstance(message, SipRequest)
    assert (message.method, message.uri) == ("NOTIFY", "sip:reginfo@127.0.0.1:5070")
    headers = message.headers
    assert headers.get("call-id") == f"notify-case-{case:02d}@lab"
    assert CSeq.parse(headers.get("CSeq")) == CSeq(100 + case, "NOTIFY")
    assert NameAddr.parse(headers.get("From")).tag == f"lab-notifier-{case:02d}"
    assert NameAddr.parse(headers.get("To")).tag == f"lab-sub-{case:02d}"
    assert Event.parse(headers.get("Event")).package == ("presence" if case == 20 else "reg")
    state = SubscriptionState.parse(headers.get("Subscription-State"))
    if case == 32:
        assert (state.state, state.reason, state.expires) == ("terminated", "noresource", None)
    else:
        assert (state.state, state.expires) == ("active", 3600)
    content_type = headers.get("Content-Type")
    if case == 21:
        assert content_type is None
    else:
        assert ContentType.parse(content_type).is_reginfo == (case != 22)
    assert len(message.body) == len(raw) - raw.index(b"\r\n\r\n") - 4
    assert len(message.body) == int(headers.get("Content-Length"))


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_a_fixture_serializes_to_its_own_bytes_but_for_content_length_padding(path):
    raw = path.read_bytes()
    message = parse_message(raw)
    wire = message.serialize()
    assert wire == re.sub(rb"Content-Length: +", b"Content-Length: ", raw)
    assert parse_message(wire) == message


# -- header lines ---------------------------------------------------------------------------

def test_folded_lines_continue_the_previous_header_with_one_space():
    message = parse_message(register(extra=b"Subject: lunch\r\n   at noon\r\n\tor later\r\n"))
    assert message.headers.get("Subject") == "lunch at noon or later"
    assert message.headers.get("Expires") == "1800"


def test_a_continuation_line_before_any_header_is_refused():
    with pytest.raises(MalformedMessage, match="continuation line"):
        parse_message(b"OPTIONS sip:a@b SIP/2.0\r\n folded\r\n\r\n")


def test_compact_forms_are_found_by_full_name_and_kept_on_the_wire():
    raw = (
        b"NOTIFY sip:reginfo@127.0.0.1 SIP/2.0\r\n"
        b"v: SIP/2.0/TCP 10.0.0.1;branch=z9hG4bKx\r\nf: <sip:p@example.com>;tag=1\r\n"
        b"t: <sip:r@example.com>;tag=2\r\ni: abc@h\r\nCSeq: 7 NOTIFY\r\n"
        b"m: <sip:p@10.0.0.1>\r\no: reg\r\nk: path, outbound\r\nu: reg\r\n"
        b"c: application/reginfo+xml\r\nl: 4\r\n\r\nbody"
    )
    message = parse_message(raw)
    assert message.headers.get("Call-ID") == "abc@h" == message.headers.get("i")
    assert message.headers.get("EVENT") == "reg"
    assert message.headers.get_all("Supported") == ["path", "outbound"]
    assert message.headers.get("Allow-Events") == "reg"
    assert message.headers.get("Content-Type") == "application/reginfo+xml"
    assert message.body == b"body"
    assert message.serialize() == raw


def test_list_headers_split_on_commas_outside_quotes_and_angle_brackets():
    message = parse_message(register(extra=(
        b"Via: SIP/2.0/UDP a.example.com;branch=z9hG4bK1, SIP/2.0/UDP b.example.com\r\n"
        b'Contact: "Doe, John" <sip:j@h;x=a,b>;expires=60, <sip:k@h>;+sip.instance="<urn:x,y>"\r\n'
        b"Allow: INVITE,ACK , NOTIFY\r\nAllow-Events: reg, presence\r\n"
    )))
    headers = message.headers
    assert headers.get_all("Via") == [
        "SIP/2.0/UDP 127.0.0.1:5091;branch=z9hG4bK-6658-1-0",
        "SIP/2.0/UDP a.example.com;branch=z9hG4bK1",
        "SIP/2.0/UDP b.example.com",
    ]
    assert headers.get_all("Contact")[1:] == [
        '"Doe, John" <sip:j@h;x=a,b>;expires=60',
        '<sip:k@h>;+sip.instance="<urn:x,y>"',
    ]
    assert headers.get_all("Allow") == ["INVITE", "ACK", "NOTIFY"]
    assert headers.get_all("Allow-Events") == ["reg", "presence"]
    assert headers.get("Allow") == "INVITE"  # get() is the first element of a list header


@pytest.mark.parametrize("name, value", [
    ("Authorization", 'Digest username="alice", realm="example.com", nonce="x", uri="sip:e"'),
    ("WWW-Authenticate", 'Digest realm="example.com", qop="auth,auth-int", nonce="y"'),
    ("Proxy-Authenticate", 'Digest realm="a", nonce="b"'),
    ("Date", "Sat, 13 Nov 2010 23:29:00 GMT"),
    ("User-Agent", "sipp-lab-ua, build 3"),
    ("Server", "kamailio (5.6.3 (x86_64/linux)), lab"),
    ("Subject", "hello, world"),
])
def test_single_value_and_auth_headers_are_not_split(name, value):
    message = parse_message(register(extra=f"{name}: {value}\r\n".encode()))
    assert message.headers.get_all(name) == [value]
    assert message.headers.get(name) == value


def test_headers_keep_order_and_names_and_edit_in_place():
    headers = Headers([("Via", "SIP/2.0/UDP a"), ("To", "<sip:b@c>"), ("v", "SIP/2.0/UDP d")])
    headers.add("Route", "<sip:p1;lr>")
    headers.set("VIA", "SIP/2.0/UDP z")
    assert list(headers) == [
        ("VIA", "SIP/2.0/UDP z"), ("To", "<sip:b@c>"), ("Route", "<sip:p1;lr>")]
    assert headers.remove("route") == 1 and "Route" not in headers and "t" in headers
    assert headers.count("to") == 1 and len(headers) == 2
    with pytest.raises(ValueError):
        headers.add("X-Evil", "a\r\nVia: SIP/2.0/UDP injected")
    with pytest.raises(ValueError):
        headers.add("Bad Name", "x")


@pytest.mark.parametrize("asked_before", [False, True])
def test_with_top_answers_get_as_a_fresh_copy_of_its_lines_would(asked_before):
    headers = Headers([("Via", " , "), ("v", "SIP/2.0/UDP a, SIP/2.0/UDP b"),
                       ("From", "<sip:a@b>;tag=1"), ("Contact", "<sip:c@d>, <sip:e@f>")])
    if asked_before:  # get() answers from what it worked out then, carried over
        assert headers.get("Via") == "SIP/2.0/UDP a" and headers.get("From")
    for name, value in [("Via", "SIP/2.0/UDP z;received=1.2.3.4"), ("Route", "<sip:p;lr>")]:
        stamped = headers.with_top(name, value)
        fresh = Headers(list(stamped))
        for asked in ("Via", "From", "Contact", "Route", "To"):
            assert stamped.get(asked) == fresh.get(asked), asked
        assert stamped.get(name) == value


def test_header_keys_expand_every_registered_compact_form():
    assert [header_key(c) for c in "aAbcdefijklmnorstuvxy"] == [
        "accept-contact", "accept-contact", "referred-by", "content-type", "request-disposition",
        "content-encoding", "from", "call-id", "reject-contact", "supported", "content-length",
        "contact", "identity-info", "event", "refer-to", "subject", "to", "allow-events", "via",
        "session-expires", "identity",
    ]


# -- framing of a datagram -----------------------------------------------------------------

def test_bare_lf_line_ends_and_leading_blank_lines_are_tolerated():
    raw = b"\r\n\r\n" + register(body=b"").replace(b"\r\n", b"\n")
    message = parse_message(raw)
    assert message.method == "REGISTER" and message.headers.get("Expires") == "1800"


def test_without_content_length_a_datagram_body_is_the_rest():
    message = parse_message(register("Content-Length", body=b"hello\r\n"))
    assert message.body == b"hello\r\n"


def test_bytes_after_the_body_of_a_datagram_are_ignored():
    raw = register("Content-Length", extra=b"Content-Length: 3\r\n", body=b"abcdef")
    assert parse_message(raw).body == b"abc"


@pytest.mark.parametrize("value, error, reason", [
    (b"9", MalformedMessage, "Content-Length 9 but only 3 body bytes"),
    (b"-1", MalformedMessage, "not a number"),
    (b"3x", MalformedMessage, "not a number"),
    (b"", MalformedMessage, "not a number"),
    (b"1" * 5000, MessageTooLarge, "above"),
])
def test_bad_content_lengths_are_refused(value, error, reason):
    raw = register("Content-Length", extra=b"Content-Length: " + value + b"\r\n", body=b"abc")
    with pytest.raises(error, match=reason):
        parse_message(raw)


def test_two_different_content_lengths_are_refused():
    raw = register("Content-Length", extra=b"Content-Length: 3\r\nl: 2\r\n", body=b"abc")
    with pytest.raises(MalformedMessage, match="Content-Length header more than once"):
        parse_message(raw)


@pytest.mark.parametrize("name", ["To", "From", "CSeq", "Call-ID", "Via"])
def test_a_request_without_a_mandatory_header_is_refused_naming_it(name):
    with pytest.raises(MalformedMessage, match=f"without a {name} header"):
        parse_message(register(name))


def test_max_forwards_is_optional_but_checked():
    assert parse_message(register("Max-Forwards")).headers.get("Max-Forwards") is None
    with pytest.raises(MalformedMessage, match="Max-Forwards"):
        parse_message(register("Max-Forwards", extra=b"Max-Forwards: 256\r\n"))


def test_the_cseq_method_must_be_the_request_method():
    with pytest.raises(MalformedMessage, match="CSeq method INVITE differs"):
        parse_message(register("CSeq", extra=b"CSeq: 1 INVITE\r\n"))


def test_a_single_valued_header_twice_is_refused():
    with pytest.raises(MalformedMessage, match="Call-ID header more than once"):
        parse_message(register(extra=b"i: other@h\r\n"))


def test_a_response_needs_only_its_status_line():
    response = parse_message(b"SIP/2.0 412 Conditional request failed\r\nContent-Length: 0\r\n\r\n")
    assert isinstance(response, SipResponse)
    assert (response.status, response.reason) == (412, "Conditional request failed")
    assert response.body == b""


@pytest.mark.parametrize("raw, reason", [
    (b"", "empty message"),
    (b"\r\n\r\n", "empty message"),
    (b"REGISTER sip:example.com SIP/2.0\r\nTo: <sip:a@b>\r\n", "no empty line"),
    (b"REGISTER  SIP/2.0\r\n\r\n", "bad request line"),
    (b"REG ISTER sip:a SIP/2.0\r\n\r\n", "bad request line"),
    (b"REGISTER sip:a HTTP/1.1\r\n\r\n", "bad request line"),
    (b"SIP/2.0 20 OK\r\n\r\n", "bad status line"),
    (b"SIP/2.0 099 Early\r\n\r\n", "outside 100..699"),
    (b"SIP/2.0\tOK\r\n\r\n", "control character"),
    (b"SIP/2.0 200 OK\r\nNo colon here\r\n\r\n", "bad header line"),
    (b"SIP/2.0 200 OK\r\nBad Name: x\r\n\r\n", "bad header line"),
    (b"SIP/2.0 200 OK\r\nX: a\x00b\r\n\r\n", "control character"),
    (b"SIP/2.0 200 OK\r\nX: a\rb\r\n\r\n", "control character"),
    (b"SIP/2.0 200 \xff\xfe\r\n\r\n", "not UTF-8"),
    (b"SIP/X 200 OK\r\n\r\n", "bad SIP version"),
    (b"SIP/2.0 200 OK\r\nX: \\\\\x07\r\n\r\n", "control character"),  # \\ then a bare BEL
    (b"OPTIONS <sip:a@b> SIP/2.0\r\n\r\n", "not an absolute URI"),
    (b"OPTIONS a@b SIP/2.0\r\n\r\n", "not an absolute URI"),
    (b"OPTIONS sip:a@b?Route=x SIP/2.0\r\n\r\n", "headers in a SIP Request-URI"),
    (b"OPTIONS sips:b.example?Route=x SIP/2.0\r\n\r\n", "headers in a SIP Request-URI"),
])
def test_malformed_messages_are_refused_with_a_one_line_reason(raw, reason):
    with pytest.raises(MalformedMessage, match=reason) as caught:
        parse_message(raw)
    assert "\n" not in str(caught.value)


def test_a_quoted_pair_may_quote_a_control_character_and_a_user_part_a_question_mark():
    """RFC 3261 25.1 quoted-pair and user-unreserved, as RFC 4475 3.1.1.2 uses them."""
    message = parse_message(b"SIP/2.0 200 OK\r\nTo: \"a\\\x00b\" <sip:x@y>\r\n\r\n")
    assert message.headers.get("To") == '"a\\\x00b" <sip:x@y>'
    request = parse_message(b"OPTIONS sip:a?b@c.example;x SIP/2.0  \r\nVia: SIP/2.0/UDP h\r\n"
                            b"To: <sip:t@h>\r\nFrom: <sip:f@h>;tag=1\r\nCall-ID: c\r\n"
                            b"CSeq: 1 OPTIONS\r\n\r\n")
    assert request.uri == "sip:a?b@c.example;x"


def test_another_sip_version_is_answered_505():
    with pytest.raises(VersionNotSupported) as caught:
        parse_message(register().replace(b"SIP/2.0\r\n", b"SIP/3.0\r\n", 1))
    assert caught.value.sip_status == 505


def test_header_and_body_caps_raise_message_too_large():
    big_header = register(extra=b"X-Padding: " + b"a" * 20_000 + b"\r\n")
    with pytest.raises(MessageTooLarge, match="header section above 16384 bytes"):
        parse_message(big_header)
    assert parse_message(big_header, max_header_bytes=32_000).headers.get("X-Padding")
    with pytest.raises(MessageTooLarge, match="Content-Length '101' above 100 bytes"):
        parse_message(register("Content-Length", extra=b"Content-Length: 101\r\n",
                               body=b"x" * 101), max_body_bytes=100)
    with pytest.raises(MessageTooLarge, match="body of 101 bytes above 100"):
        parse_message(register("Content-Length", body=b"x" * 101), max_body_bytes=100)
    with pytest.raises(MessageTooLarge) as caught:
        parse_message(b"X" * 2_000_000)
    assert caught.value.sip_status == 513


# -- serializing -----------------------------------------------------------------------------

def test_serialize_sets_content_length_from_the_body_and_uses_crlf():
    headers = Headers([("Via", "SIP/2.0/UDP h;branch=z9hG4bK1"), ("Content-Length", "99"),
                       ("l", "98")])
    request = SipRequest("MESSAGE", "sip:a@b", headers=headers, body=b"hi")
    assert request.serialize() == (
        b"MESSAGE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"
        b"Content-Length: 2\r\n\r\nhi"
    )
    response = SipResponse(202, "Accepted", headers=Headers([("Call-ID", "x")]))
    assert response.serialize() == (
        b"SIP/2.0 202 Accepted\r\nCall-ID: x\r\nContent-Length: 0\r\n\r\n")


def test_messages_refuse_start_lines_that_would_not_parse():
    with pytest.raises(ValueError):
        SipRequest("NOT IFY", "sip:a@b")
    with pytest.raises(ValueError):
        SipRequest("NOTIFY", "sip:a@b\r\nVia: x")
    with pytest.raises(ValueError):
        SipResponse(700, "Too High")


# -- properties ------------------------------------------------------------------------------

token = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~",
                min_size=1, max_size=12)
value_text = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=30).map(
    lambda s: s.strip(" \t"))
RESERVED = {"to", "from", "cseq", "call-id", "via", "max-forwards", "content-type",
            "content-length"}
extra_headers = st.lists(
    st.tuples(token.filter(lambda n: header_key(n) not in RESERVED), value_text), max_size=6)


@st.composite
def sip_messages(draw) -> tuple[SipRequest | SipResponse, bytes]:
    """A valid message as a value and as wire bytes with the liberties RFC 3261 7 allows."""
    headers = Headers()
    method = draw(st.sampled_from(["NOTIFY", "REGISTER", "SUBSCRIBE", "PUBLISH"]) | token)
    if draw(st.booleans()):
        number = draw(st.integers(0, 2**31 - 1))
        headers.add(draw(st.sampled_from(["Via", "v", "VIA"])),
                    f"SIP/2.0/UDP 10.0.0.{number % 250}:5060;branch=z9hG4bK{number}")
        headers.add(draw(st.sampled_from(["From", "f"])), f"<sip:{draw(token)}@example.com>;tag=1")
        headers.add("To", f"<sip:{draw(token)}@example.com>")
        headers.add(draw(st.sampled_from(["Call-ID", "i", "call-id"])), draw(token))
        headers.add("CSeq", f"{number} {method}")
    for name, value in draw(extra_headers):
        headers.add(name, value)
    body = draw(st.binary(max_size=64))
    headers.add(draw(st.sampled_from(["Content-Length", "l"])), str(len(body)))
    if "Via" in headers:
        message = SipRequest(method, f"sip:{draw(token)}@example.com", headers=headers, body=body)
    else:
        message = SipResponse(draw(st.integers(100, 699)), draw(value_text), headers=headers,
                              body=body)
    end = draw(st.sampled_from(["\r\n", "\n"]))
    lines = [message.start_line()]
    for name, value in headers:
        space = draw(st.sampled_from(["", " ", "  ", "\t"]))
        if " " in value and draw(st.booleans()):  # fold at a space
            first, _, rest = value.partition(" ")
            value = f"{first}{end} {rest}"
        lines.append(f"{name}{draw(st.sampled_from(['', ' ']))}:{space}{value}")
    wire = end.join(lines).encode() + (end * 2).encode() + body + draw(st.binary(max_size=8))
    return message, wire


@given(sip_messages())
@settings(max_examples=300)
def test_generated_messages_parse_and_serialize_parses_to_an_equal_message(case):
    message, wire = case
    parsed = parse_message(wire)
    assert parsed.start_line() == message.start_line()
    assert parsed.body == message.body
    assert [name for name, _ in parsed.headers] == [name for name, _ in message.headers]
    assert parse_message(parsed.serialize()) == parsed


def _fuzzed(draw_from: bytes):
    return st.tuples(st.integers(0, len(draw_from)), st.integers(0, 8), st.binary(max_size=8)).map(
        lambda t: draw_from[: t[0]] + t[2] + draw_from[t[0] + t[1] :])


@given(st.binary(max_size=300) | _fuzzed(REGISTER) | _fuzzed(FIXTURES[0].read_bytes()))
@example(b"REGISTER sip:a SIP/2.0\r\nCSeq: 99999999999999999999 REGISTER\r\n\r\n")
@example(b"SIP/2.0 200 OK\r\nl: " + b"9" * 5000 + b"\r\n\r\n")
@settings(max_examples=1000)
def test_any_bytes_either_parse_or_raise_a_peer_error(data):
    try:
        message = parse_message(data)
    except PeerError as error:
        assert "\n" not in str(error)
        return
    again = parse_message(message.serialize())  # now with a Content-Length if it had none
    assert (again.start_line(), again.body) == (message.start_line(), message.body)
    assert parse_message(again.serialize()) == again
