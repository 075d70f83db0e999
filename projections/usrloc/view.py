"""The location view: a SQL table plus a tracking row, written in one transaction.

The view is a TrackingRecorder whose position moves by compare-and-set
(projections/tracking.py), so a batch is applied exactly once even when several runners
(every node and every CLI command catches the view up) race, and no runner can write a
batch it read before a rebuild swapped a new table in. A rebuild builds a second table
beside the live one (`beside()`) and swaps it in with `swap_in()` (see
projections/usrloc/rebuild.py).
The same code serves SQLite and PostgreSQL; only the placeholder style, the schema prefix
and the index renaming of a swap differ.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from eventsourcing.persistence import (
    IntegrityError,
    OperationalError,
    Tracking,
    TrackingRecorder,
)
from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteDatastore

from projections.tracking import TrackingTable
from projections.usrloc.row import COLUMNS, LocationRow

LOCATION = "usrloc_location"
TRACKING = "usrloc_tracking"
Refresh = tuple[str, str, dict[str, Any]]  # aor id, binding key, the columns a refresh sets
BESIDE = "_next"  # suffix of the tables a rebuild fills before swapping them in
SWAP_LOCK_TIMEOUT = 2  # seconds a swap may wait for the live table (readers, runners)

_LOCATION_DDL = (
    "CREATE TABLE IF NOT EXISTS {location} ("
    " aor_id TEXT NOT NULL, binding_key TEXT NOT NULL, aor TEXT NOT NULL,"
    " username TEXT NOT NULL, domain TEXT, contact TEXT NOT NULL, received TEXT,"
    " path TEXT NOT NULL, expires DOUBLE PRECISION NOT NULL, q DOUBLE PRECISION,"
    " callid TEXT NOT NULL, cseq BIGINT NOT NULL, last_modified DOUBLE PRECISION NOT NULL,"
    " flags INTEGER NOT NULL, cflags INTEGER NOT NULL, user_agent TEXT, socket TEXT,"
    " methods TEXT, instance TEXT, reg_id BIGINT, ruid TEXT NOT NULL, state TEXT NOT NULL,"
    " event TEXT NOT NULL, origin TEXT NOT NULL, PRIMARY KEY (aor_id, binding_key))"
)
DUE = "SELECT aor_id FROM {location} WHERE expires <= %s"  # read by the expires index
_EXPIRES_INDEX = "CREATE INDEX IF NOT EXISTS {name}_expires ON {location} (expires)"


class LocationView(TrackingRecorder):
    """Current bindings of every AoR, as of the tracked notification id."""

    def __init__(self, datastore: SQLiteDatastore | PostgresDatastore,
                 location: str = LOCATION, tracking: str = TRACKING):
        self.datastore = datastore
        self.postgres = isinstance(datastore, PostgresDatastore)
        self.schema = f"{datastore.schema}." if self.postgres else ""
        self.mark = "%s" if self.postgres else "?"
        self.name, self.tracking_name = location, tracking
        self.location = self.schema + location
        self.tracking = self.schema + tracking
        self._upsert = self._sql(
            f"INSERT INTO {self.location} ({', '.join(COLUMNS)}) VALUES "
            f"({', '.join(['%s'] * len(COLUMNS))}) ON CONFLICT (aor_id, binding_key) DO UPDATE SET "
            + ", ".join(f"{c} = excluded.{c}" for c in COLUMNS[2:])
        )
        self._delete = self._sql(f"DELETE FROM {self.location} WHERE aor_id = %s AND binding_key = %s")
        self._updates: dict[tuple[str, ...], str] = {}
        self.positions = TrackingTable(self.tracking, self.mark)

    def _sql(self, statement: str) -> str:
        return statement.replace("%s", self.mark)

    def create_table(self) -> None:
        with self.datastore.transaction(commit=True) as cursor:
            for statement in (_LOCATION_DDL, _EXPIRES_INDEX):
                cursor.execute(self._ddl(statement))
            cursor.execute(self.positions.ddl())

    def _ddl(self, statement: str) -> str:
        return statement.format(location=self.location, tracking=self.tracking, name=self.name)

    # TrackingRecorder ----------------------------------------------------------------

    def insert_tracking(self, tracking: Tracking) -> None:
        """Move the position to `tracking` with no rows (refused unless it moves forward)."""
        after = self.max_tracking_id(tracking.application_name) or 0
        if tracking.notification_id <= after:
            raise IntegrityError(f"usrloc view already reflects notification "
                                 f"{tracking.notification_id} of {tracking.application_name}")
        self.apply([], (), tracking, after)

    def max_tracking_id(self, application_name: str) -> int | None:
        with self.datastore.transaction(commit=False) as cursor:
            return self.positions.position(cursor, application_name)

    # Writes --------------------------------------------------------------------------

    def apply(self, upserts: Sequence[LocationRow], deletes: Iterable[tuple[str, str]],
              tracking: Tracking, after: int, refreshes: Sequence[Refresh] = ()) -> None:
        """Write one batch read after position `after`, and move the position to
        `tracking`, atomically; refuse it unless the view still stands at `after`."""
        self.apply_values([row.as_tuple() for row in upserts], deletes, tracking, after,
                          refreshes)

    def apply_values(self, upserts: Sequence[tuple[Any, ...]],
                     deletes: Iterable[tuple[str, str]], tracking: Tracking, after: int,
                     refreshes: Sequence[Refresh] = ()) -> None:
        """`apply`, the rows given as their values in column order."""
        with self.datastore.transaction(commit=True) as cursor:
            self.positions.move(cursor, tracking.application_name, tracking.notification_id,
                                after)
            deletes = list(deletes)
            if deletes:
                cursor.executemany(self._delete, deletes)
            if upserts:
                cursor.executemany(self._upsert, upserts)
            if refreshes:
                self._refresh(cursor, refreshes)

    def _refresh(self, cursor: Any, refreshes: Sequence[Refresh]) -> None:
        """Set the refreshed columns of rows the table holds: one UPDATE statement per
        set of columns (most refreshes change the same few)."""
        grouped: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
        for aor_id, key, columns in refreshes:
            grouped.setdefault(tuple(columns), []).append((*columns.values(), aor_id, key))
        for names, values in grouped.items():
            statement = self._updates.get(names)
            if statement is None:
                statement = self._updates[names] = self._sql(
                    f"UPDATE {self.location} SET {', '.join(f'{n} = %s' for n in names)} "
                    "WHERE aor_id = %s AND binding_key = %s")
            cursor.executemany(statement, values)

    # Rebuilding beside the live view -------------------------------------------------

    def fill(self, upserts: Sequence[tuple[Any, ...]], application_name: str) -> None:
        """Write rows (values in column order) and leave the position at none: what a view
        beside the live one holds before its replay starts (the rows of the prunes' seeds)."""
        with self.datastore.transaction(commit=True) as cursor:
            if self.positions.position(cursor, application_name):
                raise IntegrityError(f"{self.location} has a position: a replay started on it")
            if upserts:
                cursor.executemany(self._upsert, upserts)

    def beside(self) -> LocationView:
        """A new, empty view in tables of its own, to be filled and then swapped in."""
        other = LocationView(self.datastore, self.name + BESIDE, self.tracking_name + BESIDE)
        # One statement per transaction: SQLite then takes the write lock at each
        # statement's start, waiting for it, instead of failing to upgrade a read.
        for statement in (f"DROP TABLE IF EXISTS {other.location}",
                          f"DROP TABLE IF EXISTS {other.tracking}",
                          other._ddl(_LOCATION_DDL),  # its expires index comes with the swap
                          other.positions.ddl()):
            with self.datastore.transaction(commit=True) as cursor:
                cursor.execute(statement)
        return other

    def swap_in(self, built: LocationView, application_name: str, behind_ok: bool) -> bool:
        """Replace this view's rows by `built`'s in one transaction, and take its position.

        The live tracking row is locked first (the lock every runner's write takes), so
        no batch lands meanwhile. A view built up to a position before the live one is
        swapped in only if `behind_ok` (then the runners apply the difference again, which
        is idempotent); otherwise nothing changes and False is returned. On PostgreSQL
        the swap waits at most SWAP_LOCK_TIMEOUT for the table (a reader holding a long
        transaction open): SwapBlocked then, with nothing changed.
        """
        built_at = built.max_tracking_id(application_name) or 0
        try:
            with self.datastore.transaction(commit=True) as cursor:
                if self.postgres:
                    cursor.execute(f"SET LOCAL lock_timeout = '{SWAP_LOCK_TIMEOUT}s'")
                live_at = self.positions.hold(cursor, application_name)
                if built_at < live_at and not behind_ok:
                    raise _Behind
                cursor.execute(f"DROP TABLE {self.location}")
                cursor.execute(f"ALTER TABLE {built.location} RENAME TO {self.name}")
                if self.postgres:  # SQLite renames a table's own indexes with it
                    cursor.execute(f"ALTER INDEX {self.schema}{built.name}_pkey "
                                   f"RENAME TO {self.name}_pkey")
                cursor.execute(self._ddl(_EXPIRES_INDEX))
                self.positions.set(cursor, application_name, built_at)
                cursor.execute(f"DROP TABLE {built.tracking}")
        except _Behind:
            return False
        except OperationalError as error:
            raise SwapBlocked(_first_line(error)) from None
        return True

    # Reads ---------------------------------------------------------------------------

    def rows(self, aor_id: str | None = None, valid_at: float | None = None) -> list[LocationRow]:
        """Bindings ordered by AoR then q (highest first); only unexpired ones if `valid_at`."""
        where, params = [], []
        if aor_id is not None:
            where.append("aor_id = %s")
            params.append(aor_id)
        if valid_at is not None:
            where.append("expires > %s")
            params.append(valid_at)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        statement = (
            f"SELECT {', '.join(COLUMNS)} FROM {self.location}{clause} "
            "ORDER BY aor, COALESCE(q, 1.0) DESC, contact, binding_key"
        )
        return [LocationRow.from_mapping(r) for r in self._select(statement, tuple(params))]

    def count(self) -> int:
        return self._select(f"SELECT COUNT(*) AS n FROM {self.location}", ())[0]["n"]

    def totals(self) -> tuple[int, int]:
        """(AoRs, bindings) in the view."""
        row = self._select(f"SELECT COUNT(DISTINCT aor_id) AS aors, COUNT(*) AS bindings "
                           f"FROM {self.location}", ())[0]
        return row["aors"], row["bindings"]

    def stats(self, now: float) -> list[dict[str, Any]]:
        """Per domain (None for tel AoRs): `records` (AoRs), `contacts` (bindings) and
        `expired` (bindings lapsed by `now` that no `expired` event removed yet)."""
        rows = self._select(
            "SELECT domain, COUNT(DISTINCT aor_id) AS records, COUNT(*) AS contacts, "
            "SUM(CASE WHEN expires <= %s THEN 1 ELSE 0 END) AS expired "
            f"FROM {self.location} GROUP BY domain ORDER BY domain", (now,))
        return [{"domain": r["domain"], "records": int(r["records"]),
                 "contacts": int(r["contacts"]), "expired": int(r["expired"])} for r in rows]

    def due_aor_ids(self, now: float) -> list[str]:
        """AoRs holding a binding whose lifetime ended by `now` (candidates for expiry).
        The rows come by the expires index and are made distinct here: with DISTINCT in
        the statement SQLite walked the whole table in primary-key order instead (70 ms
        at 100,000 bindings, on every sweep, against 0.1 ms)."""
        rows = self._select(DUE.format(location=self.location), (now,))
        return list(dict.fromkeys(r["aor_id"] for r in rows))

    def next_expiry(self) -> float | None:
        """When the soonest lifetime of a binding in the view ends (None: no binding)."""
        return self._select(f"SELECT MIN(expires) AS due FROM {self.location}", ())[0]["due"]

    def _select(self, statement: str, params: tuple[Any, ...]) -> list[Any]:
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(self._sql(statement), params)
            return list(cursor.fetchall())


class _Behind(Exception):
    """The live view moved past the one built beside it: swap later."""


class SwapBlocked(Exception):
    """The live view stayed locked (a long transaction on it) and could not be swapped."""


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
