"""Building reginfo bodies: exact output, what is left out, misuse, and the round trip."""

import dataclasses
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.reginfo import (
    CONTACT_EVENTS, CONTACT_STATES, DOCUMENT_STATES, REGISTRATION_STATES, ContactInfo,
    ReginfoDocument, RegistrationInfo, TempGruu,
)
from sip_gateway.reginfo import (
    build_reginfo, parse_reginfo, parse_reginfo_lenient, validate_reginfo,
)

BOB = ContactInfo("sip:bob@192.0.2.1;transport=tcp", id="c1", state="active",
                  event="registered", expires=3600, q=0.8, callid="cid@h", cseq=2)


def document(*contacts: ContactInfo, **fields) -> ReginfoDocument:
    registration = RegistrationInfo("sip:bob@example.com", "r1", "active", contacts)
    return ReginfoDocument(**{"version": 5, "state": "full", "registrations": (registration,),
                              **fields})


def test_a_document_is_written_with_declaration_default_namespace_and_schema_order():
    assert build_reginfo(document(BOB)) == (
        b"<?xml version='1.0' encoding='UTF-8'?>\n"
        b'<reginfo xmlns="urn:ietf:params:xml:ns:reginfo" version="5" state="full">'
        b'<registration aor="sip:bob@example.com" id="r1" state="active">'
        b'<contact id="c1" state="active" event="registered" expires="3600" q="0.8" '
        b'callid="cid@h" cseq="2"><uri>sip:bob@192.0.2.1;transport=tcp</uri></contact>'
        b"</registration></reginfo>")


def test_the_gruu_namespace_is_declared_only_when_a_contact_has_a_gruu():
    assert b"gruuinfo" not in build_reginfo(document(BOB))
    body = build_reginfo(document(dataclasses.replace(
        BOB, pub_gruu="sip:bob@example.com;gr=urn:uuid:1",
        temp_gruu=TempGruu("sip:tgruu.1@example.com;gr", 54301))))
    assert b'xmlns:gr="urn:ietf:params:xml:ns:gruuinfo"' in body
    assert b'<gr:temp-gruu uri="sip:tgruu.1@example.com;gr" first-cseq="54301"/>' in body
    validate_reginfo(body)


@pytest.mark.parametrize("q, text", [(0.9, b'q="0.9"'), (1.0, b'q="1"'), (0, b'q="0"'),
                                     (0.125, b'q="0.125"'), (0.12345, b'q="0.123"')])
def test_q_is_written_with_at_most_three_decimals(q, text):
    assert text in build_reginfo(document(dataclasses.replace(BOB, q=q)))


def test_non_schema_fields_are_left_out_and_other_namespace_attributes_kept():
    contact = dataclasses.replace(
        BOB, received="sip:192.0.2.9", path="<sip:p>", user_agent="ua",
        other_attributes=(("vendor", "v"), ("{urn:example:x}flag", "1"),
                          ("{urn:ietf:params:xml:ns:reginfo}bad", "2")))
    body = build_reginfo(document(contact))
    for left_out in (b"received", b"path", b"user_agent", b"vendor", b"bad"):
        assert left_out not in body
    assert parse_reginfo(body).registrations[0].contacts[0].other_attributes == (
        ("{urn:example:x}flag", "1"),)
    validate_reginfo(body)


def test_extensions_come_back_byte_for_byte_whatever_namespaces_surround_them():
    extension = ('<x:device xmlns:x="urn:example:x"><plain kind="tablet"></plain>'
                 '<r:uri xmlns:r="urn:ietf:params:xml:ns:reginfo">sip:inner</r:uri></x:device>')
    contact = dataclasses.replace(BOB, extensions=(extension,),
                                  other_attributes=(("{urn:example:x}flag", "1"),))
    doc = document(contact, extensions=(extension,))
    body = build_reginfo(doc)
    assert parse_reginfo(body) == doc
    validate_reginfo(body)


MISUSES = [
    (document(BOB, version=None), "version None"),
    (document(BOB, version=2**32), "version 4294967296"),
    (document(BOB, state="complete"), "state 'complete'"),
    (ReginfoDocument(0, "full", (RegistrationInfo(None, "r", "active"),)), "aor"),
    (ReginfoDocument(0, "full", (RegistrationInfo(" ", "r", "active"),)), "aor"),
    (ReginfoDocument(0, "full", (RegistrationInfo("sip:a@h", None, "active"),)), "id"),
    (ReginfoDocument(0, "full", (RegistrationInfo("sip:a@h", "r", "up"),)), "state 'up'"),
    (document(dataclasses.replace(BOB, id=None)), "id is required"),
    (document(dataclasses.replace(BOB, state=None)), "state None"),
    (document(dataclasses.replace(BOB, event="bogus")), "event 'bogus'"),
    (document(dataclasses.replace(BOB, uri="")), "uri"),
    (document(dataclasses.replace(BOB, expires=-1)), "expires -1"),
    (document(dataclasses.replace(BOB, cseq=True)), "cseq True"),
    (document(dataclasses.replace(BOB, q=1.5)), "q 1.5"),
    (document(dataclasses.replace(BOB, q=math.nan)), "q nan"),
    (document(dataclasses.replace(BOB, display_name_lang="en")), "display_name_lang"),
    (document(dataclasses.replace(BOB, temp_gruu=TempGruu("sip:t;gr", None))), "first-cseq"),
    (document(BOB, extensions=("<x:a>",)), "extension"),
    (document(BOB, extensions=("<registration/>",)), "not in another namespace"),
    (document(BOB, extensions=('<registration xmlns="urn:ietf:params:xml:ns:reginfo"/>',)),
     "not in another namespace"),
    (document(dataclasses.replace(BOB, callid="bell\x07")), "XML compatible"),
]


