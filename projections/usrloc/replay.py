"""Point-in-time location rows, replayed from one AoR's events (audit `--at`), and the rows
of a prune's seed, where such a replay (and a rebuild) starts after a prune."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from typing import Any

from domain import CONTACT_EVENTS, ContactEvent
from domain.binding import preference
from domain.binding_refresh import BindingRefresh, MissingBinding
from projections.retained import HistoryPruned, Seed
from projections.usrloc.row import LocationRow, location_values


def rows_at(events: Iterable[Any], when: datetime, seed: Seed | None = None) -> list[LocationRow]:
    """The AoR's bindings as they stood at `when`: recorded, and not lapsed by then;
    `events` follow `seed` when a prune left one."""
    if seed is not None and when.timestamp() < seed.horizon:
        raise HistoryPruned(f"the history of {seed.aor} before the prune's horizon is gone")
    rows: dict[str, LocationRow] = {} if seed is None else {
        row.binding_key: row for row in seed_rows(seed)}
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


def seed_rows(seed: Seed) -> list[LocationRow]:
    """The rows the seed's bindings make, each as its last change made it."""
    rows = []
    for key, binding in seed.bindings.items():
        change = seed.changes[key]
        rows.append(LocationRow.of_values(location_values(
            seed.aor_id, seed.aor, vars(binding), change.at, CONTACT_EVENTS[change.event],
            change.origin)))
    return rows
