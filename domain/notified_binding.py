"""A binding as a reginfo `<contact>` reports it (RFC 3680 5.4, RFC 5628, RFC 5626).

Every field the document carries is kept: q, Call-ID, CSeq, display name, Contact
parameters (`unknown-param`), with +sip.instance and reg-id lifted into their own fields,
GRUUs, duration-registered (as the first registration time) and the non-schema
received/path/user_agent attributes some notifiers add. When the binding exists and was
registered here, what the NOTIFY does not say is kept: a NOTIFY never wipes the received
address, Path, socket, flags or methods of a local binding, and never takes it over.
"""

from __future__ import annotations

from dataclasses import replace

from domain.binding import MAX_CSEQ, MAX_REG_ID, Binding, binding_key
from domain.errors import InvalidRequest
from domain.reginfo import ContactInfo

MAX_SECONDS = 2**32 - 1


def contact_identity(contact: ContactInfo) -> tuple[str | None, int | None]:
    """+sip.instance and reg-id of a reported contact (RFC 5626 4.1, 4.2)."""
    instance = contact.param("+sip.instance") or None
    return instance, _reg_id(contact.param("reg-id"))


def _reg_id(text: str | None) -> int | None:
    if text and text.isascii() and text.isdigit() and len(text) <= 10:
        value = int(text)
        return value if 1 <= value <= MAX_REG_ID else None
    return None


def check_ranges(contact: ContactInfo) -> None:
    """Refuse numbers a binding cannot hold (CSeq below 2**31, seconds in 32 bits)."""
    if contact.cseq is not None and not 0 <= contact.cseq <= MAX_CSEQ:
        raise InvalidRequest(f"contact {contact.uri}: cseq {contact.cseq} out of range")
    for name in ("expires", "retry_after", "duration_registered"):
        value = getattr(contact, name)
        if value is not None and not 0 <= value <= MAX_SECONDS:
            raise InvalidRequest(f"contact {contact.uri}: {name.replace('_', '-')} {value} out of range")


def contact_key(contact: ContactInfo) -> str:
    instance, reg_id = contact_identity(contact)
    return binding_key(contact.uri, instance, reg_id)


def notified_binding(contact: ContactInfo, *, callid: str, cseq: int, expires: float,
                     existing: Binding | None, subscription: str | None,
                     now: float) -> Binding:
    """The binding after applying `contact`; `expires` is absolute (Unix seconds)."""
    instance, reg_id = contact_identity(contact)
    lifted = {"+sip.instance"} if instance else set()
    if reg_id is not None:
        lifted.add("reg-id")
    params = tuple((name, value or None) for name, value in contact.unknown_params
                   if name.lower() not in lifted)
    if contact.duration_registered is not None:
        registered_at = now - contact.duration_registered
    else:
        registered_at = existing.registered_at if existing else now
    reported = Binding(
        contact=contact.uri,
        expires=expires,
        callid=callid,
        cseq=cseq,
        registered_at=registered_at,
        q=contact.q,
        received=contact.received or None,
        path=_path(contact.path),
        user_agent=contact.user_agent or None,
        instance=instance,
        reg_id=reg_id,
        display_name=contact.display_name,
        params=params,
        pub_gruu=contact.pub_gruu,
        temp_gruu=contact.temp_gruu.uri if contact.temp_gruu else None,
        temp_gruu_first_cseq=contact.temp_gruu.first_cseq if contact.temp_gruu else None,
        subscription=subscription,
        key=existing.key if existing else binding_key(contact.uri, instance, reg_id),
    )
    if existing is None or not existing.is_local:
        return reported
    return replace(
        reported,
        q=reported.q if reported.q is not None else existing.q,
        received=reported.received or existing.received,
        path=reported.path or existing.path,
        user_agent=reported.user_agent or existing.user_agent,
        instance=reported.instance or existing.instance,
        reg_id=reported.reg_id if reported.reg_id is not None else existing.reg_id,
        methods=existing.methods,
        flags=existing.flags,
        cflags=existing.cflags,
        socket=existing.socket,
        display_name=reported.display_name or existing.display_name,
        params=reported.params or existing.params,
        subscription=None,
    )


def _path(text: str | None) -> tuple[str, ...]:
    """Split a Path value on commas outside angle brackets."""
    if not text:
        return ()
    parts, depth, current = [], 0, []
    for char in text:
        if char == "<":
            depth += 1
        elif char == ">":
            depth = max(0, depth - 1)
        if char == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    parts.append("".join(current).strip())
    return tuple(p for p in parts if p)
