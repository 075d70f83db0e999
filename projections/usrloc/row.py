"""One row of the location view, modelled on the usrloc `location` table."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from functools import lru_cache
from operator import attrgetter
from datetime import datetime, timezone
from typing import Any
from uuid import NAMESPACE_URL, uuid5

from domain import ContactEvent, SipUri, parse_uri


@dataclass(frozen=True)
class LocationRow:
    aor_id: str
    binding_key: str
    aor: str
    username: str
    domain: str | None
    contact: str
    received: str | None
    path: str  # JSON list of Path URIs, outermost first
    expires: float
    q: float | None
    callid: str
    cseq: int
    last_modified: float
    flags: int
    cflags: int
    user_agent: str | None
    socket: str | None
    methods: str | None
    instance: str | None
    reg_id: int | None
    ruid: str
    state: str
    event: str
    origin: str

    @classmethod
    def from_event(cls, event: ContactEvent) -> LocationRow:
        return cls.of_values(location_values(str(event.originator_id), event.aor,
                                             vars(event.binding), event.timestamp.timestamp(),
                                             type(event), event.origin))

    @classmethod
    def of_values(cls, values: Iterable[Any]) -> LocationRow:
        """The row of `values` in column order (the dataclass __init__ of 24 frozen
        fields, at 40 % of its cost: the usrloc projection makes one per contact event)."""
        row = object.__new__(cls)
        row.__dict__.update(zip(COLUMNS, values))
        return row

    @classmethod
    def refresh_of(cls, event: ContactEvent) -> dict[str, Any]:
        """The columns a refresh event (its binding a BindingRefresh) sets in the row."""
        refresh = event.binding
        return refreshed_columns(refresh.changes, refresh.callid, refresh.cseq,
                                 event.timestamp.timestamp(), type(event), event.origin)

    @classmethod
    def from_mapping(cls, row: Any) -> LocationRow:
        return cls(**{f.name: row[f.name] for f in fields(cls)})

    def as_tuple(self) -> tuple[Any, ...]:
        return _VALUES(self)

    def to_json(self) -> dict[str, Any]:
        """The `query --json` shape (DESIGN section 5)."""
        return {
            "aor": self.aor,
            "contact": self.contact,
            "expires": int(round(self.expires)),
            "q": self.q,
            "callid": self.callid,
            "cseq": self.cseq,
            "received": self.received,
            "path": json.loads(self.path),
            "user_agent": self.user_agent,
            "instance": self.instance,
            "reg_id": self.reg_id,
            "state": self.state,
            "event": self.event,
            "origin": self.origin,
            "last_modified": datetime.fromtimestamp(self.last_modified, timezone.utc)
            .isoformat()
            .replace("+00:00", "Z"),
        }


def location_values(aor_id: str, aor: str, binding: Mapping[str, Any], last_modified: float,
                    event: type[ContactEvent], origin: str) -> tuple[Any, ...]:
    """A row's values in column order, from a contact event's fields; `binding` holds the
    Binding's fields by name (a Binding's own, or as stored: lists for tuples)."""
    username, domain = _user_and_domain(aor)
    key, path, methods = binding["key"], binding["path"], binding["methods"]
    return (aor_id, key, aor, username, domain, binding["contact"], binding["received"],
            _path_json(tuple(path)) if path else "[]", binding["expires"], binding["q"],
            binding["callid"], binding["cseq"], last_modified, binding["flags"],
            binding["cflags"], binding["user_agent"], binding["socket"],
            ",".join(methods) or None, binding["instance"], binding["reg_id"],
            _ruid(aor_id, key), "terminated" if event.TERMINATES else "active", event.EVENT,
            origin)


_SAME_NAME = frozenset(("contact", "received", "expires", "q", "flags", "cflags", "user_agent",
                        "socket", "instance", "reg_id"))  # binding fields kept as row columns


def refreshed_columns(changes: Iterable[tuple[str, Any]], callid: str, cseq: int,
                      last_modified: float, event: type[ContactEvent],
                      origin: str) -> dict[str, Any]:
    """The columns a refresh (BindingRefresh) sets in its binding's row, by name: what
    `location_values` gives for the refreshed binding where it differs from the row."""
    columns = {"callid": callid, "cseq": cseq, "last_modified": last_modified,
               "state": "active", "event": event.EVENT, "origin": origin}
    for name, value in changes:
        if name in _SAME_NAME:
            columns[name] = value
        elif name == "path":
            columns["path"] = _path_json(tuple(value)) if value else "[]"
        elif name == "methods":
            columns["methods"] = ",".join(value) or None
    return columns


@lru_cache(maxsize=4096)
def _path_json(path: tuple[str, ...]) -> str:
    return json.dumps(list(path))


@lru_cache(maxsize=65536)
def _user_and_domain(aor: str) -> tuple[str, str | None]:
    uri = parse_uri(aor)
    if isinstance(uri, SipUri):
        return uri.user or "", uri.host
    return uri.digits, None


@lru_cache(maxsize=65536)
def _ruid(aor_id: str, binding_key: str) -> str:
    """The usrloc record id of a binding: stable for its AoR and key (like Kamailio's)."""
    return uuid5(NAMESPACE_URL, f"{aor_id}/{binding_key}").hex


COLUMNS = tuple(f.name for f in fields(LocationRow))
_VALUES = attrgetter(*COLUMNS)  # the row in column order (every field is a plain value)
