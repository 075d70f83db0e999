"""Lenient reginfo parsing: what Kamailio 5.6 pua_reginfo reads, and the two places we differ."""

import pytest

from domain.reginfo import ContactInfo, RegistrationInfo
from sip_gateway.errors import MalformedReginfo
from sip_gateway.reginfo import parse_reginfo_lenient
from sip_gateway.reginfo.scalars import c_atoi


def body(registrations: str, root: str = 'reginfo xmlns="urn:ietf:params:xml:ns:reginfo" '
                                         'version="1" state="partial"') -> bytes:
    name = root.split()[0]
    return f'<?xml version="1.0"?><{root}>{registrations}</{name}>'.encode()


def contacts_of(document) -> list[ContactInfo]:
    return [contact for registration in document.registrations
            for contact in registration.contacts]


BOB = ('<registration aor="sip:bob@example.com" id="r" state="active">'
       '<contact id="c1" state="active" event="registered" expires="60" callid="x" cseq="2">'
       "<uri>sip:bob@192.0.2.1</uri></contact></registration>")


@pytest.mark.parametrize("root", [
    'reginfo xmlns="urn:ietf:params:xml:ns:reginfo"',  # as RFC 3680 writes it
    "reginfo",  # no namespace (notify case 38)
    'r:reginfo xmlns:r="urn:ietf:params:xml:ns:reginfo"',  # prefixed (case 39)
    'reginfo xmlns="urn:example:wrong"',  # wrong namespace
    "REGINFO",  # names compare case-insensitively
])
def test_the_reginfo_element_is_found_whatever_its_namespace_or_case(root):
    registration = BOB if ":" not in root.split()[0] else BOB.replace("<", "<r:").replace(
        "<r:/", "</r:")
    (contact,) = contacts_of(parse_reginfo_lenient(body(registration, root)))
    assert (contact.uri, contact.expires, contact.cseq) == ("sip:bob@192.0.2.1", 60, 2)


def test_the_first_reginfo_met_depth_first_is_the_document():
    nested = (b'<wrapper><meta><reginfo version="7" state="full">' + BOB.encode()
              + b'</reginfo></meta><reginfo version="8" state="full"/></wrapper>')
    document = parse_reginfo_lenient(nested)
    assert document.version == 7 and document.registrations[0].aor == "sip:bob@example.com"


def test_a_document_without_reginfo_is_refused():
    with pytest.raises(MalformedReginfo, match="no reginfo element"):
        parse_reginfo_lenient(b'<presence xmlns="urn:ietf:params:xml:ns:pidf"/>')


def test_values_kamailio_compares_are_kept_as_written_for_the_caller_to_judge():
    document = parse_reginfo_lenient(body(
        '<registration aor=" sip:karl@example.com;user=phone" id="r" state="init">'
        '<contact state="terminated" event="bogus" expires="3600"><uri>sip:k@h</uri></contact>'
        "</registration>", 'reginfo version="x" state="complete"'))
    assert (document.version, document.state) == (None, None)
    (registration,) = document.registrations
    assert (registration.aor, registration.state) == (" sip:karl@example.com;user=phone", "init")
    assert registration.contacts == (ContactInfo("sip:k@h", state="terminated", event="bogus",
                                                 expires=3600),)


def test_a_registration_without_aor_or_state_is_kept_for_the_caller():
    document = parse_reginfo_lenient(body('<registration id="r-x"/>'))
    assert document.registrations == (RegistrationInfo(None, "r-x", None),)


def test_registrations_and_contacts_are_direct_children_in_any_namespace():
    document = parse_reginfo_lenient(body(
        '<ere:registration xmlns:ere="urn:3gpp:ns:extRegExp:1.0" aor="sip:a@h" id="1" '
        'state="active"><CONTACT id="c" event="created" expires="9"><URI>sip:a@x</URI>'
        "</CONTACT></ere:registration>"
        '<group><registration aor="sip:hidden@h" id="2" state="active"/></group>'))
    assert [r.aor for r in document.registrations] == ["sip:a@h"]
    assert contacts_of(document)[0].uri == "sip:a@x"


def test_attributes_match_by_local_name_case_insensitively_first_one_wins():
    document = parse_reginfo_lenient(body(
        '<registration xmlns:gr="urn:ietf:params:xml:ns:gruuinfo" AOR="sip:a@h" aor="sip:b@h" '
        'gr:id="r1" State="active"><contact gr:ID="c1" EVENT="registered" Expires="5">'
        "<uri>sip:a@x</uri></contact></registration>"))
    (registration,) = document.registrations
    assert (registration.aor, registration.id, registration.state) == ("sip:a@h", "r1", "active")
    (contact,) = registration.contacts
    assert (contact.id, contact.event, contact.expires) == ("c1", "registered", 5)


