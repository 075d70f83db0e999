"""How the ledger's events are stored: a compact JSON format, versioned, beside the old one.

Format 1 is eventsourcing's JSONTranscoder: every field by its full name, every binding
field written even when empty, values of our types wrapped in {"_type_", "_data_"}, the
timestamp as ISO text. A REGISTER refresh cost about 815 bytes of state that way.

Format 2 (`{"f":2,...}`, what `EventFormat` writes) keeps the same events and loses
nothing, but stores them the short way:
- the timestamp as integer microseconds since the epoch (a datetime holds no more);
- each field under a short name (`FIELDS`, `BINDING_FIELDS`, the origin as one letter),
  a binding without the fields left at their defaults;
- an expiry or registration time that is a whole number of seconds after the event's
  time as those seconds ("E":600 for "e":1900000600.25);
- a REGISTER's cause ("REGISTER call-id=X cseq=N") not at all when the binding or the
  refresh already names that Call-ID and CSeq;
- a refresh of a local binding as a BindingRefresh: key, Call-ID, CSeq and what changed;
- an AoR's snapshot (and a prune's horizon snapshot) as its registration state and its
  bindings stored as events store them (format 1 wrote ~1.2 KB for one binding, and SQLite moved most of it to an
  overflow page of its own).

Format 1 is still read, by the mapper it was written with: a store written before keeps
working, and an event this module cannot write (a field it does not know, an integer
beyond 64 bits) is written in format 1 rather than refused. Which format a state is in is
told by its first bytes. A configured compressor or cipher applies to both.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime, timedelta, timezone
from math import isfinite
from typing import Any

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import (
    Mapper, MapperDeserialisationError, StoredEvent, find_id_convertor,
)
from eventsourcing.utils import get_topic, resolve_topic
from orjson import JSONDecodeError, JSONEncodeError, dumps, loads

from domain import Binding, DomainError, binding_key
from domain.binding_refresh import BindingRefresh
from domain.events import (
    CONTACT_EVENTS, AddressOfRecordHorizon, AddressOfRecordSnapshot, RegistrationActivated, RegistrationInitialized,
    RegistrationTerminated,
)

FORMAT = 2
PREFIX = b'{"f":2,'
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
MICROSECOND = timedelta(microseconds=1)

# event field -> stored name (timestamp, binding and refresh have their own encoding)
FIELDS = {"aor": "a", "node": "n", "cause": "c", "key": "k", "originator_topic": "ot",
          "retry_after": "ra"}
ORIGINS = {"register": "r", "notify": "n", "expiry": "e", "admin": "a",
           "import": "i"}  # stored as "o"
BINDING_FIELDS = {
    "contact": "c", "expires": "e", "callid": "i", "cseq": "s", "registered_at": "r",
    "q": "q", "received": "v", "path": "p", "user_agent": "u", "instance": "n",
    "reg_id": "g", "methods": "m", "flags": "f", "cflags": "cf", "socket": "so",
    "display_name": "dn", "params": "pa", "pub_gruu": "pg", "temp_gruu": "tg",
    "temp_gruu_first_cseq": "tc", "subscription": "sb", "key": "k",
}
RELATIVE = {"e": "E", "r": "R"}  # expires, registered_at: seconds after the event's time
_RELATIVE_NAMES = {"E": "expires", "R": "registered_at"}
_REQUIRED = ("contact", "expires", "callid", "cseq", "registered_at")
_DEFAULTS = {f.name: f.default for f in fields(Binding) if f.name not in (*_REQUIRED, "key")}
_FLOATS = ("expires", "registered_at", "q")  # JSON has no NaN or infinity: format 1 keeps them
_TUPLES = ("path", "methods")
_FIELD_NAMES = {short: name for name, short in FIELDS.items()}
_BINDING_NAMES = {short: name for name, short in BINDING_FIELDS.items()}
_ORIGIN_NAMES = {short: name for name, short in ORIGINS.items()}
_IDENTITY = ("k", "i", "s")  # a refresh's key, Call-ID and CSeq


# AoR, origin, time, binding key, and the refresh or the binding as stored
ContactFields = tuple[str, str, float, str, "dict[str, Any] | tuple[str, int, Any]"]


class Unwritable(Exception):
    """An event format 2 does not describe: it is written in format 1."""


def encode_snapshot(snapshot: AddressOfRecordSnapshot) -> dict[str, Any]:
    """An AoR's snapshot: its registration state and each binding as events store one
    (the aggregate's id, version and pending events are the snapshot's own, or none)."""
    values = dict(vars(snapshot))
    micros = _micros(values.pop("timestamp"))
    state = dict(values.pop("state"))
    if (state.pop("_id", snapshot.originator_id) != snapshot.originator_id
            or state.pop("_version", snapshot.originator_version)
            != snapshot.originator_version or state.pop("_pending_events", []) != []):
        raise Unwritable("aggregate")
    stored = {"f": FORMAT, "t": micros, "ot": values.pop("topic"),
              "co": _micros(state.pop("_created_on")), "mo": _micros(state.pop("_modified_on")),
              "a": state.pop("aor"), "k": state.pop("key"), "st": state.pop("state")}
    bindings = state.pop("bindings")
    if "changes" in values:  # a prune's horizon: each binding's last change
        stored["ch"] = values.pop("changes")
    if values.keys() != {"originator_id", "originator_version"} or state:
        raise Unwritable("snapshot")
    if any(key != binding.key for key, binding in bindings.items()):
        raise Unwritable("bindings")
    base = micros / 1_000_000
    stored["bs"] = [encode_binding(binding, base) for binding in bindings.values()]
    return stored


def register_cause(callid: str, cseq: int) -> str:
    return f"REGISTER call-id={callid} cseq={cseq}"


class EventFormat(Mapper):
    """The application's mapper: writes format 2, reads 2 and 1 (see the module text)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._topics: dict[type, str] = {}

    def to_stored_event(self, domain_event: DomainEventProtocol[Any]) -> StoredEvent:
        encode = _ENCODERS.get(type(domain_event))
        if encode is None:
            return super().to_stored_event(domain_event)
        try:
            state = dumps(encode(domain_event))
        except (Unwritable, JSONEncodeError, TypeError):
            return super().to_stored_event(domain_event)
        if self.compressor:
            state = self.compressor.compress(state)
        if self.cipher:
            state = self.cipher.encrypt(state)
        cls = type(domain_event)
        topic = self._topics.get(cls) or self._topics.setdefault(cls, get_topic(cls))
        return StoredEvent(originator_id=domain_event.originator_id,
                           originator_version=domain_event.originator_version,
                           topic=topic, state=state)

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[Any]:
        state = self.plain(stored_event.state)
        if not state.startswith(PREFIX):
            return super().to_domain_event(stored_event)
        cls = resolve_topic(stored_event.topic)
        try:
            stored = loads(state)
            values = decode_snapshot(stored, stored_event.originator_version) \
                if cls in _SNAPSHOTS else decode_event(stored)
        except Exception as error:
            raise MapperDeserialisationError(
                f"cannot read the format 2 state of stored event {stored_event.topic} "
                f"{stored_event.originator_id} v{stored_event.originator_version}: "
                f"{error!r}") from error
        originator_id = stored_event.originator_id
        values["originator_id"] = find_id_convertor(cls, type(originator_id))(originator_id)
        values["originator_version"] = stored_event.originator_version
        if cls in _SNAPSHOTS:
            values["state"]["_id"] = values["originator_id"]
        event = object.__new__(cls)
        object.__setattr__(event, "__dict__", values)
        return event

    def plain(self, state: bytes) -> bytes:
        """A stored state decrypted and decompressed as configured."""
        if self.cipher:
            state = self.cipher.decrypt(state)
        if self.compressor:
            state = self.compressor.decompress(state)
        return state

    def contact_fields(self, state: bytes) -> ContactFields | None:
        """What a stored contact event tells of its binding, read without making the
        event (a rebuild reads the whole log): its AoR, origin, time (Unix seconds),
        binding key, and the refresh (Call-ID, CSeq, changes as BindingRefresh has them)
        or the binding as stored (for `binding_fields`, read only if no later event
        supersedes it). None if the state is in format 1 or
        not as format 2 writes it: the mapper then reads it, or says what is wrong."""
        if self.cipher or self.compressor:
            state = self.plain(state)
        if not state.startswith(PREFIX):
            return None
        try:
            stored = loads(state)
            when = stored["t"] / 1_000_000  # datetime.timestamp() of the decoded time
            origin = _ORIGIN_NAMES[stored["o"]]
            if "r" in stored:
                refresh = stored["r"]
                return (stored["a"], origin, when, refresh["k"],
                        (refresh["i"], refresh["s"], refresh_changes(refresh, when)))
            binding = stored["b"]
            key = binding.get("k") or binding_key(binding["c"], binding.get("n"),
                                                  binding.get("g"))
            return stored["a"], origin, when, key, binding
        except (JSONDecodeError, KeyError, TypeError, ValueError, AttributeError,
                DomainError):
            return None

    @staticmethod
    def binding_fields(stored: dict[str, Any], when: float) -> dict[str, Any] | None:
        """A binding as `contact_fields` gives it: its fields by name (None if it is not
        as format 2 writes it)."""
        try:
            values = binding_values(stored, when)
        except (KeyError, TypeError, ValueError, AttributeError):
            return None
        if "key" not in values:
            values["key"] = binding_key(values["contact"], values["instance"], values["reg_id"])
        return values


