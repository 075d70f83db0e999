"""Strict reginfo parsing: the RFC 3680 section 5.4 schema, with RFC 5628 GRUUs.

What reginfo.xsd says, checked by hand while the values are read, so that each refusal
names the element and attribute: required attributes and their types, the order uri,
display-name, unknown-param, then other-namespace elements, and extensions only after the
reginfo elements of their parent; also at most one pub-gruu and one temp-gruu per contact.
Two tolerances: contact attributes the schema does not know are kept (Kamailio adds
`received`, `path` and `user_agent`), and `xsi:` attributes are ignored everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping

from lxml import etree

from domain.reginfo import (
    CONTACT_EVENTS, CONTACT_STATES, DOCUMENT_STATES, REGISTRATION_STATES, ContactInfo,
    ReginfoDocument, RegistrationInfo, TempGruu,
)
from sip_gateway.errors import MalformedReginfo

from .names import (
    CONTACT, DISPLAY_NAME, PUB_GRUU, REGINFO, REGINFO_NS, REGISTRATION, TEMP_GRUU,
    UNKNOWN_PARAM, URI, XML_LANG, XSI_NS, namespace_of, shown,
)
from .safe_xml import parse_xml
from .scalars import UNSIGNED_INT_END, UNSIGNED_LONG_END, XML_SPACE, parse_qvalue, parse_unsigned

# Contact attributes with a field of their own: attribute -> ContactInfo field.
_CONTACT_INTEGERS = {"expires": "expires", "duration-registered": "duration_registered",
                     "retry-after": "retry_after", "cseq": "cseq"}
_CONTACT_STRINGS = {"callid": "callid", "received": "received", "path": "path",
                    "user_agent": "user_agent"}
_CONTACT_KNOWN = {"id", "state", "event", "q", *_CONTACT_INTEGERS, *_CONTACT_STRINGS}
# Where each reginfo child of a contact may stand; other-namespace elements come last.
_CONTACT_SLOTS = {URI: 0, DISPLAY_NAME: 1, UNKNOWN_PARAM: 2}
_EXTENSION_SLOT = 3


def parse_reginfo(body: bytes) -> ReginfoDocument:
    """A reginfo document valid by RFC 3680 section 5.4 (and RFC 5628), else MalformedReginfo."""
    root = parse_xml(body)
    if root.tag != REGINFO:
        raise MalformedReginfo(f"root element is {shown(root.tag)}, not <reginfo> in {REGINFO_NS}")
    where = "<reginfo>"
    _refuse_unknown_attributes(root, {"version", "state"}, where)
    version = _unsigned(root.attrib, "version", UNSIGNED_INT_END, where, required=True)
    state = _choice(root.attrib, "state", DOCUMENT_STATES, where)
    registrations: list[RegistrationInfo] = []
    extensions: list[str] = []
    for child in _element_children(root, where):
        if child.tag == REGISTRATION:
            _refuse_after_extensions(extensions, child, where)
            registrations.append(_registration(child))
        else:
            extensions.append(_extension(child, where))
    return ReginfoDocument(version, state, tuple(registrations), tuple(extensions))


def _registration(element: etree._Element) -> RegistrationInfo:
    _refuse_unknown_attributes(element, {"aor", "id", "state"}, "<registration>")
    attributes = element.attrib
    aor = _uri(_required(attributes, "aor", "<registration>"), "<registration> attribute 'aor'")
    where = f"<registration aor={_brief(aor)}>"
    registration_id = _required(attributes, "id", where)
    state = _choice(attributes, "state", REGISTRATION_STATES, where)
    contacts: list[ContactInfo] = []
    extensions: list[str] = []
    for child in _element_children(element, where):
        if child.tag == CONTACT:
            _refuse_after_extensions(extensions, child, where)
            contacts.append(_contact(child))
        else:
            extensions.append(_extension(child, where))
    return RegistrationInfo(aor, registration_id, state, tuple(contacts), tuple(extensions))


def _contact(element: etree._Element) -> ContactInfo:
    attributes = dict(element.attrib)
    contact_id = _required(attributes, "id", "<contact>")
    where = f"<contact id={_brief(contact_id)}>"
    fields: dict = {
        "id": contact_id,
        "state": _choice(attributes, "state", CONTACT_STATES, where),
        "event": _choice(attributes, "event", CONTACT_EVENTS, where),
    }
    for attribute, field in _CONTACT_INTEGERS.items():
        fields[field] = _unsigned(attributes, attribute, UNSIGNED_LONG_END, where)
    for attribute, field in _CONTACT_STRINGS.items():
        fields[field] = attributes.get(attribute)
    if (q := attributes.get("q")) is not None:
        fields["q"] = parse_qvalue(q)
        if fields["q"] is None:
            raise MalformedReginfo(f"{where}: q {_brief(q)} is not a decimal between 0 and 1")
    fields["other_attributes"] = tuple(
        (name, value) for name, value in attributes.items()
        if name not in _CONTACT_KNOWN and namespace_of(name) != XSI_NS)
    fields.update(_contact_children(element, where))
    return ContactInfo(**fields)


def _contact_children(element: etree._Element, where: str) -> dict:
    found: dict = {"unknown_params": [], "extensions": []}
    slot = 0
    for child in _element_children(element, where):
        child_slot = _CONTACT_SLOTS.get(child.tag, _EXTENSION_SLOT)
        if child_slot < slot:
            raise MalformedReginfo(f"{where}: {shown(child.tag)} is out of order "
                                   "(uri, display-name, unknown-param, then extensions)")
        slot = child_slot
        if child.tag == URI:
            _refuse_second(found, "uri", child, where)
            found["uri"] = _uri(_text_only(child, where), f"{where} <uri>")
        elif child.tag == DISPLAY_NAME:
            _refuse_second(found, "display_name", child, where)
            _refuse_unknown_attributes(child, {XML_LANG}, f"{where} <display-name>")
            found["display_name"] = _text_only(child, where)
            found["display_name_lang"] = child.get(XML_LANG)
        elif child.tag == UNKNOWN_PARAM:
            _refuse_unknown_attributes(child, {"name"}, f"{where} <unknown-param>")
            name = _required(child.attrib, "name", f"{where} <unknown-param>")
            found["unknown_params"].append((name, _text_only(child, where)))
        elif child.tag == PUB_GRUU:
            _refuse_second(found, "pub_gruu", child, where)
            found["pub_gruu"] = _gruu_uri(child, where)
        elif child.tag == TEMP_GRUU:
            _refuse_second(found, "temp_gruu", child, where)
            first_cseq = _unsigned(child.attrib, "first-cseq", UNSIGNED_LONG_END,
                                   f"{where} <temp-gruu>", required=True)
            found["temp_gruu"] = TempGruu(_gruu_uri(child, where), first_cseq)
        else:
            found["extensions"].append(_extension(child, where))
    if "uri" not in found:
        raise MalformedReginfo(f"{where}: <uri> is missing")
    found["unknown_params"] = tuple(found["unknown_params"])
    found["extensions"] = tuple(found["extensions"])
    return found


def _gruu_uri(element: etree._Element, where: str) -> str:
    inner = f"{where} {shown(element.tag)}"
    for name in element.attrib:
        if namespace_of(name) is None and name not in ("uri", "first-cseq"):
            raise MalformedReginfo(f"{inner}: unknown attribute {_brief(name)}")
    return _uri(_required(element.attrib, "uri", inner), f"{inner} attribute 'uri'")


def _extension(element: etree._Element, where: str) -> str:
    """An other-namespace element, kept as exclusive canonical XML."""
    namespace = namespace_of(element.tag)
    if namespace == REGINFO_NS:
        raise MalformedReginfo(f"{where}: unknown element {shown(element.tag)} in the reginfo "
                               "namespace, or one out of order")
    if namespace is None:
        raise MalformedReginfo(f"{where}: element {shown(element.tag)} refused: an extension "
                               "needs a namespace")
    try:
        return etree.tostring(element, method="c14n", exclusive=True, with_tail=False).decode()
    except etree.C14NError:  # libxml2 refuses e.g. a relative namespace URI (RFC 3986 4.2)
        raise MalformedReginfo(f"{where}: extension {shown(element.tag)} cannot be kept: its "
                               "namespace is not an absolute URI") from None


def _element_children(element: etree._Element, where: str):
    if _is_text(element.text):
        raise MalformedReginfo(f"{where}: unexpected text {_brief(element.text.strip())}")
    for child in element:
        if _is_text(child.tail):
            raise MalformedReginfo(f"{where}: unexpected text {_brief(child.tail.strip())}")
        yield child


def _is_text(text: str | None) -> bool:
    return bool(text) and bool(text.strip(XML_SPACE))


def _text_only(element: etree._Element, where: str) -> str:
    if len(element):
        raise MalformedReginfo(f"{where}: {shown(element.tag)} holds elements; text only")
    return element.text or ""


def _uri(text: str, what: str) -> str:
    stripped = text.strip(XML_SPACE)
    if not stripped:
        raise MalformedReginfo(f"{what} is empty")
    return stripped


def _required(attributes: Mapping[str, str], attribute: str, where: str) -> str:
    value = attributes.get(attribute)
    if value is None:
        raise MalformedReginfo(f"{where}: attribute {attribute!r} is missing")
    return value


def _choice(attributes: Mapping[str, str], attribute: str, allowed: tuple[str, ...],
            where: str) -> str:
    value = _required(attributes, attribute, where)
    if value not in allowed:
        raise MalformedReginfo(f"{where}: {attribute} {_brief(value)} is not one of "
                               f"{', '.join(allowed)}")
    return value


def _unsigned(attributes: Mapping[str, str], attribute: str, end: int, where: str,
              required: bool = False) -> int | None:
    text = _required(attributes, attribute, where) if required else attributes.get(attribute)
    if text is None:
        return None
    value = parse_unsigned(text, end)
    if value is None:
        raise MalformedReginfo(f"{where}: {attribute} {_brief(text)} is not an integer "
                               f"from 0 to {end - 1}")
    return value


def _brief(value: str) -> str:
    """A peer's value as an error message quotes it: repr, cut at 40 characters."""
    return repr(value) if len(value) <= 40 else repr(value[:40]) + "..."


def _refuse_unknown_attributes(element: etree._Element, allowed: set[str], where: str) -> None:
    for name in element.attrib:
        if name not in allowed and namespace_of(name) != XSI_NS:
            raise MalformedReginfo(f"{where}: unknown attribute {_brief(name)}")


def _refuse_after_extensions(extensions: list[str], child: etree._Element, where: str) -> None:
    if extensions:
        raise MalformedReginfo(f"{where}: {shown(child.tag)} after an extension element")


def _refuse_second(found: dict, key: str, child: etree._Element, where: str) -> None:
    if key in found:
        raise MalformedReginfo(f"{where}: more than one {shown(child.tag)}")
