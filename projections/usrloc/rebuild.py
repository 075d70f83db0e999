"""Rebuilding the usrloc view from the whole event log while it stays in service.

Theory of operation. The new view is built in tables of its own beside the live one,
from notification 1 up to the end of the log, while every runner (each `serve` node, each
CLI command) keeps the live view moving. Then one transaction swaps it in: it locks the
live tracking row (every runner's write needs that row, so none lands meanwhile), checks
that the live view is not ahead of the new one, replaces the live table by the new one
and gives the live tracking row the new view's position. Readers see the old view or the
new one, never a view being filled. A runner that read its batch before the swap finds
the position moved and reads again; a swap that finds the live view ahead catches up and
tries again, and after `SWAP_ATTEMPTS` it swaps in anyway and leaves the difference to
the runners (applying a batch again is idempotent: every row carries the binding's state).
A swap that cannot get the live table within its lock timeout (a client holding a long
transaction on it) changes nothing and is tried again; if that goes on the rebuild stops
with RebuildIncomplete and the live view stays as it was.
Two rebuilds at once must be prevented by the caller (infrastructure holds a store lock).

The new view is filled by `replay`, not by catch_up. The log is read READ_SIZE
notifications at a time (projections/stored_log.py), a contact event's row is taken
straight from its stored state (projections/usrloc/stored_rows.py), and the batches are
folded until FLUSH_ROWS bindings have changed: only each binding's last event of the fold
becomes a row, and the rows are written in one transaction that moves the new view's
position by compare-and-set, from where the fold started to the last notification read.
So the new view holds exactly the log up to its position after every write, as a view
written by catch_up does, and a binding refreshed ten times in the log is written once.

On SQLite the new tables share the database file, its write lock and its write-ahead
log with the live view and the event store, and nothing sets them apart: their writes
and the swap commit with the store's own `synchronous` setting (no fsync with `normal`,
one per write with `full`), never with synchronous or journal off, which would risk the
live data in the same file. The cost of a large write falls on the others: each `serve`
node's commit waits while it commits (about half a second for the 50,000 rows of
bench/rebuild.py), and the write-ahead log grows to the size of the largest write (about
40 MB there) until SQLite checkpoints it. Rows are written sorted in the table's key
order, so they touch as few pages as possible; the expires index is made at the swap.
A crash before the swap leaves new tables that the next rebuild drops and fills again.

After a prune the log no longer starts at each AoR's beginning: the new view is first
filled with the rows of every horizon snapshot's bindings (projections/retained.py), with
no position, and the replay from notification 1 then applies the events after each one:
a seeded binding stands in the view as one an earlier write of the replay left there.
No prune may run meanwhile (it would delete events after a seed already read): the caller
holds the store's prune lock too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from eventsourcing.application import Application
from eventsourcing.persistence import IntegrityError, Tracking

from domain import PuaReginfoError
from projections.retained import horizons
from projections.stored_log import StoredLog
from projections.usrloc.replay import seed_rows
from projections.usrloc.stored_rows import Changes, StoredRows
from projections.usrloc.view import LocationView, SwapBlocked

SWAP_ATTEMPTS = 20
READ_SIZE = 10_000  # notifications per read
FLUSH_ROWS = 100_000  # bindings changed in a fold, kept in memory (about 1 KB each)


class RebuildIncomplete(PuaReginfoError):
    """The rebuilt view could not be swapped in; the live view is unchanged."""


def rebuild_usrloc(app: Application[Any], view: LocationView,
                   progress: Callable[[int], None] | None = None) -> int:
    """Build the view again from the whole log and swap it in; returns events applied.
    `progress` is given the notification ids each read covers, so that a bar whose total
    is the highest id ends full even where a prune left gaps."""
    built, rows = view.beside(), StoredRows(app.mapper)
    seed(app, built)
    log = StoredLog(app.recorder)
    applied = replay(app, log, built, rows, progress)
    blocked = None
    for attempt in range(1, SWAP_ATTEMPTS + 1):
        try:
            if view.swap_in(built, app.name, behind_ok=attempt == SWAP_ATTEMPTS):
                return applied
        except SwapBlocked as error:
            blocked = error
        applied += replay(app, log, built, rows, progress)
    raise RebuildIncomplete(f"the rebuilt usrloc view could not be swapped in: the live "
                            f"view stayed locked by another transaction ({blocked}); "
                            "the live view is unchanged")


def seed(app: Application[Any], view: LocationView) -> int:
    """Fill a new view with the rows of every prune's seed, FLUSH_ROWS at a time; how many."""
    filled, upserts = 0, []
    for found in horizons(app):
        upserts.extend(row.as_tuple() for row in seed_rows(found))
        if len(upserts) >= FLUSH_ROWS:
            view.fill(sorted(upserts), app.name)
            filled, upserts = filled + len(upserts), []
    view.fill(sorted(upserts), app.name)
    return filled + len(upserts)


def replay(app: Application[Any], log: StoredLog, view: LocationView, rows: StoredRows,
           progress: Callable[[int], None] | None = None) -> int:
    """Apply every notification after `view`'s position, folded into writes of at most
    about FLUSH_ROWS rows; returns how many notifications were applied."""
    done = 0
    after = view.max_tracking_id(app.name) or 0
    while True:
        changes: Changes = {}
        last, read = after, 0
        while len(changes) < FLUSH_ROWS:
            stored = log.read(last + 1, READ_SIZE)
            if not stored:
                break
            rows.fold(stored, changes)
            if progress is not None:
                progress(stored[-1][0] - last)  # the ids covered: a pruned log has gaps
            last, read = stored[-1][0], read + len(stored)
        if last == after:
            return done
        upserts, deletes, refreshes = rows.split(changes)
        upserts.sort()  # in the table's key order (aor_id, binding_key)
        try:
            view.apply_values(upserts, deletes, Tracking(app.name, last), after, refreshes)
        except IntegrityError:  # the view moved meanwhile: fold again from where it is
            after = view.max_tracking_id(app.name) or 0
            continue
        done, after = done + read, last