# Encoding --------------------------------------------------------------------------------

def encode_event(event: Any) -> dict[str, Any]:
    values = dict(vars(event))
    del values["originator_id"], values["originator_version"]
    micros = _micros(values.pop("timestamp"))
    stored: dict[str, Any] = {"f": FORMAT, "t": micros}
    binding = values.pop("binding", None)
    origin = values.pop("origin")
    if origin not in ORIGINS:
        raise Unwritable(origin)
    stored["o"] = ORIGINS[origin]
    for name, value in values.items():
        short = FIELDS.get(name)
        if short is None:
            raise Unwritable(name)
        stored[short] = value
    if binding is None:
        return stored
    if isinstance(binding, BindingRefresh):
        stored["r"] = encode_refresh(binding, micros / 1_000_000)
    elif isinstance(binding, Binding):
        stored["b"] = encode_binding(binding, micros / 1_000_000)
    else:
        raise Unwritable("binding")
    if origin == "register" and values.get("cause") == register_cause(binding.callid,
                                                                      binding.cseq):
        del stored["c"]
    return stored


def encode_binding(binding: Binding, base: float) -> dict[str, Any]:
    """A binding as stored, its times relative to `base` (the event's time) when whole."""
    values = vars(binding)
    stored = {"c": values["contact"]}
    _put_time(stored, "e", values["expires"], base)
    stored["i"], stored["s"] = values["callid"], values["cseq"]
    _put_time(stored, "r", values["registered_at"], base)
    for name, default in _DEFAULTS.items():
        value = values[name]
        if value != default:
            stored[BINDING_FIELDS[name]] = value
    for name in _FLOATS:
        if not isfinite(values[name] or 0.0):
            raise Unwritable(name)
    stored["k"] = binding.key  # the identity it was given: never computed again
    return stored


