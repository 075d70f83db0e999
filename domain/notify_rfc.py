"""Applying a reginfo document the way RFC 3680 section 5.5 tells a subscriber to.

Merge algorithm. Stale and duplicate versions are discarded unprocessed (the Subscription
decides; a full document whose NOTIFY came later in the dialog than the last one applied
is a new baseline, for notifiers that do not count versions per subscription). Otherwise every registration of the document is applied to its AoR:

- registration `terminated` or `init`: it has no bindings any more; every binding this
  subscription told us about for the AoR ends (with the contact's own event if listed);
- registration `active`: each contact is merged by its binding key (contact URI, or
  +sip.instance/reg-id). Its `state` decides: `terminated` ends the binding with the
  reported event; `active` creates or updates it (`expires` 0 means it has already lapsed).
  A contact whose Call-ID matches the binding but whose CSeq is lower is older news than
  what we hold and is ignored (no duplicate binding, no regression).
- a `full` document then ends every binding this subscription told us about that it no
  longer lists, in any AoR (RFC 3680: what a full document omits does not exist).

Nothing here saves: the caller stores all touched aggregates in one transaction, so a
document is applied entirely or not at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from domain.address_of_record import AddressOfRecord, NotifiedChange
from domain.aor import AorIdentity
from domain.binding import Binding
from domain.contact_machine import TERMINATING_EVENTS
from domain.notified_binding import check_ranges, contact_key, notified_binding
from domain.reginfo import ContactInfo, ReginfoDocument
from domain.subscription import GAP, STALE, Subscription

Identify = Callable[[str], AorIdentity]
Load = Callable[[AorIdentity], AddressOfRecord]


@dataclass
class NotifyResult:
    """The reginfo_handle_notify result: 1 bindings left, 2 none left, -1 refused."""

    code: int
    reason: str | None = None
    gap: bool = False
    discarded: bool = False
    unknown_subscription: bool = False  # rfc mode: no subscription of ours matches (481)


@dataclass
class AorWork:
    """One AoR while a document is applied: its live bindings and the changes decided."""

    aggregate: AddressOfRecord
    live: dict[str, Binding]
    changes: list[NotifiedChange] = field(default_factory=list)
    listed: set[str] = field(default_factory=set)

    def end(self, binding: Binding, event: str, now: float, retry_after: int | None = None) -> None:
        self.changes.append(NotifiedChange(event, binding.with_expires(now), retry_after))
        self.live.pop(binding.key, None)

    def set(self, binding: Binding, event: str) -> None:
        self.changes.append(NotifiedChange(event, binding))
        self.live[binding.key] = binding
        self.listed.add(binding.key)


class Workspace:
    """The AoRs touched by one document, each loaded once."""

    def __init__(self, identify: Identify, load: Load, now: float):
        self.identify, self.load, self.now = identify, load, now
        self.aors: dict[str, AorWork] = {}

    def get(self, identity: AorIdentity) -> AorWork:
        key = str(identity.id)
        if key not in self.aors:
            aggregate = self.load(identity)
            live = {b.key: b for b in aggregate.live_bindings(self.now)}
            self.aors[key] = AorWork(aggregate, live)
        return self.aors[key]

    def commit(self, node: str, cause: str) -> None:
        for work in self.aors.values():
            if work.changes:
                work.aggregate.apply_notified(work.changes, node, cause, self.now)


def apply_rfc(document: ReginfoDocument, subscription: Subscription, *, identify: Identify,
              load: Load, node: str, now: float, default_expires: int,
              cseq: int | None = None) -> NotifyResult:
    """Apply `document` received on `subscription` (RFC 3680 5.5); see the module doc."""
    sub_id = subscription.subscription_id
    identities = [identify(reg.aor or "") for reg in document.registrations]
    for reg in document.registrations:
        for contact in reg.contacts:
            contact_key(contact)  # refuses an unusable contact URI before anything changes
            check_ranges(contact)
    space = Workspace(identify, load, now)
    verdict = subscription.classify(document.version, document.is_full, cseq)
    if verdict == STALE:
        reason = (f"version {document.version} is not above {subscription.reginfo_version}: "
                  "stale or duplicate document discarded")
        subscription.discard(document.version, reason, node, now)
        return NotifyResult(_code(space, identities), reason, discarded=True)

    cause = f"NOTIFY subscription={sub_id} version={document.version}"
    for reg, identity in zip(document.registrations, identities):
        work = space.get(identity)
        if reg.state in ("terminated", "init"):
            reported = {contact_key(c): c for c in reg.contacts}
            for binding in list(work.live.values()):
                if binding.subscription == sub_id:
                    contact = reported.get(binding.key)
                    event = contact.event if contact and contact.event in TERMINATING_EVENTS else "unregistered"
                    work.end(binding, event, now, contact.retry_after if contact else None)
            continue
        for contact in reg.contacts:
            _merge_contact(work, contact, sub_id, now, default_expires)

    if document.is_full:
        for aor_id, aor_uri in subscription.aors.items():
            if aor_id not in space.aors:
                space.get(identify(aor_uri))
        for work in space.aors.values():
            for binding in list(work.live.values()):
                if binding.subscription == sub_id and binding.key not in work.listed:
                    work.end(binding, "unregistered", now)

    space.commit(node, cause)
    told = {str(w.aggregate.id): w.aggregate.aor for w in space.aors.values()
            if any(b.subscription == sub_id for b in w.live.values())}
    gap = not document.is_full and (verdict == GAP or subscription.reginfo_version is None)
    subscription.accept(document.version, document.state or "partial", told, gap, node, now,
                        cseq)
    reason = "version gap: full state needed (re-SUBSCRIBE)" if gap else None
    return NotifyResult(_code(space, identities), reason, gap=gap)


def _merge_contact(work: AorWork, contact: ContactInfo, sub_id: str, now: float,
                   default_expires: int) -> None:
    key = contact_key(contact)
    existing = work.live.get(key)
    callid = contact.callid or (existing.callid if existing else None) or contact.id or ""
    cseq = contact.cseq if contact.cseq is not None else (existing.cseq if existing else 0)
    if existing and existing.callid == callid and cseq < existing.cseq:
        return  # older than the binding we hold
    if contact.state == "terminated":
        if existing:
            event = contact.event if contact.event in TERMINATING_EVENTS else "unregistered"
            work.end(existing, event, now, contact.retry_after)
        return
    if contact.expires is not None:
        expiry = now + contact.expires
    else:
        expiry = existing.expires if existing else now + default_expires
    if expiry <= now:
        if existing:
            work.end(existing, "expired", now)
        return
    binding = notified_binding(contact, callid=callid, cseq=cseq, expires=expiry,
                               existing=existing, subscription=sub_id, now=now)
    if existing is None:
        event = "created" if contact.event in ("created", "shortened") else "registered"
    elif contact.event == "shortened" and expiry < existing.expires:
        event = "shortened"
    else:
        event = "refreshed"
    work.set(binding, event)


def _code(space: Workspace, identities: list[AorIdentity]) -> int:
    for identity in identities:
        if space.get(identity).live:
            return 1
    return 2
