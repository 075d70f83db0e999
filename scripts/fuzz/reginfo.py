"""Target: one application/reginfo+xml body through both parsers (sip_gateway/reginfo/).

Property: the strict and the lenient parser raise nothing but MalformedReginfo; a
document the strict parser accepts, the lenient one accepts too (Kamailio reads what
RFC 3680 allows), and it builds (build_reginfo, which leaves out what the schema does
not know) to a body that the strict parser reads back to a document building the same body.
"""

from __future__ import annotations

from sip_gateway.errors import MalformedReginfo
from sip_gateway.reginfo import build_reginfo, parse_reginfo, parse_reginfo_lenient

from scripts.fuzz import seeds

NAME = "reginfo"
seed_inputs = seeds.reginfo_bodies


def check(data: bytes) -> None:
    try:
        lenient = parse_reginfo_lenient(data)
    except MalformedReginfo:
        lenient = None
    try:
        document = parse_reginfo(data)
    except MalformedReginfo:
        return
    assert lenient is not None, data
    built = build_reginfo(document)
    assert build_reginfo(parse_reginfo(built)) == built, (data, built)
