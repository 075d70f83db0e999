"""Building reginfo bodies for PUBLISH and NOTIFY (RFC 3680 section 5.4, RFC 5628 GRUUs).

Only schema-valid content is written: the non-schema contact fields (`received`, `path`,
`user_agent`) and attributes without a namespace are left out, unless `kamailio_attributes`
asks for the first three as Kamailio 5.6 pua_reginfo writes them (always present, empty
when unknown). A document the strict parser would refuse is our own mistake, so it raises
ValueError rather than MalformedReginfo.

Extensions are spliced in as self-contained serialized fragments where a placeholder
processing instruction stands: appended as elements, lxml would rewrite their prefixes to
the ones already declared above them, and the parser would not read back the same string.
"""

from __future__ import annotations

import math
import re

from lxml import etree

from domain.reginfo import (
    CONTACT_EVENTS, CONTACT_STATES, DOCUMENT_STATES, REGISTRATION_STATES, ContactInfo,
    ReginfoDocument, RegistrationInfo,
)
from sip_gateway.errors import MalformedReginfo

from .names import (
    CONTACT, DISPLAY_NAME, GRUU_NS, PUB_GRUU, REGINFO, REGINFO_NS, REGISTRATION, TEMP_GRUU,
    UNKNOWN_PARAM, URI, XML_LANG, namespace_of,
)
from .safe_xml import parse_xml
from .scalars import UNSIGNED_INT_END, UNSIGNED_LONG_END, XML_SPACE

_PLACEHOLDER = "pua-reginfo-extension"
_PLACEHOLDER_PATTERN = re.compile(rb"<\?pua-reginfo-extension ([0-9]+)\?>")
# Optional integer contact attributes in schema order, after id, state and event.
_CONTACT_INTEGERS = (("expires", "expires"), ("duration-registered", "duration_registered"),
                     ("retry-after", "retry_after"))


KAMAILIO_ATTRIBUTES = ("received", "path", "user_agent")


def build_reginfo(doc: ReginfoDocument, *, kamailio_attributes: bool = False) -> bytes:
    """The UTF-8 application/reginfo+xml body of a document (RFC 3680 section 5.4)."""
    nsmap = {None: REGINFO_NS}
    if any(contact.pub_gruu is not None or contact.temp_gruu is not None
           for registration in doc.registrations for contact in registration.contacts):
        nsmap["gr"] = GRUU_NS
    root = etree.Element(REGINFO, nsmap=nsmap)
    root.set("version", _integer(doc.version, UNSIGNED_INT_END, "reginfo version"))
    root.set("state", _choice(doc.state, DOCUMENT_STATES, "reginfo state"))
    fragments: list[bytes] = []
    for registration in doc.registrations:
        _registration(root, registration, fragments, kamailio_attributes)
    _extensions(root, doc.extensions, fragments)
    body = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    if fragments:
        body = _PLACEHOLDER_PATTERN.sub(lambda match: fragments[int(match[1])], body)
    return body


def _registration(parent: etree._Element, registration: RegistrationInfo,
                  fragments: list[bytes], kamailio_attributes: bool) -> None:
    element = etree.SubElement(parent, REGISTRATION)
    element.set("aor", _uri(registration.aor, "registration aor"))
    element.set("id", _required(registration.id, f"registration {registration.aor!r} id"))
    element.set("state", _choice(registration.state, REGISTRATION_STATES,
                                 f"registration {registration.aor!r} state"))
    for contact in registration.contacts:
        _contact(element, contact, fragments, kamailio_attributes)
    _extensions(element, registration.extensions, fragments)


