"""Applying a reginfo document with the observable results of Kamailio 5.6.3.

Acceptance rules of `reginfo_handle_notify`: the document `version` and `state` are
ignored; a registration counts only with state exactly `active` or `terminated` and a
usable `aor`; `terminated` removes every binding of a known AoR (result 2); for an active
registration each contact needs an `event` Kamailio knows (registered, created, refreshed,
expired, unregistered, terminated) and a non-negative `expires`, and becomes a binding
with expiry now + expires whatever its `state` says; an unknown AoR is only created by
registered/created/refreshed. The result is 1 once any contact left its AoR with a live
binding, else the last contact's 2 or -1, else 2 from a terminated known AoR, else -1.

Deliberate differences (fixed defects, same in rfc mode): a contact whose CSeq is below
the stored one for the same Call-ID is ignored instead of stored as a duplicate binding;
AoRs are keyed like local registrations (use_domain); Contact parameters stay fields
instead of being glued onto the URI; q and the other reported fields are kept; a contact
with neither callid nor id (Kamailio crashes) refuses the whole document with -1.
"""

from __future__ import annotations

from domain.errors import InvalidRequest, InvalidUri
from domain.notified_binding import check_ranges, contact_key, notified_binding
from domain.notify_rfc import AorWork, Identify, Load, NotifyResult, Workspace
from domain.reginfo import ContactInfo, ReginfoDocument

# Kamailio's event table; `refreshed` is read as `created`, anything else is unknown.
KNOWN_EVENTS = {"registered": "registered", "created": "created", "refreshed": "created",
                "expired": "expired", "unregistered": "unregistered", "terminated": "terminated"}
CREATING = ("registered", "created")


def apply_kamailio(document: ReginfoDocument, *, identify: Identify, load: Load, node: str,
                   now: float, subscription: str | None) -> NotifyResult:
    """Apply `document` as Kamailio 5.6.3 would (see the module doc for the differences)."""
    for reg in document.registrations:
        for contact in reg.contacts:
            if contact.callid is None and contact.id is None:
                return NotifyResult(-1, "contact without callid and id (Kamailio 5.6.3 crashes here)")
    space = Workspace(identify, load, now)
    result, reasons = -1, []
    for reg in document.registrations:
        if reg.state not in ("active", "terminated"):
            reasons.append(f"registration state {reg.state!r} skipped")
            continue
        try:
            identity = identify(reg.aor) if reg.aor else None
        except InvalidUri as error:
            reasons.append(f"registration skipped: {error}")
            continue
        if identity is None:
            reasons.append("registration without aor skipped")
            continue
        work = space.get(identity)
        if reg.state == "terminated":
            if work.live:
                for binding in list(work.live.values()):
                    work.end(binding, "unregistered", now)
                result = result if result == 1 else 2
            else:
                reasons.append(f"terminated registration of unknown AoR {identity.uri}")
            continue
        for contact in reg.contacts:
            outcome = _process_contact(work, contact, subscription, now, reasons)
            if outcome is not None and result != 1:
                result = outcome
    if result == -1:  # refused: nothing of it is recorded
        return NotifyResult(-1, "; ".join(reasons) or "no usable registration")
    space.commit(node, f"NOTIFY subscription={subscription} (kamailio mode)")
    return NotifyResult(result)


def _process_contact(work: AorWork, contact: ContactInfo, subscription: str | None, now: float,
                     reasons: list[str]) -> int | None:
    event = KNOWN_EVENTS.get(contact.event or "")
    if event is None:
        reasons.append(f"contact {contact.uri}: event {contact.event!r} skipped")
        return None
    if contact.expires is None or contact.expires < 0:
        reasons.append(f"contact {contact.uri}: no usable expires, skipped")
        return None
    if not work.live and event not in CREATING:
        return 2
    try:
        key = contact_key(contact)
        check_ranges(contact)
    except (InvalidUri, InvalidRequest) as error:
        reasons.append(f"contact skipped: {error}")
        return -1
    existing = work.live.get(key)
    callid = contact.callid or contact.id or ""
    cseq = contact.cseq or 0
    if existing and existing.callid == callid and cseq < existing.cseq:
        return 1 if work.live else 2  # Kamailio 5.6 would store a duplicate binding here
    expiry = now + contact.expires
    if expiry > now:
        binding = notified_binding(contact, callid=callid, cseq=cseq, expires=expiry,
                                   existing=existing, subscription=subscription, now=now)
        work.set(binding, "refreshed" if existing else ("registered" if event == "registered" else "created"))
    elif existing:
        work.end(existing, event if event in ("expired", "unregistered") else "expired", now)
    return 1 if work.live else 2
