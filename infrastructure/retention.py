"""Retention: deleting the history before a time (`prune --before TIME`, `[store] retain_days`).

Theory of operation. The log is read in order, AoR events only, up to the usrloc view's
position (nothing the view has not applied is deleted) and never its last notification
(SQLite would give a deleted last rowid to the next event, which the projections would
then take for one they applied). Reading stops at the first event at or after TIME: the
events before it are the candidates, and each AoR's among them are a prefix of its
versions, 1..v, all older than TIME. They are handled BATCH_AORS AoRs at a time:
- read (no lock held): the AoR's seed, if an earlier prune left one, and its events up to
  v; the aggregate at v through the domain's own event application, and which contact
  event last changed each of its bindings; that makes the AoR's new horizon snapshot
  (AddressOfRecordHorizon: the AoR at v, timestamped TIME).
- write (one short transaction per batch): an AoR with no binding at v loses all its
  events and snapshots, if v is still its last version; any other AoR keeps the horizon
  snapshot in place of its snapshots up to v, and its events up to v are deleted. A
  concurrent writer only ever appends after v, so nothing it writes is deleted; one that
  still holds a removed AoR is stopped by the append guard (infrastructure/append_guard.py).
  The publications of removed AoRs that are settled (no document waiting, no entity-tag
  alive at TIME, unchanged since) go in the same transaction. The outbox holds only
  documents not yet accepted (accepted ones leave it at once): it keeps them.
On PostgreSQL the write transaction first takes the events table in ROW EXCLUSIVE mode,
which waits for the writer holding it in EXCLUSIVE mode to commit and keeps the next one
out until the batch commits, so a removal sees every event written before it. On SQLite
the first DELETE takes the one write lock. Either way `serve` waits for one batch at most.
The horizon (infrastructure/horizon.py) moves to TIME before anything is deleted. One
prune at a time per store, and none during a rebuild: the caller holds the prune lock.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic

from domain import (
    CONTACT_EVENTS,
    AddressOfRecordHorizon,
    ContactEvent,
    PuaReginfoError,
    RegistrationActivated,
    RegistrationInitialized,
    RegistrationTerminated,
)
from domain.events import replayed
from infrastructure import append_guard
from infrastructure.horizon import HorizonTable
from infrastructure.retention_sql import stored_history
from infrastructure.timeparse import iso
from projections.publisher import PublisherView

BATCH_AORS = 500  # AoRs per write transaction
SCAN = 1000  # notifications read at a time
MIN_AGE = 60.0  # seconds: how far in the past a prune's time must be at least
AOR_TOPICS = [get_topic(cls) for cls in (RegistrationInitialized, RegistrationActivated,
                                         RegistrationTerminated, *CONTACT_EVENTS.values())]


class RetentionError(PuaReginfoError):
    """A prune that cannot be done as asked; nothing of it was deleted."""


@dataclass
class PruneReport:
    """What a prune did."""

    before: float  # the time asked for (Unix seconds)
    horizon: float  # the store's horizon after it: the latest time any prune asked for
    kept: int = 0  # horizon snapshots written (AoRs whose history now starts from one)
    removed: int = 0  # AoRs removed entirely
    events: int = 0  # events deleted
    snapshots: int = 0  # snapshots deleted (older ones, earlier horizons, removed AoRs')
    publications: int = 0  # settled publications of removed AoRs deleted
    stopped: bool = False  # asked to stop before the end

    def summary(self) -> str:
        text = (f"history before {_iso(self.before)} pruned"
                f"{' (stopped early)' if self.stopped else ''}: {self.kept} AoR(s) cut at a "
                f"horizon snapshot, {self.removed} removed, {self.events} event(s), "
                f"{self.snapshots} snapshot(s) and {self.publications} settled "
                "publication(s) deleted")
        if self.horizon != self.before:
            text += f"; the store's horizon stays {_iso(self.horizon)}"
        return text


@dataclass(frozen=True)
class _Plan:
    aor_id: UUID
    version: int
    horizon: StoredEvent  # the snapshot kept in place of versions 1..version
    remove: bool  # no binding left: remove the AoR entirely if `version` is still its last


class Retention:
    """Prunes an application's AoR histories before a time."""

    def __init__(self, app: Any, horizon: HorizonTable, publications: PublisherView):
        self.app, self.horizon, self.publications = app, horizon, publications
        self.datastore = app.recorder.datastore
        self.history = stored_history(app)
        self._pace, self._worked = 0.0, 0.0

    def prune(self, before: float, position: int, now: float,
              should_stop: Callable[[], bool] = lambda: False,
              pace: float = 0.0) -> PruneReport:
        """Delete the AoR histories before `before` up to notification `position`
        (the usrloc view's); stops between two batches once `should_stop()`. With a
        `pace`, it rests that many seconds per second of work after each page read and
        each batch written: `serve`'s own prune shares the process's core with the
        requests (1.0: at most half of it)."""
        self._pace, self._worked = pace, time.perf_counter()
        if before > now - MIN_AGE:
            raise RetentionError(f"cannot prune before {_iso(before)}: the time must be at least "
                                 f"{MIN_AGE:g} s in the past (commands decided now may still "
                                 "be recording events before it)")
        append_guard.install(self.app)
        report = PruneReport(before, self.horizon.advance(before, now))
        newest = self.app.recorder.max_notification_id() or 0
        for batch in self._candidates(before, min(position, newest - 1)):
            if should_stop():
                report.stopped = True
                break
            plans = [plan for plan in (self._plan(aor_id, version, before)
                                       for aor_id, version in batch.items()) if plan]
            if plans:
                self._write(plans, before, report)
            self._rest()
        return report

    def _rest(self) -> None:
        """Pause for `pace` times the work done since the last pause."""
        if self._pace:
            time.sleep(self._pace * (time.perf_counter() - self._worked))
            self._worked = time.perf_counter()

    # Reading ---------------------------------------------------------------------------

    def _candidates(self, before: float, stop: int) -> Iterator[dict[UUID, int]]:
        """Batches of AoRs with their last version older than `before`: the whole range
        is read first, so that each AoR is cut once, at its last version before it."""
        last: dict[UUID, int] = {}
        start = 1
        while stop >= start:
            notifications = self.app.recorder.select_notifications(
                start, limit=SCAN, stop=stop, topics=AOR_TOPICS)
            if not notifications:
                break
            for notification in notifications:
                event = self.app.mapper.to_domain_event(notification)
                if event.timestamp.timestamp() >= before:
                    stop = 0
                    break
                last[event.originator_id] = event.originator_version
            start = notifications[-1].id + 1
            self._rest()
        aors = list(last.items())
        for first in range(0, len(aors), BATCH_AORS):
            yield dict(aors[first:first + BATCH_AORS])

    def _plan(self, aor_id: UUID, version: int, before: float) -> _Plan | None:
        """The AoR at `version` as a horizon snapshot; None if pruned that far already."""
        lowest = next(iter(self.app.snapshots.get(aor_id, limit=1)), None)
        seed = lowest if isinstance(lowest, AddressOfRecordHorizon) else None
        after = seed.originator_version if seed is not None else 0
        if version <= after:
            return None
        events = list(self.app.events.get(aor_id, gt=after or None, lte=version))
        if [e.originator_version for e in events] != list(range(after + 1, version + 1)):
            raise RetentionError(f"AoR {aor_id}: versions {after + 1}..{version} are not all "
                                 "stored (is another prune running without the lock?)")
        aggregate = replayed(seed.mutate(None) if seed is not None else None, events)
        changes = {key: tuple(change) for key, change in seed.changes.items()} if seed else {}
        for event in events:
            if isinstance(event, ContactEvent):
                changes.pop(event.binding.key, None)
                if not event.TERMINATES:
                    changes[event.binding.key] = (event.EVENT, event.origin,
                                                  event.timestamp.timestamp())
        if changes.keys() != aggregate.bindings.keys():
            raise RetentionError(f"AoR {aor_id}: the bindings at version {version} and their "
                                 "last changes disagree; nothing pruned")
        taken = self.app.snapshot_class.take(aggregate)
        horizon = AddressOfRecordHorizon(
            originator_id=aggregate.id, originator_version=aggregate.version,
            timestamp=datetime.fromtimestamp(before, timezone.utc), topic=taken.topic,
            state=taken.state, changes={key: list(change) for key, change in changes.items()})
        return _Plan(aor_id, version, self.app.snapshots.mapper.to_stored_event(horizon),
                     not aggregate.bindings)

    # Writing ---------------------------------------------------------------------------

    def _write(self, plans: list[_Plan], before: float, report: PruneReport) -> None:
        """One batch in one transaction: removals, then horizon snapshots in place of the
        older history, then the removed AoRs' settled publications."""
        history = self.history
        with self.datastore.transaction(commit=True) as cursor:
            history.lock(cursor)
            removals = [(p.aor_id, p.version) for p in plans if p.remove]
            removed, events, snapshots = history.remove(cursor, removals)
            kept = [(p.aor_id, p.version, p.horizon.topic, p.horizon.state) for p in plans
                    if p.aor_id not in removed]  # a removal written to since is kept instead
            more_events, more_snapshots = history.replace(cursor, kept)
            publications = self.publications.forget_settled(
                cursor, [str(aor_id) for aor_id in removed], before)
        report.kept += len(kept)
        report.removed += len(removed)
        report.events += events + more_events
        report.snapshots += snapshots + more_snapshots
        report.publications += publications


def _iso(seconds: float) -> str:
    return iso(datetime.fromtimestamp(seconds, timezone.utc))
