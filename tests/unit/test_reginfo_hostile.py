"""Hostile bodies: every one is refused with MalformedReginfo, and nothing else ever escapes."""

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from domain.reginfo import ReginfoDocument
from sip_gateway.errors import MalformedReginfo
from sip_gateway.reginfo import parse_reginfo, parse_reginfo_lenient, parse_xml, validate_reginfo

PARSERS = [parse_reginfo, parse_reginfo_lenient]

VALID = (b'<?xml version="1.0" encoding="UTF-8"?>\n'
         b'<reginfo xmlns="urn:ietf:params:xml:ns:reginfo" '
         b'xmlns:gr="urn:ietf:params:xml:ns:gruuinfo" version="3" state="partial">'
         b'<registration aor="sip:bob@example.com" id="r1" state="active">'
         b'<contact id="c1" state="active" event="refreshed" expires="3600" q="0.5" '
         b'callid="cid@h" cseq="2"><uri>sip:bob@192.0.2.1</uri>'
         b'<display-name xml:lang="en">Bob &amp; Co</display-name>'
         b'<unknown-param name="+sip.instance">"&lt;urn:uuid:1&gt;"</unknown-param>'
         b'<gr:pub-gruu uri="sip:bob@example.com;gr=urn:uuid:1"/></contact>'
         b"</registration></reginfo>")  # no trailing whitespace: every proper prefix is broken


def reginfo_with(doctype: bytes, text: bytes = b"") -> bytes:
    return (b'<?xml version="1.0"?>' + doctype
            + b'<reginfo xmlns="urn:ietf:params:xml:ns:reginfo" version="0" state="full">'
            + b'<registration aor="sip:a@h" id="r" state="active">'
            + b'<contact id="c" state="active" event="registered"><uri>sip:a@h' + text
            + b"</uri></contact></registration></reginfo>")


BILLION_LAUGHS = (b'<!DOCTYPE reginfo [<!ENTITY lol0 "lol">'
                  + b"".join(b'<!ENTITY lol%d "%s">' % (n, b"&lol%d;" % (n - 1) * 10)
                             for n in range(1, 10))
                  + b"]>")

HOSTILE = {
    "XXE with a file entity": reginfo_with(
        b'<!DOCTYPE reginfo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>', b"&xxe;"),
    "XXE with a network entity": reginfo_with(
        b'<!DOCTYPE reginfo [<!ENTITY xxe SYSTEM "http://127.0.0.1:9/leak">]>', b"&xxe;"),
    "XXE through a parameter entity": reginfo_with(
        b'<!DOCTYPE reginfo [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>'),
    "billion laughs": reginfo_with(BILLION_LAUGHS, b"&lol9;"),
    "DOCTYPE without entities": reginfo_with(b"<!DOCTYPE reginfo>"),
    "external DTD": reginfo_with(b'<!DOCTYPE reginfo SYSTEM "http://127.0.0.1:9/r.dtd">'),
    "an undeclared entity": reginfo_with(b"", b"&nbsp;"),
    "10 MB body": VALID[:-10] + b" " * 10_000_000 + VALID[-10:],
    "nesting 10,000 deep": b"<a>" * 10_000 + b"</a>" * 10_000,
    "nesting 33 deep": b"<reginfo>" + b"<a>" * 32 + b"</a>" * 32 + b"</reginfo>",
    "invalid UTF-8 bytes": VALID.replace(b"Bob", b"B\xff\xfeb"),
    "an overlong UTF-8 encoding": VALID.replace(b"Bob", b"B\xc0\xafb"),
    "a UTF-16 body": VALID.decode().replace("UTF-8", "UTF-16").encode("utf-16"),
    "UTF-16 without a byte order mark": VALID.decode().encode("utf-16-le"),
    "a declared latin-1 encoding": VALID.replace(b"UTF-8", b"ISO-8859-1"),
    "a NUL byte": VALID.replace(b"Bob", b"B\x00b"),
    "a character reference to NUL": VALID.replace(b"Bob", b"B&#0;b"),
    "an empty body": b"",
    "whitespace only": b" \r\n",
    "two root elements": VALID + b"<reginfo/>",
    "a truncated document": VALID[:-20],
}


