"""Typed header values: what each parses to, and the one-line reason when it does not."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain import SipUri, TelUri
from sip_gateway.errors import MalformedMessage
from sip_gateway.sip import (
    ContentType,
    CSeq,
    ETag,
    Event,
    NameAddr,
    SubscriptionState,
    Via,
    parse_delta_seconds,
)

INSTANCE = '"<urn:uuid:00000000-0000-1000-8000-000000000002>"'


def test_a_name_addr_has_a_quoted_display_name_a_parsed_uri_and_a_tag():
    value = NameAddr.parse(r'"Bob \"B\" Smith" <sip:Bob@Example.com:5070;transport=tcp>;tag=a1')
    assert value.display_name == 'Bob "B" Smith'
    assert value.uri == SipUri("sip", "Bob", "example.com", 5070, params=(("transport", "tcp"),))
    assert value.tag == "a1"
    assert NameAddr.parse(str(value)) == value


def test_token_display_names_and_contact_parameters_with_quoted_brackets():
    value = NameAddr.parse(f"Alice Liddell <sip:a@127.0.0.1:5093>;q=0.5;+sip.instance={INSTANCE}"
                           ";reg-id=1;+g.oma.sip-im")
    assert value.display_name == "Alice Liddell"
    assert value.param("+sip.instance") == "<urn:uuid:00000000-0000-1000-8000-000000000002>"
    assert value.param("Q") == "0.5" and value.param("+g.oma.sip-im") == ""
    assert value.param("expires") is None and value.tag is None


def test_without_angle_brackets_the_parameters_belong_to_the_header():
    value = NameAddr.parse("sip:bob@example.com;tag=88")
    assert value.uri == SipUri("sip", "bob", "example.com") and value.tag == "88"
    assert NameAddr.parse("<tel:+1-212-555-0101>").uri == TelUri("+1-212-555-0101")


@pytest.mark.parametrize("text, reason", [
    ("", "bad URI in From header: empty URI"),
    ("*", "URI has no scheme"),
    ("<sip:a@h", "'<' without '>'"),
    ('"Bob <sip:a@h>', "unterminated display name"),
    ('"Bob" sip:a@h', "display name without <URI>"),
    ("<sip:a@h> junk", "junk after '>'"),
    ("<http://example.com>", "unsupported URI scheme"),
    ("<sip:a@h>;tag=", "bad parameter"),
    ("<sip:a@h>;=x", "bad parameter"),
])
def test_bad_name_addrs_name_the_header(text, reason):
    with pytest.raises(MalformedMessage, match=reason) as caught:
        NameAddr.parse(text, header="From")
    assert "From header" in str(caught.value)


def test_a_via_has_transport_host_port_and_the_rfc_3581_rport():
    via = Via.parse("SIP/2.0/UDP 127.0.0.1:5092;branch=z9hG4bK-7039-1-0;rport")
    assert (via.protocol, via.transport) == ("SIP/2.0", "UDP")
    assert (via.host, via.port) == ("127.0.0.1", 5092)
    assert via.branch == "z9hG4bK-7039-1-0" and via.has_rport and via.rport is None
    answered = Via.parse("SIP / 2.0 / tcp [2001:DB8::1] ;received=2001:db8::2;rport=5061")
    assert (answered.transport, answered.host, answered.port) == ("TCP", "[2001:db8::1]", None)
    assert answered.received == "2001:db8::2" and answered.rport == 5061
    assert Via.parse("SIP/2.0/TLS Edge.Example.com:5061").host == "edge.example.com"
    assert Via.parse(str(answered)) == answered


@pytest.mark.parametrize("text, reason", [
    ("SIP/2.0/UDP", "bad Via header"),
    ("SIP/2.0 127.0.0.1", "bad Via header"),
    ("SIP/2.0/UDP alice@h", "bad sent-by"),
    ("SIP/2.0/UDP h:99999", "bad port"),
    ("SIP/2.0/UDP [::1", "unterminated IPv6"),
    ("SIP/2.0/UDP h;branch", "bad branch"),
    ("SIP/2.0/UDP h;received=example.com", "received is not an IP address"),
    ("SIP/2.0/UDP h;rport=0", "bad rport"),
    ("SIP/2.0/UDP h;rport=x", "bad rport"),
])
def test_bad_vias_are_refused(text, reason):
    with pytest.raises(MalformedMessage, match=reason):
        Via.parse(text)


def test_cseq_is_a_31_bit_number_and_a_method():
    assert CSeq.parse(" 101  NOTIFY ") == CSeq(101, "NOTIFY")
    assert CSeq.parse("2147483647 REGISTER").number == 2**31 - 1
    assert str(CSeq(0, "PUBLISH")) == "0 PUBLISH"
    for text in ["2147483648 NOTIFY", "NOTIFY", "-1 NOTIFY", "1", "1 NOT IFY", "0x10 NOTIFY"]:
        with pytest.raises(MalformedMessage, match="CSeq"):
            CSeq.parse(text)


def test_an_event_package_compares_without_case_and_keeps_its_id():
    event = Event.parse("Reg;id=17;x-y=z")
    assert event == Event("reg", "17", (("x-y", "z"),))
    assert event.is_package("REG") and not event.is_package("presence")
    assert event.param("ID") == "17" and event.param("x-y") == "z"
    assert Event.parse("presence.winfo").package == "presence.winfo"
    for text in ["", "reg, presence", "reg;id", "reg;id=a b", "re/g"]:
        with pytest.raises(MalformedMessage, match="Event"):
            Event.parse(text)


def test_subscription_state_reads_reason_expires_and_retry_after():
    active = SubscriptionState.parse("active;expires=3600")
    assert active == SubscriptionState("active", expires=3600)
    ended = SubscriptionState.parse("Terminated;Reason=NoResource;retry-after=30;x=1")
    assert (ended.state, ended.reason, ended.retry_after, ended.params) == (
        "terminated", "noresource", 30, (("x", "1"),))
    assert SubscriptionState.parse("waiting").state == "waiting"  # an extension substate
    assert SubscriptionState.parse(str(ended)) == ended


@pytest.mark.parametrize("text, reason", [
    ("", "bad Subscription-State"),
    ("active;expires=soon", "expires in Subscription-State header is not a number"),
    ("active;expires=4294967296", "above 4294967295"),
    ("pending;expires=1;expires=2", "expires twice"),
    ("terminated;reason", "bad reason"),
    ("terminated;retry-after=-1", "retry-after in Subscription-State header is not a number"),
])
def test_bad_subscription_states_are_refused(text, reason):
    with pytest.raises(MalformedMessage, match=reason):
        SubscriptionState.parse(text)


def test_content_type_is_lower_cased_and_knows_reginfo():
    value = ContentType.parse("Application/Reginfo+XML ; charset=UTF-8")
    assert value.mime == "application/reginfo+xml" and value.is_reginfo
    assert value.param("CHARSET") == "UTF-8"
    assert not ContentType.parse("application/pidf+xml").is_reginfo
    for text in ["", "text", "text/plain;", "text/pl ain", "/xml"]:
        with pytest.raises(MalformedMessage, match="Content-Type"):
            ContentType.parse(text)


def test_delta_seconds_are_0_to_2_32_minus_1():
    assert parse_delta_seconds(" 3600 ") == 3600
    assert parse_delta_seconds("0") == 0 and parse_delta_seconds("4294967295") == 2**32 - 1
    assert parse_delta_seconds("000000000000000000060") == 60
    for text in ["", "-1", "1e3", "4294967296", "3600;x", "٣"]:
        with pytest.raises(MalformedMessage, match="Min-Expires"):
            parse_delta_seconds(text, header="Min-Expires")


def test_an_etag_is_a_token_compared_exactly():
    assert ETag.parse(" a.1795695845.6600.2.0 ") == ETag("a.1795695845.6600.2.0")
    assert ETag.parse("abc") != ETag.parse("ABC")
    for text in ["", "a b", '"quoted"']:
        with pytest.raises(MalformedMessage, match="SIP-If-Match"):
            ETag.parse(text, header="SIP-If-Match")


VALUE_TYPES = [NameAddr, Via, CSeq, Event, SubscriptionState, ContentType, ETag]


@pytest.mark.parametrize("value_type", VALUE_TYPES, ids=lambda t: t.__name__)
@given(text=st.text(max_size=60) | st.text('<>";=,:/@[] \tsip:a.b1', max_size=40))
def test_any_text_either_parses_and_round_trips_or_raises_malformed(value_type, text):
    try:
        value = value_type.parse(text)
    except MalformedMessage as error:
        assert "\n" not in str(error)
        return
    assert value_type.parse(str(value)) == value
