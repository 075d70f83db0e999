"""The notification log read in bulk, as plain rows: what a rebuild reads.

`select_notifications` makes a Notification (a frozen dataclass) of every row and, on
SQLite, a UUID of its originator id; a rebuild reads every row of the log and needs
neither. This runs the statement the application's recorder runs (eventsourcing 9.5: the
notification id is the `rowid` on SQLite, the `notification_id` column on PostgreSQL) and
returns (id, originator id as text, originator version, topic, state) tuples; the text is
the store's (a UUID's 32 hex digits on SQLite, its hyphenated form on PostgreSQL). A recorder
of another kind is read through `select_notifications`. Plain tuples, not the database
driver's row objects, also because the garbage collector forgets a tuple of plain values
at once, where a batch of row objects alive through a collection is moved to its oldest
generation, and enough of those make it scan the whole heap again and again.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder
from psycopg.rows import tuple_row

StoredRow = tuple[int, str, int, str, bytes]


class StoredLog:
    """Reads an application's notifications in order, from a position on."""

    def __init__(self, recorder: Any):
        self.recorder = recorder
        self.postgres = isinstance(recorder, PostgresApplicationRecorder)
        if self.postgres:
            table = f"{recorder.datastore.schema}.{recorder.events_table_name}"
            self._select: str | None = (
                "SELECT notification_id, originator_id::text, originator_version, topic, state "
                f"FROM {table} WHERE notification_id >= %s ORDER BY notification_id LIMIT %s")
        elif isinstance(recorder, SQLiteApplicationRecorder):
            self._select = (
                "SELECT rowid, originator_id, originator_version, topic, state "
                f"FROM {recorder.events_table_name} WHERE rowid >= ? ORDER BY rowid LIMIT ?")
        else:
            self._select = None

    def read(self, start: int, limit: int) -> list[StoredRow]:
        """Up to `limit` notifications from id `start` on, in order."""
        if self._select is None:
            return [(n.id, str(n.originator_id), n.originator_version, n.topic, n.state)
                    for n in self.recorder.select_notifications(start, limit=limit)]
        with self.recorder.datastore.transaction(commit=False) as cursor:
            if self.postgres:
                cursor.row_factory = tuple_row
                cursor.execute(self._select, (start, limit), prepare=True, binary=True)
                return cursor.fetchall()  # in binary, a bytea arrives as bytes
            cursor.sqlite_cursor.row_factory = None  # plain tuples (see below)
            cursor.execute(self._select, (start, limit))
            return cursor.fetchall()
