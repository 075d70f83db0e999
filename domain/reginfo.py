"""Values of an application/reginfo+xml document (RFC 3680 section 5.4, RFC 5628 GRUUs).

Plain values: the XML codec lives in sip_gateway. Fields are optional where the lenient
(Kamailio-compatible) parser may leave them out; the strict parser guarantees what RFC 3680
requires (document version and state; registration aor, id, state; contact id, state,
event and exactly one uri).
"""

from __future__ import annotations

from dataclasses import dataclass

DOCUMENT_STATES = ("full", "partial")
REGISTRATION_STATES = ("init", "active", "terminated")
CONTACT_STATES = ("active", "terminated")
CONTACT_EVENTS = ("registered", "created", "refreshed", "shortened", "expired", "deactivated",
                  "probation", "unregistered", "rejected")

Pairs = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class TempGruu:
    """RFC 5628 temp-gruu: the latest temporary GRUU and the CSeq that started its set."""

    uri: str
    first_cseq: int


@dataclass(frozen=True)
class ContactInfo:
    """One `<contact>`: a binding as the notifier reports it."""

    uri: str
    id: str | None = None
    state: str | None = None
    event: str | None = None
    expires: int | None = None
    q: float | None = None
    callid: str | None = None
    cseq: int | None = None
    duration_registered: int | None = None
    retry_after: int | None = None
    display_name: str | None = None
    display_name_lang: str | None = None
    unknown_params: Pairs = ()  # (name, value); value "" for a parameter without value
    pub_gruu: str | None = None
    temp_gruu: TempGruu | None = None
    # Non-schema attributes some notifiers add (Kamailio: received, path, user_agent).
    received: str | None = None
    path: str | None = None
    user_agent: str | None = None
    other_attributes: Pairs = ()  # any other attribute, as (Clark-notation name, value)
    extensions: tuple[str, ...] = ()  # other-namespace child elements, serialized XML

    def param(self, name: str) -> str | None:
        lowered = name.lower()
        for key, value in self.unknown_params:
            if key.lower() == lowered:
                return value
        return None


@dataclass(frozen=True)
class RegistrationInfo:
    """One `<registration>`: an AoR, its registration state and (some of) its contacts."""

    aor: str | None
    id: str | None = None
    state: str | None = None
    contacts: tuple[ContactInfo, ...] = ()
    extensions: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReginfoDocument:
    """A whole reginfo document; `version` orders documents within one subscription."""

    version: int | None = None
    state: str | None = None
    registrations: tuple[RegistrationInfo, ...] = ()
    extensions: tuple[str, ...] = ()

    @property
    def is_full(self) -> bool:
        return self.state == "full"
