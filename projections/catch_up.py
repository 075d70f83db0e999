"""Bring a tracked projection up to the end of the application's notification log.

Notifications are read in large batches straight from the recorder (the notification
log API caps a page at 10), only those of the projection's `topics` when it names some
(then its position is the last notification of those topics it applied), turned back
into domain events, and handed to the projection
together with the tracking position of the batch's last notification and the position it
was read after. Several processes may catch the same view up at once: the view refuses a
batch unless it still stands where the batch was read after, and the loser carries on
from the winner's position. `apply_committed` spares the reads when the events a
transaction just committed follow the position this runner last wrote: they are applied
as they are, and anything else (another writer's events in between) is read from the
store.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from eventsourcing.application import Application
from eventsourcing.persistence import IntegrityError, Tracking, TrackingRecorder

BATCH_SIZE = 1000
# A projection of some topics only remembers (in memory) how far it found none of them,
# and starts the next catch-up there rather than at its last applied event: otherwise
# every catch-up reads again everything the log took since (measured: the watchers view,
# polled every 2 s, read the whole history of a registrar with no watcher each time). It
# reads the last SCAN_OVERLAP ids again, for a PostgreSQL transaction that took a lower
# id but committed after a higher one was seen.
SCAN_OVERLAP = 1000


class TrackedProjection(Protocol):
    name: str
    view: TrackingRecorder
    topics: tuple[str, ...]  # () for every notification
    written: int | None  # the position this runner last wrote (None: unknown)
    # scanned (optional, with topics): no notification of its topics up to here

    def process(self, events: list[Any], tracking: Tracking, after: int) -> None: ...


def position(app: Application[Any], projection: TrackedProjection) -> int:
    return projection.view.max_tracking_id(app.name) or 0


def catch_up(
    app: Application[Any],
    projection: TrackedProjection,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Apply every notification after the projection's position; returns how many."""
    done = 0
    start = max(position(app, projection), getattr(projection, "scanned", 0)) + 1
    while True:
        head = (app.recorder.max_notification_id() or 0) if projection.topics else 0
        notifications = app.recorder.select_notifications(
            start, limit=batch_size, topics=projection.topics)
        if not notifications:
            projection.written = start - 1
            if projection.topics:  # nothing of its topics up to `head`: not read again
                projection.scanned = max(getattr(projection, "scanned", 0),
                                         head - SCAN_OVERLAP)
            return done
        events = [app.mapper.to_domain_event(n) for n in notifications]
        last = notifications[-1].id
        try:
            projection.process(events, Tracking(app.name, last), start - 1)
        except IntegrityError:
            # Another runner moved the view first (or a rebuild swapped a new one in):
            # continue after its position.
            start = position(app, projection) + 1
            continue
        done += len(notifications)
        start = last + 1
        projection.written = last
        if progress is not None:
            progress(len(notifications))


def apply_committed(app: Application[Any], projection: TrackedProjection,
                    committed: Sequence[tuple[int, Any]]) -> int:
    """Apply (notification id, event) pairs a transaction of this process just committed,
    as they are, when they follow the position this runner last wrote without a gap (one
    transaction: the compare-and-set proves the view is still there); otherwise catch up
    from the store. Returns how many notifications were applied. What other writers
    committed after these is left to the next catch-up."""
    ids = [i for i, _ in committed]
    after = projection.written
    if (after is None or projection.topics or not ids or ids[0] != after + 1
            or ids[-1] - ids[0] != len(ids) - 1):
        return catch_up(app, projection)
    try:
        projection.process([e for _, e in committed], Tracking(app.name, ids[-1]), after)
    except IntegrityError:  # another runner moved the view meanwhile
        projection.written = None
        return catch_up(app, projection)
    projection.written = ids[-1]
    return len(ids)
