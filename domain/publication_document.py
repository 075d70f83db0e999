"""The full-state reginfo document a registrar PUBLISHes for one AoR (RFC 3680 5.3-5.5).

One local change of an AoR (a REGISTER, an expiry run, an administrative command) gives
one full-state document: the live bindings, each `active` with the event that brought it
to its current state, then every binding this change ended, `terminated` with its event
and `expires="0"`, reported once. Where pua_reginfo (behaviour spec 2.3, 5.10) differs:

- ids are stable hashes of the resource and the binding key, the same on every node and
  after every restart, instead of memory addresses;
- a REGISTER-created binding is `registered` (`created` is for other means); expired and
  unregistered bindings are listed with `expires="0"` instead of vanishing or keeping
  their old lifetime; `Contact: *` is one document, not one per binding;
- the document is schema-valid: no `received`/`path`/`user_agent`, but q, Call-ID, CSeq,
  duration-registered, display-name, the Contact parameters as `unknown-param`
  (+sip.instance and reg-id first, as the NOTIFY side reads them back) and RFC 5628 GRUUs.

Contacts are ordered like AddressOfRecord.live_bindings: highest q first (no q counts as
1.0), then contact URI, then binding key. Seconds left are rounded up and seconds
registered down, after rounding to the microsecond so that float noise in
`now + expires` never turns 3600 into 3601.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace

from domain.aor import AorPolicy, normalize_aor
from domain.binding import MAX_CSEQ, Binding, preference
from domain.contact_machine import ACTIVATING_EVENTS, CONTINUING_EVENTS, TERMINATING_EVENTS
from domain.notified_binding import MAX_SECONDS
from domain.reginfo import CONTACT_EVENTS, ContactInfo, ReginfoDocument, RegistrationInfo, TempGruu
from domain.uri import TelUri, parse_uri

LIVE_EVENTS = ACTIVATING_EVENTS + CONTINUING_EVENTS
ENDED_EVENTS = TERMINATING_EVENTS
MAX_VERSION = 2**32 - 1  # xs:unsignedInt

Ended = tuple[str, Binding, "int | None"]  # (terminating event, binding, retry-after)

_XML_SPACE = " \t\r\n"
_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def resource_uri(aor_uri: str, default_domain: str | None) -> str:
    """The AoR as the PUBLISH resource and `<registration aor>` (RFC 3680 5.4, RFC 3903).

    - a SIP or SIPS AoR is canonicalised as RFC 3261 10.3 step 5 says (scheme and host
      lower-cased, default port, URI parameters and password dropped); the user part keeps
      its case, which is the record-keying policy's business, not the document's;
    - `user@host` without a scheme becomes `sip:user@host`;
    - an AoR without host (a bare user or number) is completed with `default_domain`,
      and is refused (InvalidUri) when none is set;
    - a `tel:` AoR becomes `sip:<number>@<default_domain>;user=phone` (RFC 3261 19.1.6:
      visual separators removed, a phone-context kept in the user part) when a
      default_domain is set, else stays a canonical tel URI.
    """
    policy = AorPolicy(case_sensitive=True, default_domain=default_domain)
    identity = normalize_aor(aor_uri, policy)
    uri = parse_uri(identity.uri)
    if isinstance(uri, TelUri) and default_domain:
        user = uri.number + "".join(f";{k}={v}" for k, v in uri.params)
        return normalize_aor(f"sip:{user}@{default_domain}", policy).uri + ";user=phone"
    return identity.uri


def registration_id(resource: str) -> str:
    """`<registration id>` (RFC 3680 5.4): 16 hex digits, fixed for the resource."""
    return _digest(b"pua-reginfo-reg", resource)


def contact_id(resource: str, binding_key: str) -> str:
    """`<contact id>` (RFC 3680 5.4): 16 hex digits, fixed for the binding of the resource."""
    return _digest(b"pua-reginfo-con", resource, binding_key)


def _digest(person: bytes, *parts: str) -> str:
    data = "\x00".join(parts).encode("utf-8", "surrogatepass")
    return hashlib.blake2b(data, digest_size=8, person=person).hexdigest()


def publication_expires(bindings: Sequence[Binding], now: float, fallback: int = 3600) -> int:
    """PUBLISH Expires (RFC 3903 4.1): the longest lifetime left of the live bindings."""
    if not isinstance(fallback, int) or isinstance(fallback, bool) or fallback < 0:
        raise ValueError(f"fallback {fallback!r} is not a non-negative integer")
    _finite(now, "now")
    return max((_seconds_left(b, now) for b in bindings if not b.is_due(now)), default=fallback)


def publication_document(resource: str, live: Sequence[Binding], events: Mapping[str, str],
                         ended: Sequence[Ended], version: int, now: float, *,
                         routing: bool = False) -> ReginfoDocument:
    """The full-state document after one change of `resource` (RFC 3680 5.3-5.5, RFC 5628).

    `events[binding.key]` is the event that brought each live binding to its current state
    (registered, created, refreshed, shortened); `ended` lists the bindings this change
    terminated with their event (expired, deactivated, probation, unregistered, rejected)
    and, for probation, the retry-after seconds (required there, left out elsewhere). A
    binding both ended and live in the same change (lapsed, then registered again) is
    reported live only; of several endings of one binding the last is kept. The
    registration is `active` with a live binding, `terminated` when the change ended the
    last one, and `init` when there is nothing to report at all. With `routing`, each
    contact also carries the binding's received address, Path (comma-joined) and user
    agent, which only Kamailio-compatible documents write. Inputs that cannot make a valid
    document raise ValueError.
    """
    registration = registration_info(resource, live, events, ended, version, now,
                                     routing=routing)
    return ReginfoDocument(version, "full", (registration,))


def partial_document(resource: str, changed: Sequence[Binding], events: Mapping[str, str],
                     ended: Sequence[Ended], remaining: int, version: int,
                     now: float) -> ReginfoDocument:
    """The partial-state document of one change of `resource` (RFC 3680 5.3): only the
    contacts the change touched, `changed` (live, with their event) and `ended` (reported
    once, terminated), checked and written as in `publication_document`. `remaining`: how
    many live bindings the AoR keeps after the change, which gives the registration's
    state (active with any, terminated without)."""
    if not isinstance(remaining, int) or isinstance(remaining, bool) or remaining < 0:
        raise ValueError(f"remaining {remaining!r} is not a count of bindings")
    registration = registration_info(resource, changed, events, ended, version, now)
    if remaining and registration.state != "active":
        registration = replace(registration, state="active")
    elif not remaining and registration.state == "active":
        raise ValueError("bindings were changed to live ones, yet none remains")
    elif not remaining:
        registration = replace(registration, state="terminated")
    return ReginfoDocument(version, "partial", (registration,))


def registration_info(resource: str, live: Sequence[Binding], events: Mapping[str, str],
                      ended: Sequence[Ended], version: int, now: float, *,
                      routing: bool = False) -> RegistrationInfo:
    """The `<registration>` of `resource` listing `live` then `ended` (see
    publication_document)."""
    _check_version(version)
    _finite(now, "now")
    _uri(resource, "resource")
    live_keys: set[str] = set()
    active: list[ContactInfo] = []
    for binding in sorted(live, key=_order):
        if binding.key in live_keys:
            raise ValueError(f"two live bindings share the key {binding.key!r}")
        live_keys.add(binding.key)
        event = _live_event(events.get(binding.key), binding)
        active.append(_contact(resource, binding, "active", event, _seconds_left(binding, now),
                               None, now, routing))
    endings: dict[str, Ended] = {}
    for event, binding, retry_after in ended:
        retry_after = _ended_retry_after(event, retry_after, binding)
        if binding.key not in live_keys:
            endings[binding.key] = (event, binding, retry_after)
    terminated = [_contact(resource, binding, "terminated", event, 0, retry_after, now, routing)
                  for event, binding, retry_after in
                  sorted(endings.values(), key=lambda item: _order(item[1]))]
    state = "active" if active else "terminated" if terminated else "init"
    return RegistrationInfo(resource, registration_id(resource), state,
                            tuple(active + terminated))


def _contact(resource: str, binding: Binding, state: str, event: str, expires: int,
             retry_after: int | None, now: float, routing: bool) -> ContactInfo:
    _check_binding(binding)
    contact = ContactInfo(
        uri=binding.contact,
        id=contact_id(resource, binding.key),
        state=state,
        event=event,
        expires=expires,
        q=None if binding.q is None else round(binding.q, 3),
        callid=binding.callid,
        cseq=binding.cseq,
        duration_registered=_seconds(
            max(0, math.floor(round(now - binding.registered_at, 6))), binding, "registered"),
        retry_after=retry_after,
        display_name=binding.display_name,
        unknown_params=_unknown_params(binding),
        pub_gruu=binding.pub_gruu,
        temp_gruu=(None if binding.temp_gruu is None
                   else TempGruu(binding.temp_gruu, binding.temp_gruu_first_cseq)),
    )
    if not routing:
        return contact
    return replace(contact, received=binding.received or "", path=",".join(binding.path),
                   user_agent=binding.user_agent or "")


def _unknown_params(binding: Binding) -> tuple[tuple[str, str], ...]:
    """+sip.instance and reg-id (RFC 5626 4.1, 4.2), then the other Contact parameters."""
    lifted: list[tuple[str, str]] = []
    if binding.instance:
        lifted.append(("+sip.instance", binding.instance))
    if binding.reg_id is not None:
        lifted.append(("reg-id", str(binding.reg_id)))
    names = {name for name, _ in lifted}
    rest = [(name, value or "") for name, value in binding.params if name.lower() not in names]
    return tuple(lifted + rest)


def _order(binding: Binding) -> tuple[float, str, str]:
    return preference(binding.q, binding.contact, binding.key)


def _seconds_left(binding: Binding, now: float) -> int:
    _finite(binding.expires, f"binding {binding.contact!r} expires")
    left = max(1, math.ceil(round(binding.expires - now, 6)))
    return _seconds(left, binding, "left")


# Validation ---------------------------------------------------------------------------------

def _live_event(event: str | None, binding: Binding) -> str:
    if event is None:
        raise ValueError(f"no event for the live binding {binding.contact!r} ({binding.key!r})")
    if event not in LIVE_EVENTS:
        _known(event)
        raise ValueError(f"the live binding {binding.contact!r} cannot be {event!r}: "
                         f"that event terminates a contact")
    return event


def _ended_retry_after(event: str, retry_after: int | None, binding: Binding) -> int | None:
    if event not in ENDED_EVENTS:
        _known(event)
        raise ValueError(f"the ended binding {binding.contact!r} cannot be {event!r}: "
                         f"that event leaves a contact active")
    if event != "probation":
        return None  # RFC 3680 5.3 gives retry-after a meaning only with probation
    if not _is_integer(retry_after, MAX_SECONDS):
        raise ValueError(f"probation of {binding.contact!r} needs a retry-after from 0 to "
                         f"{MAX_SECONDS} s, not {retry_after!r}")
    return retry_after


def _known(event: str) -> None:
    if event not in CONTACT_EVENTS:
        raise ValueError(f"unknown contact event {event!r} (one of {', '.join(CONTACT_EVENTS)})")


def _check_version(version: int) -> None:
    if not _is_integer(version, MAX_VERSION):
        raise ValueError(f"version {version!r} is not an integer from 0 to {MAX_VERSION}")


def _check_binding(binding: Binding) -> None:
    what = f"binding {binding.contact!r}"
    _uri(binding.contact, what + " contact")
    _finite(binding.registered_at, what + " registered_at")
    q = binding.q
    if q is not None and not (_is_number(q) and math.isfinite(q) and 0 <= q <= 1):
        raise ValueError(f"{what}: q {q!r} is not between 0 and 1")
    if not _is_integer(binding.cseq, MAX_CSEQ):
        raise ValueError(f"{what}: cseq {binding.cseq!r} is not from 0 to {MAX_CSEQ}")
    for text, name in ((binding.callid, "callid"), (binding.display_name, "display name"),
                       (binding.instance, "+sip.instance")):
        if text is not None:
            _xml_text(text, f"{what} {name}")
    for name, value in binding.params:
        _xml_text(name, f"{what} parameter name")
        _xml_text(value or "", f"{what} parameter {name!r}")
    if binding.pub_gruu is not None:
        _uri(binding.pub_gruu, what + " pub-gruu")
    if binding.temp_gruu is not None:
        _uri(binding.temp_gruu, what + " temp-gruu")
        first = binding.temp_gruu_first_cseq
        if not _is_integer(first, MAX_CSEQ):
            raise ValueError(f"{what}: temp-gruu first-cseq {first!r} is not from 0 to {MAX_CSEQ}")


def _seconds(value: int, binding: Binding, what: str) -> int:
    if not 0 <= value <= MAX_SECONDS:
        raise ValueError(f"binding {binding.contact!r}: {what} {value} s is not from 0 to "
                         f"{MAX_SECONDS}")
    return value


def _is_integer(value: object, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= high


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _finite(value: float, what: str) -> None:
    if not _is_number(value) or not math.isfinite(value):
        raise ValueError(f"{what} {value!r} is not a finite number of seconds")


def _uri(value: str, what: str) -> None:
    if not isinstance(value, str) or not value or value.strip(_XML_SPACE) != value:
        raise ValueError(f"{what} {value!r} is not a URI (empty, or spaces around it)")
    _xml_text(value, what)


def _xml_text(value: str, what: str) -> None:
    if not isinstance(value, str) or (bad := _NOT_XML_CHAR.search(value)):
        shown = "not text" if not isinstance(value, str) else f"character {bad.group()!r}"
        raise ValueError(f"{what} {value!r}: {shown} cannot stand in an XML document")
