"""Strict reginfo parsing: RFC 3680 section 5.4 documents, RFC 5628 GRUUs, and refusals."""

import pytest

from domain.reginfo import ContactInfo, ReginfoDocument, RegistrationInfo, TempGruu
from sip_gateway.errors import MalformedReginfo
from sip_gateway.reginfo import parse_reginfo, validate_reginfo

NS = 'xmlns="urn:ietf:params:xml:ns:reginfo"'
GR = 'xmlns:gr="urn:ietf:params:xml:ns:gruuinfo"'
ERE = 'xmlns:ere="urn:3gpp:ns:extRegExp:1.0"'
URI = "<uri>sip:bob@192.0.2.1</uri>"


def reginfo(inner: str = "", attrs: str = 'version="0" state="full"') -> bytes:
    return f'<?xml version="1.0"?>\n<reginfo {NS} {GR} {ERE} {attrs}>{inner}</reginfo>'.encode()


def registration(inner: str = "", attrs: str = 'aor="sip:bob@example.com" id="r1" state="active"'):
    return f"<registration {attrs}>{inner}</registration>"


def contact(inner: str = URI, attrs: str = 'id="c1" state="active" event="registered"') -> str:
    return f"<contact {attrs}>{inner}</contact>"


def one_contact(inner: str = URI, attrs: str = 'id="c1" state="active" event="registered"'):
    return reginfo(registration(contact(inner, attrs)))


def test_a_kamailio_publish_body_reads_into_values_with_its_extra_attributes():
    body = b"""<?xml version="1.0"?>
<reginfo xmlns="urn:ietf:params:xml:ns:reginfo" version="3" state="full">
  <registration aor="sip:alice@example.com" id="0x7f441d4d5d70" state="active">
    <contact id="0x7f441d4d5e88" state="active" event="created" expires="3600" q="0.900"
             callid="lab-alice-dev1@127.0.0.1" cseq="1" received="" path="" user_agent="sipp">
      <uri>
        sip:alice@127.0.0.1:5091;transport=udp
      </uri>
    </contact>
  </registration>
</reginfo>"""
    assert parse_reginfo(body) == ReginfoDocument(3, "full", (RegistrationInfo(
        "sip:alice@example.com", "0x7f441d4d5d70", "active", (ContactInfo(
            "sip:alice@127.0.0.1:5091;transport=udp", id="0x7f441d4d5e88", state="active",
            event="created", expires=3600, q=0.9, callid="lab-alice-dev1@127.0.0.1", cseq=1,
            received="", path="", user_agent="sipp"),)),))


def test_every_contact_field_and_rfc_5628_gruus_are_read():
    body = one_contact(
        URI + '<display-name xml:lang="en">Bob &amp; Co </display-name>'
        '<unknown-param name="+sip.instance">"&lt;urn:uuid:b0b&gt;"</unknown-param>'
        '<unknown-param name="audio"/>'
        '<gr:pub-gruu uri="sip:bob@example.com;gr=urn:uuid:b0b"/>'
        '<gr:temp-gruu uri="sip:tgruu.1@example.com;gr" first-cseq="54301"/>',
        'id="c1" state="terminated" event="probation" expires="0" duration-registered="86400" '
        'retry-after="30" q="1" callid="cid@h" cseq="7"')
    (found,) = parse_reginfo(body).registrations[0].contacts
    assert found == ContactInfo(
        "sip:bob@192.0.2.1", id="c1", state="terminated", event="probation", expires=0, q=1.0,
        callid="cid@h", cseq=7, duration_registered=86400, retry_after=30,
        display_name="Bob & Co ", display_name_lang="en",
        unknown_params=(("+sip.instance", '"<urn:uuid:b0b>"'), ("audio", "")),
        pub_gruu="sip:bob@example.com;gr=urn:uuid:b0b",
        temp_gruu=TempGruu("sip:tgruu.1@example.com;gr", 54301))
    assert found.param("+SIP.INSTANCE") == '"<urn:uuid:b0b>"'


def test_an_empty_document_and_a_registration_without_contacts_are_valid():
    assert parse_reginfo(reginfo(attrs='version="4294967295" state="partial"')) == \
        ReginfoDocument(4294967295, "partial")
    assert parse_reginfo(reginfo(registration(attrs='aor="tel:+1555" id="" state="init"'))) \
        .registrations == (RegistrationInfo("tel:+1555", "", "init"),)


