"""Parsing untrusted reginfo bodies: UTF-8 only (RFC 3680 section 5.4), no DTD, bounded size.

Theory of operation: every check that can be made on the bytes is made before lxml sees
them (size, UTF-8, NUL, DOCTYPE), so entity declarations (XXE, billion laughs) are never
parsed, let alone expanded. Once the body is known to be UTF-8 without NUL bytes, a DOCTYPE
can only appear as the literal bytes `<!DOCTYPE`, so the scan is exact (a CDATA section that
quotes one is refused too). The parser then runs with entities, DTDs and network off, and
the tree's depth is bounded afterwards (libxml2 itself stops at 256 levels).
"""

from __future__ import annotations

import re
from functools import cache

from lxml import etree

from sip_gateway.errors import MalformedReginfo

_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
    huge_tree=False, remove_comments=True, remove_pis=True, collect_ids=False,
    encoding="utf-8",
)
_BOM = b"\xef\xbb\xbf"
_DECLARED_ENCODING = re.compile(rb"<\?xml[^>]*?\sencoding\s*=\s*[\"']([^\"']*)[\"']")
_UTF8_NAMES = {b"utf-8", b"utf8", b"us-ascii", b"ascii"}


def parse_xml(body: bytes, *, max_bytes: int = 1_048_576, max_depth: int = 32) -> etree._Element:
    """The root element of a safe, well-formed UTF-8 XML body (RFC 3680 section 5.4, RFC 3023)."""
    if not body:
        raise MalformedReginfo("empty body")
    if len(body) > max_bytes:
        raise MalformedReginfo(f"body of {len(body)} bytes is over the {max_bytes}-byte limit")
    _check_encoding(body)
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise MalformedReginfo("DOCTYPE or entity declaration refused")
    try:
        root = etree.fromstring(body, _PARSER)
    except (etree.LxmlError, ValueError, UnicodeError) as error:
        raise MalformedReginfo(_reason(error, max_depth)) from None
    if root.getroottree().docinfo.internalDTD is not None:
        raise MalformedReginfo("DOCTYPE or entity declaration refused")
    if _deeper_than(max_depth)(root):
        raise MalformedReginfo(f"elements nested deeper than {max_depth} levels")
    return root


def _check_encoding(body: bytes) -> None:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise MalformedReginfo(f"body is not valid UTF-8 (byte {error.start})") from None
    if b"\x00" in body:
        raise MalformedReginfo("body holds a NUL byte (UTF-16 or binary, not UTF-8)")
    head = body[len(_BOM):] if body.startswith(_BOM) else body
    if head.startswith(b"<?xml"):
        declared = _DECLARED_ENCODING.match(head[:head.find(b"?>") + 2])
        if declared and declared.group(1).lower() not in _UTF8_NAMES:
            name = declared.group(1).decode("ascii", "replace")
            raise MalformedReginfo(f"declared encoding {name!r} refused: reginfo is UTF-8")


def _reason(error: Exception, max_depth: int) -> str:
    message = " ".join(str(error).split())
    if "Excessive depth" in message:
        return f"elements nested deeper than {max_depth} levels"
    return f"not well-formed XML: {message}"


@cache
def _deeper_than(max_depth: int) -> etree.XPath:
    # True when an element exists at level max_depth + 1 (the root is level 1); runs in C.
    return etree.XPath("boolean(/" + "/".join(["*"] * (max_depth + 1)) + ")")
