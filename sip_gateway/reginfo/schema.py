"""Validation against the project's XML Schema for RFC 3680 section 5.4 (and RFC 5628)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from lxml import etree

from sip_gateway.errors import MalformedReginfo

from .safe_xml import parse_xml

SCHEMA_FILE = Path(__file__).with_name("reginfo.xsd")  # imports gruuinfo.xsd and xml.xsd


def validate_reginfo(body: bytes) -> None:
    """Refuse a body that is not a schema-valid reginfo document (RFC 3680 section 5.4)."""
    root = parse_xml(body)
    schema = _schema()
    if not schema.validate(root):
        first = schema.error_log[0]
        raise MalformedReginfo(f"schema: {first.message} (line {first.line})")


@cache
def _schema() -> etree.XMLSchema:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    return etree.XMLSchema(etree.parse(str(SCHEMA_FILE), parser))
