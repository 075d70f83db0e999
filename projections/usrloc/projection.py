"""The usrloc projection: contact events in, location rows out.

Only the last change of a binding within a batch reaches the table: a contact event
carries the binding's full state, so a later upsert or delete supersedes earlier ones. A
refresh of a local binding carries only what changed (BindingRefresh): it is merged into
the row the batch already made of the binding, or else sets those columns of the row
the table holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from eventsourcing.persistence import Tracking

from domain import ContactEvent
from domain.binding_refresh import BindingRefresh, MissingBinding
from projections.usrloc.row import LocationRow
from projections.usrloc.view import LocationView, Refresh

Key = tuple[str, str]  # (aor id, binding key): a row of the view
_ABSENT = object()  # the batch has not touched the binding yet


class UsrlocProjection:
    """Keeps the location view in step with the registration ledger."""

    name = "usrloc"
    written: int | None = None  # the position this runner last wrote
    topics = ()  # every notification: each batch moves the position to the log's end

    def __init__(self, view: LocationView):
        self.view = view

    def process(self, events: Sequence[Any], tracking: Tracking, after: int) -> None:
        upserts, deletes, refreshes = self.changes(events)
        self.view.apply(upserts, deletes, tracking, after, refreshes)

    def changes(self, events: Sequence[Any]) -> tuple[list[LocationRow], list[Key], list[Refresh]]:
        """The rows to write, the (aor id, binding key) rows to delete and the columns to
        set in rows the table holds (refreshes), for `events`."""
        latest: dict[Key, LocationRow | dict[str, Any] | None] = {}
        for event in events:
            if not isinstance(event, ContactEvent):
                continue
            key = (str(event.originator_id), event.binding.key)
            before = latest.pop(key, _ABSENT)
            if event.TERMINATES:
                latest[key] = None
            elif not isinstance(event.binding, BindingRefresh):
                latest[key] = LocationRow.from_event(event)
            elif before is None:
                raise MissingBinding(f"a refresh of binding {key[1]} after its end")
            elif before is _ABSENT:
                latest[key] = LocationRow.refresh_of(event)
            elif isinstance(before, LocationRow):
                latest[key] = replace(before, **LocationRow.refresh_of(event))
            else:
                latest[key] = before | LocationRow.refresh_of(event)
        upserts, deletes, refreshes = [], [], []
        for key, change in latest.items():
            if change is None:
                deletes.append(key)
            elif isinstance(change, LocationRow):
                upserts.append(change)
            else:
                refreshes.append((*key, change))
        return upserts, deletes, refreshes
