"""One row of the location view, modelled on the usrloc `location` table."""

from __future__ import annotations

import json
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
        binding = event.binding
        aor_uri = parse_uri(event.aor)
        if isinstance(aor_uri, SipUri):
            username, domain = aor_uri.user or "", aor_uri.host
        else:
            username, domain = aor_uri.digits, None
        aor_id = str(event.originator_id)
        return cls(
            aor_id=aor_id,
            binding_key=binding.key,
            aor=event.aor,
            username=username,
            domain=domain,
            contact=binding.contact,
            received=binding.received,
            path=json.dumps(list(binding.path)),
            expires=binding.expires,
            q=binding.q,
            callid=binding.callid,
            cseq=binding.cseq,
            last_modified=event.timestamp.timestamp(),
            flags=binding.flags,
            cflags=binding.cflags,
            user_agent=binding.user_agent,
            socket=binding.socket,
            methods=",".join(binding.methods) or None,
            instance=binding.instance,
            reg_id=binding.reg_id,
            ruid=_ruid(aor_id, binding.key),
            state="terminated" if event.TERMINATES else "active",
            event=event.EVENT,
            origin=event.origin,
        )

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


@lru_cache(maxsize=65536)
def _ruid(aor_id: str, binding_key: str) -> str:
    """The usrloc record id of a binding: stable for its AoR and key (like Kamailio's)."""
    return uuid5(NAMESPACE_URL, f"{aor_id}/{binding_key}").hex


COLUMNS = tuple(f.name for f in fields(LocationRow))
_VALUES = attrgetter(*COLUMNS)  # the row in column order (every field is a plain value)