def encode_refresh(refresh: BindingRefresh, base: float) -> dict[str, Any]:
    stored = {"k": refresh.key, "i": refresh.callid, "s": refresh.cseq}
    for name, value in refresh.changes:
        if name in _FLOATS and not isfinite(value or 0.0):
            raise Unwritable(name)
        short = BINDING_FIELDS[name]
        if short in RELATIVE:
            _put_time(stored, short, value, base)
        else:
            stored[short] = value
    return stored


def _put_time(stored: dict[str, Any], short: str, value: Any, base: float) -> None:
    """Store a time of `RELATIVE` that is a whole number of seconds after the event's
    time exactly (the gateway's clock counts whole microseconds, as the timestamp does:
    an expiry is `now` plus the granted seconds) as those seconds, under its relative
    name; any other value as it is."""
    if value is not None:
        seconds = value - base
        if seconds.is_integer() and base + int(seconds) == value:
            stored[RELATIVE[short]] = int(seconds)
            return
    stored[short] = value


def _micros(timestamp: datetime) -> int:
    if timestamp.tzinfo is None or timestamp.utcoffset():
        raise Unwritable("timestamp")  # only UTC times come back as they went
    return (timestamp - EPOCH) // MICROSECOND


_ENCODERS = {cls: encode_event for cls in (
    RegistrationInitialized, RegistrationActivated, RegistrationTerminated,
    *CONTACT_EVENTS.values())}
