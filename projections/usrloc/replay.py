"""Point-in-time location rows, replayed from one AoR's events (audit `--at`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from typing import Any

from domain import ContactEvent
from domain.binding import preference
from domain.binding_refresh import BindingRefresh, MissingBinding
from projections.usrloc.row import LocationRow


def rows_at(events: Iterable[Any], when: datetime) -> list[LocationRow]:
    """The AoR's bindings as they stood at `when`: recorded, and not lapsed by then."""
    rows: dict[str, LocationRow] = {}
    for event in events:
        if event.timestamp > when:
            break
        if isinstance(event, ContactEvent):
            key = event.binding.key
            if event.TERMINATES:
                rows.pop(key, None)
            elif isinstance(event.binding, BindingRefresh):
                if key not in rows:
                    raise MissingBinding(f"a refresh of binding {key} that this history "
                                         "does not hold")
                rows[key] = replace(rows[key], **LocationRow.refresh_of(event))
            else:
                rows[key] = LocationRow.from_event(event)
    moment = when.timestamp()
    live = [row for row in rows.values() if row.expires > moment]
    return sorted(live, key=lambda r: preference(r.q, r.contact))
