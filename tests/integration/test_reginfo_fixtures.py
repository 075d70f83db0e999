"""Real Kamailio 5.6 reginfo traffic and the 43 hand-made notify cases through both parsers."""

from pathlib import Path

import pytest

from domain.reginfo import ReginfoDocument
from sip_gateway.errors import MalformedReginfo
from sip_gateway.reginfo import parse_reginfo, parse_reginfo_lenient, validate_reginfo

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "kamailio-5.6"
# PUBLISH and NOTIFY requests, exact bytes, copied from the capture's `all/` folders.
PARTS = ("A-register-publish", "C-reginfo-subscribe", "D-self-op", "E-use-domain")
MESSAGES = sorted(path for part in PARTS for path in (FIXTURES / "messages" / part).glob("*.sip"))
NOTIFY_CASES = sorted((FIXTURES / "notify-cases").glob("*.sip"))

# The lab's self-operation run sends the malformed body of notify case 18 once more.
BROKEN_ON_PURPOSE = {"D-self-op/0021-sipp5092-to-registrar-NOTIFY.sip": "not well-formed"}

# Notify cases the strict parser refuses, and a piece of the reason it gives. The others are
# valid RFC 3680 documents, even where Kamailio balks: 23 lacks the optional `expires`, 25 has
# an `init` registration, 26 a registration without contacts, 42's missing `callid` is
# optional (its missing `id` is not).
STRICT_REFUSALS = {
    "18": "not well-formed XML",  # truncated document
    "19": "root element is <{urn:ietf:params:xml:ns:pidf}presence>",  # PIDF, no reginfo
    "21": "empty body",  # Content-Length: 0
    "36": "event 'bogus' is not one of",  # not one of the nine contact events
    "37": "attribute 'aor' is missing",
    "38": "root element is <reginfo> (no namespace)",
    "42": "<contact>: attribute 'id' is missing",
    "43": "<unknown-param>: attribute 'name' is missing",
}
# The lenient parser refuses only what Kamailio cannot read, and where it crashes.
LENIENT_REFUSALS = {
    "18": "not well-formed XML",
    "19": "no reginfo element",
    "21": "empty body",
    "43": "unknown-param without a name",
}


def body_of(path: Path) -> bytes:
    return path.read_bytes().partition(b"\r\n\r\n")[2]


def bindings(document: ReginfoDocument) -> list[tuple]:
    return [(r.aor, c.uri, c.state, c.event, c.expires, c.callid, c.cseq)
            for r in document.registrations for c in r.contacts]


def test_the_capture_holds_every_publish_and_notify_request():
    parts = {path.parent.name for path in MESSAGES}
    assert parts == set(PARTS)
    assert len(MESSAGES) == 68
    assert all(path.read_bytes().startswith((b"PUBLISH ", b"NOTIFY ")) for path in MESSAGES)


@pytest.mark.parametrize("path", MESSAGES, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_kamailio_bodies_read_the_same_strictly_and_leniently(path):
    body = body_of(path)
    if not body:
        pytest.skip("no body (a PUBLISH refresh, or a NOTIFY before any state)")
    name = f"{path.parent.name}/{path.name}"
    if name in BROKEN_ON_PURPOSE:
        for parse in (parse_reginfo, parse_reginfo_lenient):
            with pytest.raises(MalformedReginfo, match=BROKEN_ON_PURPOSE[name]):
                parse(body)
        return
    strict = parse_reginfo(body)
    assert strict.registrations
    assert bindings(strict) == bindings(parse_reginfo_lenient(body))
    assert [r.state for r in strict.registrations] == \
        [r.state for r in parse_reginfo_lenient(body).registrations]


@pytest.mark.parametrize("path", NOTIFY_CASES, ids=lambda path: path.stem)
def test_each_notify_case_is_read_or_refused_as_the_tables_say(path):
    case = path.name[:2]
    body = body_of(path)
    for parse, refusals in ((parse_reginfo, STRICT_REFUSALS),
                            (parse_reginfo_lenient, LENIENT_REFUSALS)):
        if case in refusals:
            with pytest.raises(MalformedReginfo) as refused:
                parse(body)
            assert refusals[case] in str(refused.value)
        else:
            assert isinstance(parse(body), ReginfoDocument)


@pytest.mark.parametrize("path", NOTIFY_CASES, ids=lambda path: path.stem)
def test_the_xml_schema_agrees_with_the_strict_parser_on_every_notify_case(path):
    refused = path.name[:2] in STRICT_REFUSALS
    try:
        validate_reginfo(body_of(path))
    except MalformedReginfo:
        assert refused
    else:
        assert not refused


def test_valid_cases_agree_between_parsers_on_the_bindings():
    for path in NOTIFY_CASES:
        case = path.name[:2]
        if case in STRICT_REFUSALS:
            continue
        strict, lenient = parse_reginfo(body_of(path)), parse_reginfo_lenient(body_of(path))
        assert bindings(strict) == bindings(lenient), path.name