@pytest.mark.parametrize("parse", PARSERS + [validate_reginfo])
@pytest.mark.parametrize("name", HOSTILE)
def test_a_hostile_body_is_refused(name, parse):
    with pytest.raises(MalformedReginfo) as refused:
        parse(HOSTILE[name])
    assert "\n" not in str(refused.value)


def test_refusals_say_why():
    reasons = {
        "XXE with a file entity": "DOCTYPE",
        "billion laughs": "DOCTYPE",
        "DOCTYPE without entities": "DOCTYPE",
        "10 MB body": "over the 1048576-byte limit",
        "nesting 10,000 deep": "nested deeper than 32",
        "nesting 33 deep": "nested deeper than 32",
        "invalid UTF-8 bytes": "not valid UTF-8",
        "a UTF-16 body": "not valid UTF-8",
        "UTF-16 without a byte order mark": "NUL byte",
        "a declared latin-1 encoding": "'ISO-8859-1' refused",
        "an empty body": "empty body",
        "a truncated document": "not well-formed",
    }
    for name, reason in reasons.items():
        with pytest.raises(MalformedReginfo, match=reason):
            parse_xml(HOSTILE[name])


def test_the_limits_can_be_set_per_call_and_the_valid_document_is_accepted():
    assert parse_xml(VALID, max_bytes=len(VALID), max_depth=4) is not None
    with pytest.raises(MalformedReginfo, match="limit"):
        parse_xml(VALID, max_bytes=len(VALID) - 1)
    with pytest.raises(MalformedReginfo, match="deeper than 3"):
        parse_xml(VALID, max_depth=3)
    for parse in PARSERS:
        assert isinstance(parse(VALID), ReginfoDocument)


def test_comments_processing_instructions_and_cdata_are_harmless():
    body = VALID.replace(b"<uri>sip:bob@192.0.2.1</uri>",
                         b"<!-- note --><?app hint?><uri><![CDATA[sip:bob@192.0.2.1]]></uri>")
    for parse in PARSERS:
        assert parse(body).registrations[0].contacts[0].uri == "sip:bob@192.0.2.1"


def outcome_of(parse, body: bytes) -> None:
    """The parser either returns a document or refuses: no other exception, no other value."""
    try:
        result = parse(body)
    except MalformedReginfo as refusal:
        assert str(refusal)
    else:
        assert isinstance(result, ReginfoDocument)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_are_refused(body):
    for parse in PARSERS:
        with pytest.raises(MalformedReginfo):
            parse(body)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, len(VALID) - 1))
def test_every_truncation_of_a_valid_document_is_refused(length):
    for parse in PARSERS:
        with pytest.raises(MalformedReginfo):
            parse(VALID[:length])


mutations = st.lists(st.tuples(
    st.sampled_from(["replace", "insert", "delete"]),
    st.integers(0, len(VALID) - 1),
    st.binary(min_size=1, max_size=4) | st.sampled_from(
        [b"<", b">", b"&", b'"', b"</contact>", b"<uri>", b"&lol;", b"<!DOCTYPE x>", b"\xff"]),
), min_size=1, max_size=4)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutations)
@example([("delete", 97, b"</contact>"), ("delete", 100, b"</contact>")])  # xmlns:gr="aragruuinfo"
def test_a_mutated_valid_document_is_parsed_or_refused_never_anything_else(edits):
    body = bytearray(VALID)
    for kind, position, chunk in edits:
        position = min(position, len(body))
        if kind == "replace":
            body[position:position + len(chunk)] = chunk
        elif kind == "insert":
            body[position:position] = chunk
        else:
            del body[position:position + len(chunk)]
    for parse in PARSERS:
        outcome_of(parse, bytes(body))
    try:
        validate_reginfo(bytes(body))
    except MalformedReginfo:
        pass
