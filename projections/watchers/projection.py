"""The watchers projection: Watcher events in, the notifier's rows out.

For every watcher a batch touched, the aggregate as of the batch's last event of it is
loaded (`load`, given by the composition root: the domain decides what the events mean)
and becomes its row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Tracking

from domain.watcher import WATCHER_TOPICS, Watcher
from projections.watchers.view import WatcherRow, WatchersView

Load = Callable[[UUID, int], Watcher]  # (aggregate id, version) -> aggregate


class WatchersProjection:
    """Keeps the watchers view in step with the log."""

    name = "watchers"
    written: int | None = None  # the position this runner last wrote
    topics = WATCHER_TOPICS

    def __init__(self, view: WatchersView, load: Load):
        self.view, self.load = view, load

    def process(self, events: Sequence[Any], tracking: Tracking, after: int) -> None:
        versions: dict[UUID, int] = {}
        for event in events:
            if getattr(event, "TOPIC", None) in WATCHER_TOPICS:
                versions[event.originator_id] = event.originator_version
        rows = [WatcherRow.of(str(aggregate_id), self.load(aggregate_id, version))
                for aggregate_id, version in versions.items()]
        self.view.apply(rows, tracking, after)