def test_each_uri_of_a_contact_is_a_binding_and_a_contact_without_uri_is_dropped():
    document = parse_reginfo_lenient(body(
        '<registration aor="sip:a@h" id="r" state="active">'
        '<contact id="c1" event="registered" expires="60" callid="cid" cseq="4" q="0.5">'
        "<uri>\n  sip:a@one\n</uri><uri>sip:a@two</uri>"
        '<unknown-param name="+sip.instance">"&lt;urn:uuid:1&gt;"</unknown-param></contact>'
        '<contact id="c2" event="registered" expires="60"/></registration>'))
    first, second = contacts_of(document)
    assert (first.uri, second.uri) == ("sip:a@one", "sip:a@two")
    assert first.unknown_params == second.unknown_params == (("+sip.instance", '"<urn:uuid:1>"'),)
    assert (second.id, second.callid, second.cseq, second.q) == ("c1", "cid", 4, 0.5)


def test_display_name_non_schema_attributes_and_parameters_are_read():
    document = parse_reginfo_lenient(body(
        '<registration aor="sip:t@h" id="r" state="active"><contact id="t1" event="registered" '
        'expires="1" received="sip:192.0.2.9:5060" path="&lt;sip:p&gt;" user_agent="ua/1" '
        'duration-registered="30" retry-after="oops">'
        '<uri>sip:t@h</uri><display-name xml:lang="en">Tina &amp; Co</display-name>'
        '<unknown-param name="expires">600000</unknown-param><unknown-param name="audio"/>'
        "</contact></registration>"))
    (contact,) = contacts_of(document)
    assert (contact.display_name, contact.display_name_lang) == ("Tina & Co", "en")
    assert contact.unknown_params == (("expires", "600000"), ("audio", ""))
    assert (contact.received, contact.path, contact.user_agent) == (
        "sip:192.0.2.9:5060", "<sip:p>", "ua/1")
    assert (contact.duration_registered, contact.retry_after) == (30, None)


def test_a_contact_without_callid_and_id_is_kept_for_the_caller_to_refuse():
    document = parse_reginfo_lenient(body(
        '<registration aor="sip:uma@h" id="r" state="active"><contact state="active" '
        'event="registered" expires="3600"><uri>sip:uma@h</uri></contact></registration>'))
    (contact,) = contacts_of(document)
    assert (contact.id, contact.callid, contact.cseq) == (None, None, None)


def test_an_unknown_param_without_name_is_refused_where_kamailio_crashes():
    with pytest.raises(MalformedReginfo, match="unknown-param without a name"):
        parse_reginfo_lenient(body(
            '<registration aor="sip:vic@h" id="r" state="active"><contact id="v1" '
            'event="registered" expires="60"><uri>sip:vic@h</uri>'
            "<unknown-param>value-without-name</unknown-param></contact></registration>"))


@pytest.mark.parametrize("text, value", [
    ("3600", 3600), ("  42abc", 42), ("abc", 0), ("", 0), ("-5", -5), ("+7", 7),
    ("3600.9", 3600), ("2147483648", -2147483648), ("99999999999999999999", -1),
    ("-99999999999999999999", 0), ("\u0663", 0),  # Arabic-Indic three is not a C digit
])
def test_expires_and_cseq_follow_c_atoi(text, value):
    assert c_atoi(text) == value
    document = parse_reginfo_lenient(body(
        f'<registration aor="sip:a@h" id="r" state="active"><contact id="c" event="created" '
        f'expires="{text}" cseq="{text}"><uri>sip:a@h</uri></contact></registration>'))
    (contact,) = contacts_of(document)
    assert (contact.expires, contact.cseq) == (value, value)


@pytest.mark.parametrize("text, value", [("0.8", 0.8), ("1e-1", 0.1), ("high", None),
                                         ("nan", None), ("", None)])
def test_q_is_a_float_when_it_parses(text, value):
    document = parse_reginfo_lenient(body(
        f'<registration aor="sip:a@h" id="r" state="active"><contact id="c" event="created" '
        f'q="{text}"><uri>sip:a@h</uri></contact></registration>'))
    assert contacts_of(document)[0].q == value


def test_a_missing_expires_or_cseq_is_none():
    document = parse_reginfo_lenient(body(
        '<registration aor="sip:i@h" id="r" state="active"><contact id="i1" event="registered">'
        "<uri>sip:i@h</uri></contact></registration>"))
    assert (contacts_of(document)[0].expires, contacts_of(document)[0].cseq) == (None, None)


def test_malformed_xml_is_refused_as_kamailio_refuses_it():
    with pytest.raises(MalformedReginfo, match="not well-formed"):
        parse_reginfo_lenient(b'<reginfo version="0" state="full"><registration>')