_SNAPSHOTS = (AddressOfRecordSnapshot, AddressOfRecordHorizon)
_ENCODERS.update((cls, encode_snapshot) for cls in _SNAPSHOTS)


# Decoding --------------------------------------------------------------------------------

def decode_snapshot(stored: dict[str, Any], version: int) -> dict[str, Any]:
    """A snapshot's field values from its format 2 state (the aggregate id is set by
    the caller, as the stored id converts)."""
    base = stored["t"] / 1_000_000
    bindings = [decode_binding(binding, base) for binding in stored["bs"]]
    state = {"_version": version, "_created_on": EPOCH + MICROSECOND * stored["co"],
             "_modified_on": EPOCH + MICROSECOND * stored["mo"], "_pending_events": [],
             "aor": stored["a"], "key": stored["k"], "state": stored["st"],
             "bindings": {binding.key: binding for binding in bindings}}
    values = {"timestamp": EPOCH + MICROSECOND * stored["t"], "topic": stored["ot"],
              "state": state}
    if "ch" in stored:
        values["changes"] = stored["ch"]
    return values


def decode_event(stored: dict[str, Any]) -> dict[str, Any]:
    """An event's field values from its format 2 state."""
    base = stored["t"] / 1_000_000
    values: dict[str, Any] = {"timestamp": EPOCH + MICROSECOND * stored["t"],
                              "origin": _ORIGIN_NAMES[stored["o"]]}
    for short, value in stored.items():
        name = _FIELD_NAMES.get(short)
        if name is not None:
            values[name] = value
    if "b" in stored:
        values["binding"] = binding = decode_binding(stored["b"], base)
    elif "r" in stored:
        values["binding"] = binding = decode_refresh(stored["r"], base)
    else:
        return values
    if "cause" not in values:
        values["cause"] = register_cause(binding.callid, binding.cseq)
    return values


def binding_values(stored: dict[str, Any], base: float) -> dict[str, Any]:
    """A format 2 binding's fields by name, defaults filled in, tuples as tuples; `base`
    is the event's time in seconds."""
    values = dict(_DEFAULTS)
    for short, value in stored.items():
        name = _RELATIVE_NAMES.get(short)
        if name is None:
            values[_BINDING_NAMES[short]] = value
        else:
            values[name] = base + value
    for name in _TUPLES:
        values[name] = tuple(values[name])
    values["params"] = tuple((k, v) for k, v in values["params"])
    return values


def decode_binding(stored: dict[str, Any], base: float) -> Binding:
    return Binding(**binding_values(stored, base))


def refresh_changes(stored: dict[str, Any], base: float) -> tuple[tuple[str, Any], ...]:
    """A format 2 refresh's changed fields by name, tuples as tuples, in field order (the
    order they are stored in)."""
    changes = []
    for short, value in stored.items():
        if short in _IDENTITY:
            continue
        name = _RELATIVE_NAMES.get(short)
        if name is not None:
            value = base + value
        else:
            name = _BINDING_NAMES[short]
            if name in _TUPLES:
                value = tuple(value)
            elif name == "params":
                value = tuple((k, v) for k, v in value)
        changes.append((name, value))
    return tuple(changes)


def decode_refresh(stored: dict[str, Any], base: float) -> BindingRefresh:
    return BindingRefresh(stored["k"], stored["i"], stored["s"], refresh_changes(stored, base))