def test_other_namespace_elements_are_extensions_never_registrations_or_contacts():
    body = reginfo(
        registration(
            contact(URI + '<x:dev xmlns:x="urn:example:x" b="2" a="1">tablet</x:dev>')
            + "<ere:wildcardedIdentity>sip:user!.*!@home1.net</ere:wildcardedIdentity>"
            + '<other:contact xmlns:other="urn:other" id="9"><other:uri>sip:no</other:uri>'
              '</other:contact>')
        + '<ere:registration aor="sip:ignored@home1.net" id="x" state="active"/>')
    document = parse_reginfo(body)
    (registration_info,) = document.registrations
    assert registration_info.aor == "sip:bob@example.com"
    assert [c.id for c in registration_info.contacts] == ["c1"]
    assert registration_info.contacts[0].extensions == (
        '<x:dev xmlns:x="urn:example:x" a="1" b="2">tablet</x:dev>',)
    assert registration_info.extensions == (
        '<ere:wildcardedIdentity xmlns:ere="urn:3gpp:ns:extRegExp:1.0">sip:user!.*!@home1.net'
        "</ere:wildcardedIdentity>",
        '<other:contact xmlns:other="urn:other" id="9"><other:uri>sip:no</other:uri>'
        "</other:contact>")
    assert document.extensions == (
        '<ere:registration xmlns:ere="urn:3gpp:ns:extRegExp:1.0" aor="sip:ignored@home1.net" '
        'id="x" state="active"></ere:registration>',)


def test_unknown_contact_attributes_are_kept_and_xsi_attributes_ignored():
    body = one_contact(attrs='xmlns:x="urn:example:x" xmlns:xsi="http://www.w3.org/2001/'
                             'XMLSchema-instance" id="c1" state="active" event="registered" '
                             'x:flag="yes" vendor="v" xsi:type="t"')
    (found,) = parse_reginfo(body).registrations[0].contacts
    assert found.other_attributes == (("{urn:example:x}flag", "yes"), ("vendor", "v"))


def test_a_prefixed_reginfo_namespace_is_the_same_document():
    body = (b'<r:reginfo xmlns:r="urn:ietf:params:xml:ns:reginfo" version="0" state="full">'
            b'<r:registration aor="sip:rita@example.com" id="r" state="active">'
            b'<r:contact id="r1" state="active" event="registered"><r:uri>sip:rita@h</r:uri>'
            b"</r:contact></r:registration></r:reginfo>")
    assert parse_reginfo(body).registrations[0].contacts[0].uri == "sip:rita@h"


@pytest.mark.parametrize("text, value", [("+5", 5), (" 7 ", 7), ("007", 7),
                                         ("18446744073709551615", 2**64 - 1)])
def test_integers_follow_xml_schema_lexical_rules(text, value):
    body = one_contact(attrs=f'id="c1" state="active" event="registered" cseq="{text}"')
    assert parse_reginfo(body).registrations[0].contacts[0].cseq == value


