"""Location rows read straight from stored notifications, for a rebuild.

A rebuild reads the whole log. Turning every notification back into a domain event (topic
resolved, state decoded, a Binding, a datetime and a UUID constructed) only to take a row's
fields out of it costs most of a rebuild. Here a contact event's stored state is read as
plain values, and the events of a fold that a later event of the same binding supersedes
go no further. The row of each binding's last whole event is made by `location_values`
from the same fields, by the same names, that LocationRow.from_event takes from the event;
the refreshes after it (format 2 stores a local refresh as what changed) are merged into
that row, or, when the fold holds no whole event of the binding, set the columns they
change in the row an earlier fold wrote. Other events are told apart by their topic and
not decoded at all.

Two stored forms are read this way (infrastructure/event_format.py). Format 2, through the
mapper's own `contact_fields`/`binding_fields`. Format 1 (eventsourcing's JSONTranscoder,
which wrote every event before format 2) is decoded here with orjson. Neither is assumed:
when a reader is made, one event of every contact event class (and a refresh) is stored in
each format and read both ways, here and through the mapper; a form whose rows differ (a
cipher, another binding shape) is read through the mapper and LocationRow.from_event, as
catch_up does. So is a class that needs upcasting, and any single notification not of the
expected shape: a format 1 binding stored without its key (a Binding computes one) or
with a field the Binding has not (the mapper refuses it), a timestamp in another
transcoding, JSON orjson refuses, a number of the row beyond 2**63 (perhaps an integer
beyond 64 bits, which orjson reads as a float and json as an integer). orjson, not json:
decoding is most of what is left of a rebuild's work.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import fields
from datetime import datetime, timezone
from typing import Any
from uuid import UUID

from eventsourcing.persistence import JSONTranscoder, Mapper, Notification
from eventsourcing.utils import resolve_topic
from orjson import loads

from domain import Binding, ContactEvent
from domain.binding_refresh import BindingRefresh, MissingBinding
from domain.events import CONTACT_EVENTS
from projections.stored_log import StoredRow
from projections.usrloc.row import COLUMNS, LocationRow, location_values, refreshed_columns

Key = tuple[str, str]  # (AoR id, binding key): a row of the view


class _Full:
    """A contact event stored in format 2 with its whole binding, read at `split`."""

    __slots__ = ("cls", "aor", "origin", "when", "binding", "row")

    def __init__(self, cls: type[ContactEvent], aor: str, origin: str, when: float,
                 binding: dict[str, Any], row: StoredRow):
        self.cls, self.aor, self.origin, self.when, self.binding, self.row = \
            cls, aor, origin, when, binding, row


class _Refreshed:
    """A binding's last whole event in the fold and the columns the refreshes after it
    set, merged into its row at `split`."""

    __slots__ = ("last", "columns")

    def __init__(self, last: StoredRow | _Full, columns: dict[str, Any]):
        self.last, self.columns = last, columns


# per binding: its last whole event (a stored row or a format 2 one, read at `split`),
# that with the refreshes after it, or only the columns refreshes set (a dict)
Changes = dict[Key, "StoredRow | _Full | _Refreshed | dict[str, Any]"]
_COLUMN = {name: index for index, name in enumerate(COLUMNS)}

_SKIP = "skip"  # not a contact event: no row
_MAPPER = "mapper"  # read through the mapper
_KEPT = 100_000  # decoded timestamps and AoR ids kept (many events share one)
_FIELDS = frozenset(field.name for field in fields(Binding))
_NUMBERS = ("expires", "q", "cseq", "flags", "cflags", "reg_id")  # a binding's, in a row
_LARGE = 2.0**63  # orjson reads an integer beyond 64 bits as a float at least this large


class StoredRows:
    """Folds stored notifications into the rows they leave in the usrloc view."""

    def __init__(self, mapper: Mapper):
        self.mapper = mapper
        self._kinds: dict[str, Any] = {}
        self._stamps: dict[str, float] = {}
        self._aor_ids: dict[str, str] = {}
        self.direct = False
        self.compact = getattr(mapper, "contact_fields", None)
        if self.compact is not None and not self._compact_agrees():
            self.compact = None
        transcoder = mapper.transcoder
        if isinstance(transcoder, JSONTranscoder) and Binding in transcoder.types:
            self._binding = transcoder.types[Binding].name
            self._datetime = transcoder.types[datetime]
            self.direct = self._agrees()
        else:
            self.direct = False

    def fold(self, stored: Iterable[StoredRow], changes: Changes) -> None:
        """Record in `changes` the last event of each binding in `stored` (with the
        refreshes after it merged in); what it leaves in the view is read only by
        `split`, of the events that stay last."""
        kinds, compact, aor_ids, refresh = self._kinds, self.compact, self._aor_ids, self._refresh
        for row in stored:
            kind = kinds.get(row[3]) or self._kind(row[3])
            if kind is _SKIP:
                continue
            read = None if compact is None or kind is _MAPPER else compact(row[4])
            if read is not None:
                aor, origin, when, binding_key, binding = read
                key = (aor_ids.get(row[1]) or self._aor_id(row[1]), binding_key)
                if type(binding) is tuple:  # a refresh: Call-ID, CSeq, changes
                    refresh(changes, key, refreshed_columns(
                        binding[2], binding[0], binding[1], when, kind, origin))
                else:
                    changes[key] = _Full(kind, aor, origin, when, binding, row)
                continue
            key = None if kind is _MAPPER or not self.direct else self._key(row)
            if key is None:
                event = self._event(row)
                if event is None:
                    continue
                key = (str(event.originator_id), event.binding.key)
                if isinstance(event.binding, BindingRefresh):
                    self._refresh(changes, key, LocationRow.refresh_of(event))
                    continue
            changes[key] = row

    def split(self, changes: Changes) -> tuple[list[tuple[Any, ...]], list[Key],
                                               list[tuple[str, str, dict[str, Any]]]]:
        """The rows to write (values in column order), the rows to delete and the
        columns to set in rows the view holds: what UsrlocProjection.changes gives for
        the folded events."""
        upserts, deletes, refreshes = [], [], []
        for key, entry in changes.items():
            if isinstance(entry, dict):
                refreshes.append((*key, entry))
                continue
            ends, values = self._resolved(key, entry)
            if ends:
                deletes.append(key)
            else:
                upserts.append(values)
        return upserts, deletes, refreshes

    @staticmethod
    def _refresh(changes: Changes, key: Key, columns: dict[str, Any]) -> None:
        """Merge a refresh's columns into what the fold holds for its binding."""
        entry = changes.get(key)
        if entry is None:
            changes[key] = columns
        elif type(entry) is dict:
            entry.update(columns)
        elif type(entry) is _Refreshed:
            entry.columns.update(columns)
        else:
            changes[key] = _Refreshed(entry, columns)

    def _resolved(self, key: Key, entry: Any) -> tuple[bool, tuple[Any, ...] | None]:
        """Whether a folded event ends its binding, else the row it leaves."""
        if isinstance(entry, _Refreshed):
            ends, values = self._resolved(key, entry.last)
            if ends:
                raise MissingBinding(f"a refresh of binding {key[1]} after its end")
            merged = list(values)
            for name, value in entry.columns.items():
                merged[_COLUMN[name]] = value
            return False, tuple(merged)
        if isinstance(entry, _Full):
            if entry.cls.TERMINATES:
                return True, None
            binding = self.mapper.binding_fields(entry.binding, entry.when)
            if binding is None:
                return self._mapped(entry.row)
            return False, location_values(key[0], entry.aor, binding, entry.when,
                                          entry.cls, entry.origin)
        return (self.direct and self._change(entry)) or self._mapped(entry)

    def _kind(self, topic: str) -> Any:
        try:
            cls = resolve_topic(topic)
        except Exception:  # the mapper raises the error the normal path would
            return _MAPPER
        if not (isinstance(cls, type) and issubclass(cls, ContactEvent)):
            kind = _SKIP
        elif (self.direct or self.compact) and getattr(cls, "class_version", 1) == 1:
            kind = cls
        else:
            kind = _MAPPER
        self._kinds[topic] = kind
        return kind

    def _key(self, row: StoredRow) -> Key | None:
        """The row a stored contact event changes; None unless `_decode` reads it."""
        decoded = self._decode(row)
        return None if decoded is None else decoded[0]

    def _change(self, row: StoredRow) -> tuple[bool, tuple[Any, ...] | None] | None:
        """Whether a stored contact event ends its binding, else its row's values as
        LocationRow.from_event makes them of the event; None unless read as the mapper
        reads it: Binding fields only (the mapper refuses others) and no number that
        orjson may read otherwise than json (an integer beyond 64 bits, as a float)."""
        cls, decoded = self._kinds.get(row[3]), self._decode(row)
        if not isinstance(cls, type) or decoded is None:
            return None
        (aor_id, _), state = decoded
        try:
            binding = state["binding"]["_data_"]
            if not binding.keys() <= _FIELDS or any(
                    type(value) is float and not -_LARGE < value < _LARGE
                    for value in map(binding.get, _NUMBERS)):
                return None
            if cls.TERMINATES:
                return True, None
            return False, location_values(aor_id, state["aor"], binding,
                                          self._timestamp(state["timestamp"]), cls,
                                          state["origin"])
        except (KeyError, TypeError, ValueError, AttributeError):
            return None

    def _decode(self, row: StoredRow) -> tuple[Key, dict[str, Any]] | None:
        """The key of the row a stored contact event changes, and its state decoded as
        plain JSON; None unless the binding is stored as the application's transcoder
        writes it, its key among its fields (without one, a Binding computes it)."""
        try:
            state = loads(row[4])
            stored = state["binding"]
            key = stored["_data_"]["key"]
            if (len(stored) != 2 or stored["_type_"] != self._binding or type(key) is not str
                    or not key):
                return None
            return (self._aor_ids.get(row[1]) or self._aor_id(row[1]), key), state
        except (KeyError, TypeError, ValueError, AttributeError):
            return None

    def _aor_id(self, text: str) -> str:
        """The AoR id as the event gives it (str of its UUID)."""
        if len(self._aor_ids) >= _KEPT:
            self._aor_ids.clear()
        found = self._aor_ids[text] = str(UUID(text))
        return found

    def _timestamp(self, stored: dict[str, Any]) -> float:
        if len(stored) != 2 or stored["_type_"] != self._datetime.name:
            raise TypeError("not a stored datetime")
        text = stored["_data_"]
        found = self._stamps.get(text)
        if found is None:
            if len(self._stamps) >= _KEPT:
                self._stamps.clear()
            found = self._stamps[text] = self._datetime.decode(text).timestamp()
        return found

    def _mapped(self, row: StoredRow) -> tuple[bool, tuple[Any, ...] | None]:
        """What `_change` gives, through the mapper and LocationRow.from_event."""
        event = self._event(row)
        return event.TERMINATES, None if event.TERMINATES else LocationRow.from_event(
            event).as_tuple()

    def _event(self, row: StoredRow) -> ContactEvent | None:
        """The contact event through the application's mapper (None: another event)."""
        event = self.mapper.to_domain_event(Notification(
            id=row[0], originator_id=row[1], originator_version=row[2], topic=row[3],
            state=row[4]))
        return event if isinstance(event, ContactEvent) else None

    def _compact_agrees(self) -> bool:
        """Whether one event of every contact event class, and a refresh, stored by the
        mapper and read by its `contact_fields`, give the rows (or the columns) the
        mapper's own events give."""
        samples = [_sample(cls, number) for number, cls in enumerate(CONTACT_EVENTS.values())]
        samples.append(_refresh_sample())
        try:
            for event in samples:
                stored = self.mapper.to_stored_event(event)
                read = self.compact(stored.state)
                if read is None:
                    return False
                aor, origin, when, binding_key, binding = read
                event = self.mapper.to_domain_event(stored)
                if type(binding) is tuple:
                    agree = refreshed_columns(binding[2], binding[0], binding[1], when,
                                              type(event), origin) \
                        == LocationRow.refresh_of(event)
                else:
                    agree = location_values(str(event.originator_id), aor,
                                            self.mapper.binding_fields(binding, when),
                                            when, type(event), origin) \
                        == LocationRow.from_event(event).as_tuple()
                if not agree or binding_key != event.binding.key:
                    return False
        except Exception:
            return False
        return True

    def _agrees(self) -> bool:
        """Whether one event of every contact event class stored in format 1 (the
        JSONTranscoder's) reads the same here as through the mapper."""
        self.direct = True
        try:
            for number, cls in enumerate(CONTACT_EVENTS.values()):
                if getattr(cls, "class_version", 1) != 1:
                    continue
                stored = Mapper.to_stored_event(self.mapper, _sample(cls, number))
                row = (0, str(stored.originator_id), stored.originator_version, stored.topic,
                       stored.state)
                self._kind(stored.topic)
                event = self._event(row)
                if (self._key(row) != (str(event.originator_id), event.binding.key)
                        or self._change(row) != self._mapped(row)):
                    return False
        except Exception:
            return False
        finally:
            self._kinds.clear()
        return True