@pytest.mark.parametrize("doc, reason", MISUSES)
def test_a_document_that_cannot_be_valid_is_our_mistake_a_value_error(doc, reason):
    with pytest.raises(ValueError) as raised:
        build_reginfo(doc)
    assert reason in str(raised.value)


# Valid documents: every field the strict parser reads, values that survive XML exactly.
xml_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Cn"),
                                 include_characters="\t\n\r"), max_size=12)
tokens = st.text("abcdefghijklmnopqrstuvwxyz0123456789.-", min_size=1, max_size=8)
uris = st.one_of(
    st.builds("{}:{}@{}{}".format, st.sampled_from(["sip", "sips"]), tokens, tokens,
              st.sampled_from(["", ";transport=tcp", ";gr=urn:uuid:1"])),
    st.builds("tel:+{}".format, st.integers(1000, 99999999)),
)
unsigned_longs = st.none() | st.integers(0, 2**64 - 1)
q_values = st.none() | st.integers(0, 1000).map(lambda thousandths: thousandths / 1000)
attribute_names = st.builds("{{{}}}{}".format, st.sampled_from(["urn:example:a", "urn:example:b"]),
                            st.text("abcxyz", min_size=1, max_size=4))
extensions = st.lists(st.builds(
    lambda namespace, name, text, plain_child: (
        f'<x:{name} xmlns:x="{namespace}">'
        + ('<plain a="1"></plain>' if plain_child else text) + f"</x:{name}>"),
    st.sampled_from(["urn:example:a", "urn:3gpp:ns:extRegExp:1.0"]),
    st.text("abcXYZ", min_size=1, max_size=6), st.text("abc XYZ019!.*@:", max_size=10),
    st.booleans(),
), max_size=2).map(tuple)


@st.composite
def contacts(draw) -> ContactInfo:
    display = draw(st.none() | st.tuples(xml_text, st.sampled_from([None, "en", "de-CH", ""])))
    return ContactInfo(
        uri=draw(uris), id=draw(xml_text), state=draw(st.sampled_from(CONTACT_STATES)),
        event=draw(st.sampled_from(CONTACT_EVENTS)), expires=draw(unsigned_longs),
        q=draw(q_values), callid=draw(st.none() | xml_text), cseq=draw(unsigned_longs),
        duration_registered=draw(unsigned_longs), retry_after=draw(unsigned_longs),
        display_name=display and display[0], display_name_lang=display and display[1],
        unknown_params=tuple(draw(st.lists(st.tuples(xml_text, xml_text), max_size=3))),
        pub_gruu=draw(st.none() | uris.map(lambda uri: uri + ";gr")),
        temp_gruu=draw(st.none() | st.builds(TempGruu, uris, st.integers(0, 2**64 - 1))),
        other_attributes=tuple(draw(st.dictionaries(attribute_names, xml_text,
                                                    max_size=2)).items()),
        extensions=draw(extensions),
    )


registrations = st.builds(
    RegistrationInfo, aor=uris, id=xml_text, state=st.sampled_from(REGISTRATION_STATES),
    contacts=st.lists(contacts(), max_size=4).map(tuple), extensions=extensions)
documents = st.builds(
    ReginfoDocument, version=st.integers(0, 2**32 - 1), state=st.sampled_from(DOCUMENT_STATES),
    registrations=st.lists(registrations, max_size=3).map(tuple), extensions=extensions)


@settings(max_examples=200, deadline=None)
@given(documents)
def test_what_is_built_parses_back_to_the_same_document_and_is_schema_valid(doc):
    body = build_reginfo(doc)
    assert parse_reginfo(body) == doc
    validate_reginfo(body)


@settings(max_examples=100, deadline=None)
@given(documents)
def test_the_lenient_parser_reads_the_same_bindings_from_a_built_document(doc):
    def bindings(parsed):
        return [(r.aor, r.state, c.uri, c.id, c.state, c.event, c.expires, c.callid, c.cseq)
                for r in parsed.registrations for c in r.contacts]

    lenient = parse_reginfo_lenient(build_reginfo(doc))
    expected = [(r.aor, r.state, c.uri, c.id, c.state, c.event,
                 None if c.expires is None else _atoi(c.expires), c.callid,
                 None if c.cseq is None else _atoi(c.cseq))
                for r in doc.registrations for c in r.contacts]
    assert bindings(lenient) == expected


def _atoi(value: int) -> int:
    """What C atoi makes of a non-negative decimal: strtol clamps, the int cast wraps."""
    value = min(value, 2**63 - 1)
    return (value + 2**31) % 2**32 - 2**31