def _contact(parent: etree._Element, contact: ContactInfo, fragments: list[bytes],
             kamailio_attributes: bool) -> None:
    element = etree.SubElement(parent, CONTACT)
    what = f"contact {contact.id!r}"
    element.set("id", _required(contact.id, f"contact {contact.uri!r} id"))
    element.set("state", _choice(contact.state, CONTACT_STATES, f"{what} state"))
    element.set("event", _choice(contact.event, CONTACT_EVENTS, f"{what} event"))
    for attribute, field in _CONTACT_INTEGERS:
        if (value := getattr(contact, field)) is not None:
            element.set(attribute, _integer(value, UNSIGNED_LONG_END, f"{what} {attribute}"))
    if contact.q is not None:
        element.set("q", _qvalue(contact.q, what))
    if contact.callid is not None:
        element.set("callid", contact.callid)
    if contact.cseq is not None:
        element.set("cseq", _integer(contact.cseq, UNSIGNED_LONG_END, f"{what} cseq"))
    for name, value in contact.other_attributes:
        if namespace_of(name) not in (None, REGINFO_NS):
            element.set(name, value)
    if kamailio_attributes:
        for name in KAMAILIO_ATTRIBUTES:
            element.set(name, getattr(contact, name) or "")
    etree.SubElement(element, URI).text = _uri(contact.uri, f"{what} uri")
    if contact.display_name is not None:
        display_name = etree.SubElement(element, DISPLAY_NAME)
        display_name.text = contact.display_name
        if contact.display_name_lang is not None:
            display_name.set(XML_LANG, contact.display_name_lang)
    elif contact.display_name_lang is not None:
        raise ValueError(f"{what}: display_name_lang without a display_name")
    for name, value in contact.unknown_params:
        etree.SubElement(element, UNKNOWN_PARAM, name=name).text = value
    if contact.pub_gruu is not None:
        etree.SubElement(element, PUB_GRUU, uri=_uri(contact.pub_gruu, f"{what} pub-gruu"))
    if contact.temp_gruu is not None:
        temp_gruu = etree.SubElement(element, TEMP_GRUU)
        temp_gruu.set("uri", _uri(contact.temp_gruu.uri, f"{what} temp-gruu"))
        temp_gruu.set("first-cseq", _integer(contact.temp_gruu.first_cseq, UNSIGNED_LONG_END,
                                             f"{what} temp-gruu first-cseq"))
    _extensions(element, contact.extensions, fragments)


def _extensions(parent: etree._Element, extensions: tuple[str, ...],
                fragments: list[bytes]) -> None:
    for text in extensions:
        parent.append(etree.ProcessingInstruction(_PLACEHOLDER, str(len(fragments))))
        fragments.append(_extension_fragment(text))


def _extension_fragment(text: str) -> bytes:
    """The extension serialized on its own, declaring every namespace it uses."""
    try:
        element = parse_xml(text.encode("utf-8"))
    except MalformedReginfo as error:
        raise ValueError(f"extension {text[:60]!r}: {error}") from None
    if namespace_of(element.tag) in (None, REGINFO_NS):
        raise ValueError(f"extension {text[:60]!r} is not in another namespace")
    if any(namespace_of(inner.tag) is None for inner in element.iter(etree.Element)):
        # Below the reginfo default namespace, elements without one need xmlns="", which
        # libxml2 does not write by itself: rebuild the extension's top with it declared.
        top = etree.Element(element.tag, dict(element.attrib), nsmap={**element.nsmap, None: ""})
        top.text = element.text
        top.extend(element)
        element = top
    return etree.tostring(element, encoding="UTF-8")


def _required(value: str | None, what: str) -> str:
    if value is None:
        raise ValueError(f"{what} is required")
    return value


def _choice(value: str | None, allowed: tuple[str, ...], what: str) -> str:
    if value not in allowed:
        raise ValueError(f"{what} {value!r} is not one of {', '.join(allowed)}")
    return value


def _uri(value: str | None, what: str) -> str:
    if value is None or not value.strip(XML_SPACE):
        raise ValueError(f"{what} must be a non-empty URI")
    return value


def _integer(value: int | None, end: int, what: str) -> str:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < end:
        raise ValueError(f"{what} {value!r} is not an integer from 0 to {end - 1}")
    return str(value)


def _qvalue(q: float, what: str) -> str:
    if not (isinstance(q, (int, float)) and math.isfinite(q) and 0 <= q <= 1):
        raise ValueError(f"{what} q {q!r} is not between 0 and 1")
    return f"{q:.3f}".rstrip("0").rstrip(".")
