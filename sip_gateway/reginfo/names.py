"""XML names of reginfo documents (RFC 3680 section 5.4) and GRUU elements (RFC 5628)."""

from __future__ import annotations

REGINFO_NS = "urn:ietf:params:xml:ns:reginfo"
GRUU_NS = "urn:ietf:params:xml:ns:gruuinfo"
XML_NS = "http://www.w3.org/XML/1998/namespace"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"

REGINFO = f"{{{REGINFO_NS}}}reginfo"
REGISTRATION = f"{{{REGINFO_NS}}}registration"
CONTACT = f"{{{REGINFO_NS}}}contact"
URI = f"{{{REGINFO_NS}}}uri"
DISPLAY_NAME = f"{{{REGINFO_NS}}}display-name"
UNKNOWN_PARAM = f"{{{REGINFO_NS}}}unknown-param"
PUB_GRUU = f"{{{GRUU_NS}}}pub-gruu"
TEMP_GRUU = f"{{{GRUU_NS}}}temp-gruu"
XML_LANG = f"{{{XML_NS}}}lang"


def namespace_of(name: str) -> str | None:
    """The namespace of a Clark-notation name (`{ns}local`), None when it has none."""
    return name[1:name.index("}")] if name.startswith("{") else None


def local_name(name: str) -> str:
    return name.rpartition("}")[2]


def shown(name: str) -> str:
    """A name as an error message shows it: `<contact>`, `<{urn:x}e>`, `<e> (no namespace)`."""
    namespace = namespace_of(name)
    if namespace in (REGINFO_NS, GRUU_NS):
        return f"<{local_name(name)}>"
    return f"<{name}>" if namespace else f"<{name}> (no namespace)"
