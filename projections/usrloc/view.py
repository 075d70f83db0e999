"""The location view: a SQL table plus a tracking row, written in one transaction.

The view is a TrackingRecorder: each batch of changes is written together with the id of
the last notification it reflects, and the tracking upsert only moves forwards, so a batch
is applied exactly once even if two runners race or a process dies between the event
store commit and the view update. The same code serves SQLite and PostgreSQL; only the
placeholder style and the schema prefix differ.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from eventsourcing.persistence import IntegrityError, Tracking, TrackingRecorder
from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteDatastore

from projections.usrloc.row import COLUMNS, LocationRow

LOCATION = "usrloc_location"
TRACKING = "usrloc_tracking"

_DDL = (
    "CREATE TABLE IF NOT EXISTS {location} ("
    " aor_id TEXT NOT NULL, binding_key TEXT NOT NULL, aor TEXT NOT NULL,"
    " username TEXT NOT NULL, domain TEXT, contact TEXT NOT NULL, received TEXT,"
    " path TEXT NOT NULL, expires DOUBLE PRECISION NOT NULL, q DOUBLE PRECISION,"
    " callid TEXT NOT NULL, cseq BIGINT NOT NULL, last_modified DOUBLE PRECISION NOT NULL,"
    " flags INTEGER NOT NULL, cflags INTEGER NOT NULL, user_agent TEXT, socket TEXT,"
    " methods TEXT, instance TEXT, reg_id BIGINT, ruid TEXT NOT NULL, state TEXT NOT NULL,"
    " event TEXT NOT NULL, origin TEXT NOT NULL, PRIMARY KEY (aor_id, binding_key))",
    "CREATE INDEX IF NOT EXISTS usrloc_location_expires ON {location} (expires)",
    "CREATE TABLE IF NOT EXISTS {tracking} ("
    " application_name TEXT PRIMARY KEY, notification_id BIGINT NOT NULL)",
)


class LocationView(TrackingRecorder):
    """Current bindings of every AoR, as of the tracked notification id."""

    def __init__(self, datastore: SQLiteDatastore | PostgresDatastore):
        self.datastore = datastore
        if isinstance(datastore, PostgresDatastore):
            prefix, self.mark = f"{datastore.schema}.", "%s"
        else:
            prefix, self.mark = "", "?"
        self.location = prefix + LOCATION
        self.tracking = prefix + TRACKING
        self._upsert = self._sql(
            f"INSERT INTO {self.location} ({', '.join(COLUMNS)}) VALUES "
            f"({', '.join(['%s'] * len(COLUMNS))}) ON CONFLICT (aor_id, binding_key) DO UPDATE SET "
            + ", ".join(f"{c} = excluded.{c}" for c in COLUMNS[2:])
        )
        self._delete = self._sql(f"DELETE FROM {self.location} WHERE aor_id = %s AND binding_key = %s")
        self._track = self._sql(
            f"INSERT INTO {self.tracking} (application_name, notification_id) VALUES (%s, %s) "
            f"ON CONFLICT (application_name) DO UPDATE SET notification_id = excluded.notification_id "
            f"WHERE {self.tracking}.notification_id < excluded.notification_id "
            f"RETURNING notification_id"
        )

    def _sql(self, statement: str) -> str:
        return statement.replace("%s", self.mark)

    def create_table(self) -> None:
        with self.datastore.transaction(commit=True) as cursor:
            for statement in _DDL:
                cursor.execute(statement.format(location=self.location, tracking=self.tracking))

    # TrackingRecorder ----------------------------------------------------------------

    def insert_tracking(self, tracking: Tracking) -> None:
        self.apply([], (), tracking)

    def max_tracking_id(self, application_name: str) -> int | None:
        rows = self._select(
            f"SELECT notification_id FROM {self.tracking} WHERE application_name = %s",
            (application_name,),
        )
        return rows[0]["notification_id"] if rows else None

    # Writes --------------------------------------------------------------------------

    def apply(self, upserts: Sequence[LocationRow], deletes: Iterable[tuple[str, str]],
              tracking: Tracking) -> None:
        """Write one batch and its tracking position atomically; refuse a replayed batch."""
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute(self._track, (tracking.application_name, tracking.notification_id))
            if cursor.fetchone() is None:
                raise IntegrityError(
                    f"usrloc view already reflects notification {tracking.notification_id} "
                    f"of {tracking.application_name}"
                )
            deletes = list(deletes)
            if deletes:
                cursor.executemany(self._delete, deletes)
            if upserts:
                cursor.executemany(self._upsert, [row.as_tuple() for row in upserts])

    def clear(self, application_name: str) -> None:
        """Forget every row and the tracking position (the first step of a rebuild)."""
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute(self._sql(f"DELETE FROM {self.tracking} WHERE application_name = %s"),
                           (application_name,))
            cursor.execute(f"DELETE FROM {self.location}")

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

    def due_aor_ids(self, now: float) -> list[str]:
        """AoRs holding a binding whose lifetime ended by `now` (candidates for expiry)."""
        rows = self._select(
            f"SELECT DISTINCT aor_id FROM {self.location} WHERE expires <= %s", (now,)
        )
        return [r["aor_id"] for r in rows]

    def _select(self, statement: str, params: tuple[Any, ...]) -> list[Any]:
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(self._sql(statement), params)
            return list(cursor.fetchall())
