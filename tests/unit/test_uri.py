"""URIs: parsing, printing and RFC 3261 19.1.4 comparison."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain import InvalidUri, SipUri, TelUri, parse_uri


def key(text: str) -> str:
    return parse_uri(text).comparison_key()


def test_a_sip_uri_is_parsed_into_its_parts():
    uri = parse_uri("sip:alice:secret@Example.COM:5070;transport=TCP;lr?subject=hi")
    assert uri == SipUri("sip", "alice", "example.com", 5070, "secret",
                         (("transport", "TCP"), ("lr", None)), "subject=hi")
    assert uri.param("TRANSPORT") == "TCP"


def test_a_user_part_may_hold_question_marks_and_semicolons():
    """RFC 3261 25.1 user-unreserved; RFC 4475 3.1.1.2 has such a URI. Headers follow the
    host, after the first '@'."""
    uri = parse_uri("sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,"
                    "weird!*pas$wo~d_too.(doesn't-it)@example.com")
    assert (uri.user, uri.host) == ("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*",
                                    "example.com")
    assert uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert parse_uri("sip:user@example.com?Route=%3Csip:p.example.com%3E").headers == (
        "Route=%3Csip:p.example.com%3E")


def test_angle_brackets_are_accepted_and_ipv6_is_canonical():
    uri = parse_uri("<sips:bob@[2001:DB8:0::1]:5061>")
    assert uri.host == "[2001:db8::1]" and uri.port == 5061 and uri.scheme == "sips"


@pytest.mark.parametrize("a, b", [
    ("sip:alice@EXAMPLE.com", "SIP:alice@example.COM"),
    ("sip:%61lice@example.com", "sip:alice@example.com"),
    ("sip:alice@example.com;transport=TCP", "sip:alice@example.com;transport=tcp"),
    ("sip:a@h;lr;x=1", "sip:a@h;x=1;lr"),
    ("sip:+1-212-555-0101@h;user=phone", "sip:+12125550101@h;user=phone"),
    ("tel:+1-212-555-0101", "tel:+12125550101"),
])
def test_equivalent_uris_share_a_comparison_key(a, b):
    assert key(a) == key(b)


@pytest.mark.parametrize("a, b", [
    ("sip:alice@example.com", "sip:Alice@example.com"),  # user part is case-sensitive
    ("sip:alice@example.com", "sip:alice@example.com:5060"),  # explicit default port differs
    ("sip:alice@example.com", "sips:alice@example.com"),
    ("sip:alice@example.com;transport=tcp", "sip:alice@example.com;transport=udp"),
])
def test_different_uris_have_different_keys(a, b):
    assert key(a) != key(b)


@pytest.mark.parametrize("text, reason", [
    ("", "empty"),
    ("alice@example.com", "no scheme"),
    ("http://example.com", "unsupported URI scheme"),
    ("sip:", "no host"),
    ("sip:@example.com", "empty user"),
    ("sip:alice@exa mple.com", "bad character"),
    ("sip:alice@example.com:0", "bad port"),
    ("sip:alice@example.com:99999", "bad port"),
    ("sip:alice@[::1", "unterminated IPv6"),
    ("sip:alice@[zz::1]", "bad IPv6"),
    ("sip:alice@300.1.1.1", "bad IPv4"),
    ("sip:alice@-bad-.com", "bad host"),
    ("sip:alice@example.com;;lr", "empty URI parameter"),
    ("sip:%ff%fe@example.com", "bad escape"),
    ("tel:12345", "bad tel number"),
    ("sip:" + "a" * 3000 + "@h", "longer than"),
])
def test_malformed_uris_are_refused_with_a_reason(text, reason):
    with pytest.raises(InvalidUri, match=reason):
        parse_uri(text)


def test_a_local_tel_number_needs_a_phone_context():
    assert parse_uri("tel:7042;phone-context=example.com") == TelUri(
        "7042", (("phone-context", "example.com"),))


@given(st.text(max_size=80))
def test_any_text_either_parses_or_raises_invalid_uri(text):
    try:
        uri = parse_uri(text)
    except InvalidUri:
        return
    assert parse_uri(str(uri)).comparison_key() == uri.comparison_key()
