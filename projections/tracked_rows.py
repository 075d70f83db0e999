"""A view of one row per aggregate, written with its tracking position in one transaction.

The resource subscriptions the keeper keeps and the watchers the notifier serves are each
such a table: rows upserted by aggregate id, and the position of the last notification
applied, moved by compare-and-set (projections/tracking.py) in the same transaction, on
SQLite and PostgreSQL alike. A subclass names its table, tracking table, columns (the
aggregate id first) and DDL, and turns its rows into tuples and back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import Tracking, TrackingRecorder
from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteDatastore

from projections.tracking import TrackingTable


class TrackedRows(TrackingRecorder):
    TABLE: str
    TRACKING: str
    COLUMNS: tuple[str, ...]
    DDL: tuple[str, ...]  # statements with {table} and {name} (the bare table name)

    def __init__(self, datastore: SQLiteDatastore | PostgresDatastore):
        self.datastore = datastore
        postgres = isinstance(datastore, PostgresDatastore)
        prefix = f"{datastore.schema}." if postgres else ""
        self.mark = "%s" if postgres else "?"
        self.table = prefix + self.TABLE
        self.positions = TrackingTable(prefix + self.TRACKING, self.mark)
        columns = self.COLUMNS
        self._upsert = self._sql(
            f"INSERT INTO {self.table} ({', '.join(columns)}) VALUES "
            f"({', '.join(['%s'] * len(columns))}) ON CONFLICT ({columns[0]}) DO UPDATE SET "
            + ", ".join(f"{c} = excluded.{c}" for c in columns[1:]))

    def _sql(self, statement: str) -> str:
        return statement.replace("%s", self.mark)

    def create_table(self) -> None:
        with self.datastore.transaction(commit=True) as cursor:
            for statement in self.DDL:
                cursor.execute(statement.format(table=self.table, name=self.TABLE))
            cursor.execute(self.positions.ddl())

    # TrackingRecorder ----------------------------------------------------------------

    def insert_tracking(self, tracking: Tracking) -> None:
        after = self.max_tracking_id(tracking.application_name) or 0
        self.apply([], tracking, after)

    def max_tracking_id(self, application_name: str) -> int | None:
        with self.datastore.transaction(commit=False) as cursor:
            return self.positions.position(cursor, application_name)

    # Writes and reads ------------------------------------------------------------------

    def apply(self, rows: Sequence[Any], tracking: Tracking, after: int) -> None:
        """Write one batch's rows and its position atomically (compare-and-set)."""
        with self.datastore.transaction(commit=True) as cursor:
            self.positions.move(cursor, tracking.application_name, tracking.notification_id,
                                after)
            if rows:
                cursor.executemany(self._upsert, [row.as_tuple() for row in rows])

    def _select(self, where: str, params: tuple, order: str) -> list[Any]:
        statement = self._sql(f"SELECT {', '.join(self.COLUMNS)} FROM {self.table}{where} "
                              f"ORDER BY {order}")
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(statement, params)
            return cursor.fetchall()
