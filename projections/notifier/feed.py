"""The notifier's feed: the log's changes of watched AoRs, as their watchers see them.

The feed follows the notification log from where serve started, in memory (a restart
gives every watcher full state, so nothing of it needs keeping). After each commit it is
handed what the executor just committed; when those events follow its position it takes
them as they are, otherwise (another process wrote in between: a CLI command, another
node) it reads the log from its position. Each run of one watched AoR's consecutive
versions becomes an `AorChange` (projections/notifier/pictures.py), what the notifier then
tells that AoR's watchers. AoRs without watchers cost a comparison each.

`picture` gives a new, refreshed or resumed watcher its first document: the AoR at its
latest stored version, and marks the AoR watched first, on the same thread as the feed
runs, so that every change after that version reaches the notifier. A change the feed
skipped while an AoR had no watcher is never needed: its watchers start from a picture.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.application import Application

from domain.watcher_document import AorChange, Held
from projections.notifier.pictures import AorPictures

BATCH_SIZE = 1000


@dataclass(frozen=True)
class Picture:
    """An AoR as a new watcher sees it, at `version` (0: the AoR has no history)."""

    aor_id: str
    version: int
    everyone: Held
    peers: Held

    def held(self, peer: bool) -> Held:
        return self.peers if peer else self.everyone


class NotifierFeed:
    def __init__(self, app: Application[Any], pictures: AorPictures) -> None:
        self.app, self.pictures = app, pictures
        self.position = app.recorder.max_notification_id() or 0
        self.watched: dict[str, int] = {}  # AoR id -> how many watchers asked for it

    def watch(self, aor_id: str) -> None:
        self.watched[aor_id] = self.watched.get(aor_id, 0) + 1

    def unwatch(self, aor_id: str) -> None:
        left = self.watched.get(aor_id, 0) - 1
        if left > 0:
            self.watched[aor_id] = left
        else:
            self.watched.pop(aor_id, None)

    def picture(self, aor_id: str, watch: bool = True) -> Picture:
        """Picture `aor_id` at its latest stored version; with `watch`, watch it (once
        more) first."""
        if watch:
            self.watch(aor_id)
        latest = self.app.recorder.select_events(UUID(aor_id), desc=True, limit=1)
        if not latest:
            return Picture(aor_id, 0, {}, {})
        version = latest[0].originator_version
        return Picture(aor_id, version, self.pictures.picture(aor_id, version),
                       self.pictures.picture(aor_id, version, peer=True))

    def follow(self, committed: Sequence[tuple[int, Any]]) -> list[AorChange]:
        """The changes of watched AoRs in what was just committed (notification id, event),
        and in whatever else the log holds before them."""
        ids = [i for i, _ in committed]
        if not self.watched:  # nothing to tell: no need to read what came in between
            self.position = max([self.position, *ids])
            return []
        if (not ids or ids[0] != self.position + 1
                or ids[-1] - ids[0] != len(ids) - 1):
            return self.catch_up()
        self.position = ids[-1]
        return self._changes([event for _, event in committed])

    def catch_up(self) -> list[AorChange]:
        """The changes of watched AoRs the log holds after the feed's position."""
        changes: list[AorChange] = []
        if not self.watched:
            self.position = max(self.position, self.app.recorder.max_notification_id() or 0)
            return changes
        while True:
            notifications = self.app.recorder.select_notifications(
                self.position + 1, limit=BATCH_SIZE)
            if not notifications:
                return changes
            self.position = notifications[-1].id
            if self.watched:
                changes.extend(self._changes(
                    [self.app.mapper.to_domain_event(n) for n in notifications
                     if str(n.originator_id) in self.watched]))

    def _changes(self, events: Sequence[Any]) -> list[AorChange]:
        watched = self.watched
        if not watched:
            return []
        runs: list[tuple[str, int, int, list[Any]]] = []
        for event in events:
            aor_id = str(event.originator_id)
            if aor_id not in watched:
                continue
            version = event.originator_version
            if runs and runs[-1][0] == aor_id and runs[-1][2] + 1 == version:
                last = runs[-1]
                last[3].append(event)
                runs[-1] = (aor_id, last[1], version, last[3])
            else:
                runs.append((aor_id, version, version, [event]))
        return [self.pictures.advance(aor_id, first, last, run)
                for aor_id, first, last, run in runs]
