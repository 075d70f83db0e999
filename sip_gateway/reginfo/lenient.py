"""Lenient reginfo parsing: what Kamailio 5.6 `reginfo_handle_notify` reads (pua_reginfo).

Theory of operation (reference sections 3.2 to 3.4): names are compared by local name,
case-insensitively, in any namespace or none. The first `reginfo` element met depth-first
anywhere in the document is the document; its direct `registration` children, their direct
`contact` children, and the contacts' direct `uri`, `display-name` and `unknown-param`
children are read. Values Kamailio compares are kept as written (the caller applies its
rules); `expires` and `cseq` go through C atoi. Two deliberate departures: a URI is stripped
of surrounding whitespace, and an `unknown-param` without a name is refused (Kamailio
crashes on it). Schema checks, GRUUs and extensions are the strict parser's business.
"""

from __future__ import annotations

from functools import lru_cache

from lxml import etree

from domain.reginfo import DOCUMENT_STATES, ContactInfo, ReginfoDocument, RegistrationInfo
from sip_gateway.errors import MalformedReginfo

from .names import XML_LANG, local_name
from .safe_xml import parse_xml
from .scalars import (
    UNSIGNED_INT_END, UNSIGNED_LONG_END, XML_SPACE, c_atoi, parse_float, parse_unsigned,
)


def parse_reginfo_lenient(body: bytes) -> ReginfoDocument:
    """A reginfo document read the way Kamailio 5.6 pua_reginfo reads it (RFC 3680 section 5.4)."""
    reginfo = _first_reginfo(parse_xml(body))
    attributes = _attributes(reginfo)
    version = _unsigned_or_none(attributes.get("version"), UNSIGNED_INT_END)
    state = attributes.get("state")
    return ReginfoDocument(
        version=version,
        state=state if state in DOCUMENT_STATES else None,
        registrations=tuple(_registration(child)
                            for child in _children(reginfo).get("registration", ())),
    )


def _first_reginfo(root: etree._Element) -> etree._Element:
    for element in root.iter(etree.Element):
        if _folded(element.tag) == "reginfo":
            return element
    raise MalformedReginfo("no reginfo element in the document")


def _registration(element: etree._Element) -> RegistrationInfo:
    attributes = _attributes(element)
    contacts = tuple(info for contact in _children(element).get("contact", ())
                     for info in _contact_per_uri(contact))
    return RegistrationInfo(attributes.get("aor"), attributes.get("id"), attributes.get("state"),
                            contacts)


def _contact_per_uri(element: etree._Element) -> list[ContactInfo]:
    """One ContactInfo per `<uri>` child (none: the contact is dropped, as Kamailio does)."""
    attributes = _attributes(element)
    children = _children(element)
    unknown_params = tuple(_unknown_param(child) for child in children.get("unknown-param", ()))
    display_name = children.get("display-name", [None])[0]
    common = dict(
        id=attributes.get("id"),
        state=attributes.get("state"),
        event=attributes.get("event"),
        expires=_atoi_or_none(attributes.get("expires")),
        q=parse_float(attributes["q"]) if "q" in attributes else None,
        callid=attributes.get("callid"),
        cseq=_atoi_or_none(attributes.get("cseq")),
        duration_registered=_unsigned_or_none(attributes.get("duration-registered"),
                                              UNSIGNED_LONG_END),
        retry_after=_unsigned_or_none(attributes.get("retry-after"), UNSIGNED_LONG_END),
        display_name=_text(display_name) if display_name is not None else None,
        display_name_lang=display_name.get(XML_LANG) if display_name is not None else None,
        unknown_params=unknown_params,
        received=attributes.get("received"),
        path=attributes.get("path"),
        user_agent=attributes.get("user_agent"),
    )
    return [ContactInfo(uri=_text(uri).strip(XML_SPACE), **common)
            for uri in children.get("uri", ())]


def _unknown_param(element: etree._Element) -> tuple[str, str]:
    name = _attributes(element).get("name")
    if name is None:
        raise MalformedReginfo("unknown-param without a name")
    return name, _text(element)


def _children(element: etree._Element) -> dict[str, list[etree._Element]]:
    """Direct child elements by lower-cased local name, in document order."""
    found: dict[str, list[etree._Element]] = {}
    for child in element.iterchildren(etree.Element):
        found.setdefault(_folded(child.tag), []).append(child)
    return found


def _attributes(element: etree._Element) -> dict[str, str]:
    """Attributes by lower-cased local name; the first match wins (Kamailio walks the list)."""
    found: dict[str, str] = {}
    for name, value in element.attrib.items():
        found.setdefault(_folded(name), value)
    return found


@lru_cache(maxsize=1024)  # a few names in every document, looked up over and over
def _folded(name: str) -> str:
    """A Clark-notation name compared the Kamailio way: local part, lower case."""
    return (local_name(name) if name[0] == "{" else name).lower()


def _text(element: etree._Element) -> str:
    """All text inside the element, entities decoded (libxml2 xmlNodeGetContent)."""
    if not len(element):
        return element.text or ""
    return "".join(element.itertext())


def _atoi_or_none(text: str | None) -> int | None:
    return None if text is None else c_atoi(text)


def _unsigned_or_none(text: str | None, end: int) -> int | None:
    return None if text is None else parse_unsigned(text, end)