def _refresh_sample() -> ContactEvent:
    """A refresh of a local binding changing every field a refresh may change."""
    before = _sample(CONTACT_EVENTS["registered"], 0).binding
    after = Binding(contact="sip:probe@192.0.2.9:5070", expires=1_900_000_600.75,
                    callid="probe-call-2", cseq=8, registered_at=before.registered_at, q=0.5,
                    received="udp:192.0.2.8:5070", path=("<sip:other.example.com;lr>",),
                    user_agent="probe/2", instance=before.instance, reg_id=before.reg_id,
                    methods=("INVITE",), flags=3, cflags=4, socket="udp:192.0.2.3:5060",
                    key=before.key)
    return CONTACT_EVENTS["refreshed"](
        originator_id=UUID(int=99), originator_version=3,
        timestamp=datetime(2030, 3, 16, 12, 10, 0, 654321, tzinfo=timezone.utc),
        aor="sip:probe@example.com", binding=BindingRefresh.between(before, after),
        origin="register", node="probe-node", cause="REGISTER call-id=probe-call-2 cseq=8")


def _sample(cls: type[ContactEvent], number: int) -> ContactEvent:
    """A contact event whose binding has every field set, none to its default."""
    binding = Binding(contact=f"sip:probe{number}@192.0.2.1:5062;transport=tcp",
                      expires=1_900_000_000.5, callid="probe-call", cseq=7,
                      registered_at=1_899_999_000.25, q=0.7, received="tcp:192.0.2.2:5099",
                      path=("<sip:edge.example.com;lr>", "<sip:core.example.com;lr>"),
                      user_agent="probe/1",
                      instance="<urn:uuid:00000000-0000-0000-0000-000000000001>", reg_id=2,
                      methods=("INVITE", "MESSAGE"), flags=1, cflags=2,
                      socket="tcp:192.0.2.3:5060", display_name="Probe",
                      params=(("video", None), ("x", "y")),
                      pub_gruu="sip:probe@example.com;gr=1", temp_gruu="sip:t1@example.com;gr",
                      temp_gruu_first_cseq=3, subscription="probe-subscription")
    extra = {"retry_after": 30} if "retry_after" in getattr(cls, "__annotations__", {}) else {}
    return cls(originator_id=UUID(int=number + 1), originator_version=2,
               timestamp=datetime(2030, 3, 16, 12, 0, 0, 123456, tzinfo=timezone.utc),
               aor="sip:probe@example.com", binding=binding, origin="notify", node="probe-node",
               cause="probe", **extra)
