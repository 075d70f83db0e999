"""Pure domain model of the reg event package (RFC 3680): no IO, no clock, no XML."""

from domain.address_of_record import AddressOfRecord, at
from domain.aor import AorIdentity, AorPolicy, aggregate_id, normalize_aor
from domain.binding import Binding, ContactUpdate, RegisterRequest, binding_key
from domain.contact_machine import CONTACT_MACHINE
from domain.errors import (
    DomainError,
    IllegalTransition,
    InvalidRequest,
    InvalidUri,
    OutOfOrderRequest,
    PuaReginfoError,
    TooManyBindings,
    UnknownAddressOfRecord,
    UnknownContact,
)
from domain.events import (
    CONTACT_EVENTS,
    ORIGINS,
    AddressOfRecordHorizon,
    AddressOfRecordSnapshot,
    ContactEvent,
    RegistrationActivated,
    RegistrationEvent,
    RegistrationInitialized,
    RegistrationTerminated,
)
from domain.registration_machine import REGISTRATION_MACHINE
from domain.uri import SipUri, TelUri, parse_uri

__all__ = [
    "CONTACT_EVENTS",
    "CONTACT_MACHINE",
    "ORIGINS",
    "REGISTRATION_MACHINE",
    "AddressOfRecord",
    "AddressOfRecordHorizon",
    "AddressOfRecordSnapshot",
    "AorIdentity",
    "AorPolicy",
    "Binding",
    "ContactEvent",
    "ContactUpdate",
    "DomainError",
    "IllegalTransition",
    "InvalidRequest",
    "InvalidUri",
    "OutOfOrderRequest",
    "PuaReginfoError",
    "RegisterRequest",
    "RegistrationActivated",
    "RegistrationEvent",
    "RegistrationInitialized",
    "RegistrationTerminated",
    "SipUri",
    "TelUri",
    "TooManyBindings",
    "UnknownAddressOfRecord",
    "UnknownContact",
    "aggregate_id",
    "at",
    "binding_key",
    "normalize_aor",
    "parse_uri",
]
