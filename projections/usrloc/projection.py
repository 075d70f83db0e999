"""The usrloc projection: contact events in, location rows out.

Only the last change of a binding within a batch reaches the table: every contact event
carries the binding's full state, so a later upsert or delete supersedes earlier ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import Tracking

from domain import ContactEvent
from projections.usrloc.row import LocationRow
from projections.usrloc.view import LocationView


class UsrlocProjection:
    """Keeps the location view in step with the registration ledger."""

    name = "usrloc"
    written: int | None = None  # the position this runner last wrote
    topics = ()  # every notification: each batch moves the position to the log's end

    def __init__(self, view: LocationView):
        self.view = view

    def process(self, events: Sequence[Any], tracking: Tracking, after: int) -> None:
        self.view.apply(*self.changes(events), tracking, after)

    def changes(self, events: Sequence[Any]) -> tuple[list[LocationRow], list[tuple[str, str]]]:
        """The rows to write and the (aor id, binding key) rows to delete for `events`."""
        latest: dict[tuple[str, str], LocationRow | None] = {}
        for event in events:
            if not isinstance(event, ContactEvent):
                continue
            key = (str(event.originator_id), event.binding.key)
            latest.pop(key, None)
            latest[key] = None if event.TERMINATES else LocationRow.from_event(event)
        upserts = [row for row in latest.values() if row is not None]
        deletes = [key for key, row in latest.items() if row is None]
        return upserts, deletes