# (body, reason substring, whether the XML Schema refuses it too). libxml2's validator lets a
# reginfo element follow an ##other wildcard, and no schema can count wildcard matches.
REFUSALS = [
    (b'<reginfo version="0" state="full"/>', "no namespace", True),
    (b'<reginfo xmlns="urn:example" version="0" state="full"/>', "not <reginfo>", True),
    (b'<registration xmlns="urn:ietf:params:xml:ns:reginfo" aor="a" id="r" state="active"/>',
     "root element", True),
    (reginfo(attrs='state="full"'), "'version' is missing", True),
    (reginfo(attrs='version="x" state="full"'), "version 'x'", True),
    (reginfo(attrs='version="-1" state="full"'), "version '-1'", True),
    (reginfo(attrs='version="4294967296" state="full"'), "version", True),
    (reginfo(attrs='version="0"'), "'state' is missing", True),
    (reginfo(attrs='version="0" state="Full"'), "state 'Full'", True),
    (reginfo(attrs='version="0" state="full" color="red"'), "unknown attribute 'color'", True),
    (reginfo(registration(attrs='id="r" state="active"')), "'aor' is missing", True),
    (reginfo(registration(attrs='aor=" " id="r" state="active"')), "'aor' is empty", True),
    (reginfo(registration(attrs='aor="sip:a@b" state="active"')), "'id' is missing", True),
    (reginfo(registration(attrs='aor="sip:a@b" id="r"')), "'state' is missing", True),
    (reginfo(registration(attrs='aor="sip:a@b" id="r" state="pending"')), "state 'pending'",
     True),
    (one_contact(attrs='state="active" event="registered"'), "'id' is missing", True),
    (one_contact(attrs='id="c1" event="registered"'), "'state' is missing", True),
    (one_contact(attrs='id="c1" state="init" event="registered"'), "state 'init'", True),
    (one_contact(attrs='id="c1" state="active"'), "'event' is missing", True),
    (one_contact(attrs='id="c1" state="active" event="bogus"'), "event 'bogus'", True),
    (one_contact(attrs='id="c1" state="active" event="registered" expires="-1"'), "expires",
     True),
    (one_contact(attrs='id="c1" state="active" event="registered" expires="1.5"'), "expires",
     True),
    (one_contact(attrs='id="c1" state="active" event="registered" cseq="abc"'), "cseq 'abc'",
     True),
    (one_contact(attrs='id="c1" state="active" event="registered" retry-after=""'),
     "retry-after", True),
    (one_contact(attrs='id="c1" state="active" event="registered" '
                       'duration-registered="18446744073709551616"'), "duration-registered", True),
    (one_contact(attrs='id="c1" state="active" event="registered" q="1.5"'), "q '1.5'", True),
    (one_contact(attrs='id="c1" state="active" event="registered" q="high"'), "q 'high'", True),
    (one_contact(""), "<uri> is missing", True),
    (one_contact(URI + URI), "more than one <uri>", True),
    (one_contact("<uri> </uri>"), "<uri> is empty", True),
    (one_contact("<uri>sip:a@b<b/></uri>"), "text only", True),
    (one_contact(URI + "<display-name>a</display-name><display-name>b</display-name>"),
     "more than one <display-name>", True),
    (one_contact("<display-name>a</display-name>" + URI), "<uri> is out of order", True),
    (one_contact(URI + '<unknown-param name="a"/><display-name>a</display-name>'),
     "<display-name> is out of order", True),
    (one_contact(URI + "<unknown-param>v</unknown-param>"), "'name' is missing", True),
    (one_contact(URI + '<unknown-param name="a" extra="1"/>'), "unknown attribute 'extra'",
     True),
    (one_contact(URI + "<foo/>"), "unknown element <foo> in the reginfo namespace", True),
    (one_contact(URI + '<x:e xmlns:x="urn:example:x"/><unknown-param name="a"/>'),
     "out of order", False),
    (one_contact(URI + '<gr:pub-gruu/>'), "'uri' is missing", True),
    (one_contact(URI + '<gr:temp-gruu uri="sip:t@h;gr"/>'), "'first-cseq' is missing", True),
    (one_contact(URI + '<gr:pub-gruu uri="sip:a;gr"/><gr:pub-gruu uri="sip:b;gr"/>'),
     "more than one <pub-gruu>", False),
    (reginfo(registration('<ere:x/><contact id="c" state="active" event="created">'
                          + URI + "</contact>")), "<contact> after an extension", False),
    (reginfo('<ere:x/>' + registration()), "<registration> after an extension", False),
    (reginfo(registration("<foo/>")), "unknown element <foo>", True),
    (reginfo(registration('<plain xmlns=""/>')), "<plain> (no namespace)", True),
    (reginfo(contact()), "unknown element <contact>", True),
    (reginfo(registration("stray text")), "unexpected text 'stray text'", True),
    (one_contact(URI + "tail"), "unexpected text 'tail'", True),
]


@pytest.mark.parametrize("body, reason, schema_too", REFUSALS)
def test_a_document_outside_rfc_3680_is_refused_with_a_reason(body, reason, schema_too):
    with pytest.raises(MalformedReginfo) as refused:
        parse_reginfo(body)
    assert reason in str(refused.value)


@pytest.mark.parametrize("body", [case[0] for case in REFUSALS if case[2]])
def test_the_xml_schema_refuses_the_same_documents(body):
    with pytest.raises(MalformedReginfo, match="^schema: "):
        validate_reginfo(body)


def test_the_schema_accepts_what_the_strict_parser_reads_except_kamailio_extras():
    valid = one_contact(URI + '<gr:pub-gruu uri="sip:a;gr"/>',
                        'xmlns:x="urn:example:x" id="c1" state="active" event="registered" '
                        'q="0.5" x:flag="1"')
    validate_reginfo(valid)
    kamailio = one_contact(attrs='id="c1" state="active" event="registered" received=""')
    parse_reginfo(kamailio)
    with pytest.raises(MalformedReginfo, match="received"):
        validate_reginfo(kamailio)


def test_a_refusal_quotes_a_peer_value_briefly_on_one_line():
    with pytest.raises(MalformedReginfo) as refused:
        parse_reginfo(one_contact(attrs='id="c1" state="active" event="' + "x\n" * 5000 + '"'))
    assert len(str(refused.value)) < 200 and "\n" not in str(refused.value)
