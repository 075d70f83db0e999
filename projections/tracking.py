"""A projection's position, kept in a tracking table and moved by compare-and-set.

A batch read after position `after` is written together with its new position only if
the view still stands at `after` (RFC-free, but the rule every view here lives by): a
batch is applied exactly once however many runners (every node, every CLI command) catch
the view up at once, and a runner that read its batch before the view moved (another
runner, or a rebuild swapping a new table in) is refused and reads again. The same SQL
serves SQLite and PostgreSQL; only the placeholder differs.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.persistence import IntegrityError

DDL = ("CREATE TABLE IF NOT EXISTS {table} ("
       " application_name TEXT PRIMARY KEY, notification_id BIGINT NOT NULL)")


class TrackingTable:
    """Positions per application name in `table` (schema-qualified as needed)."""

    def __init__(self, table: str, mark: str):
        self.table = table
        sql = lambda statement: statement.replace("%s", mark)  # noqa: E731
        self._select = sql(f"SELECT notification_id FROM {table} WHERE application_name = %s")
        self._move = sql(
            f"UPDATE {table} SET notification_id = %s "
            f"WHERE application_name = %s AND notification_id = %s")
        self._start = sql(
            f"INSERT INTO {table} (application_name, notification_id) VALUES (%s, %s) "
            f"ON CONFLICT (application_name) DO UPDATE SET notification_id = excluded.notification_id "
            f"WHERE {table}.notification_id = 0")
        self._hold = sql(
            f"INSERT INTO {table} (application_name, notification_id) VALUES (%s, 0) "
            f"ON CONFLICT (application_name) DO UPDATE SET notification_id = "
            f"{table}.notification_id RETURNING notification_id")
        self._set = sql(f"UPDATE {table} SET notification_id = %s WHERE application_name = %s")

    def ddl(self) -> str:
        return DDL.format(table=self.table)

    def position(self, cursor: Any, name: str) -> int | None:
        cursor.execute(self._select, (name,))
        row = cursor.fetchone()
        return None if row is None else row["notification_id"]

    def move(self, cursor: Any, name: str, position: int, after: int) -> None:
        """Move `name` from `after` to `position`; IntegrityError if it is not at `after`."""
        if after:
            cursor.execute(self._move, (position, name, after))
        else:
            cursor.execute(self._start, (name, position))
        if rows_changed(cursor) != 1:
            raise IntegrityError(f"{self.table}: {name} no longer stands at notification "
                                 f"{after}: not applying the batch up to {position}")

    def hold(self, cursor: Any, name: str) -> int:
        """Lock `name`'s row (created at 0 if missing) for this transaction; its position."""
        cursor.execute(self._hold, (name,))
        return cursor.fetchone()["notification_id"]

    def set(self, cursor: Any, name: str, position: int) -> None:
        """Put `name` at `position` (inside a transaction that holds its row)."""
        cursor.execute(self._set, (position, name))


def rows_changed(cursor: Any) -> int:
    """How many rows the cursor's last statement inserted or updated, all its parameter
    sets together after an executemany (a RETURNING clause costs SQLite twice as much)."""
    return getattr(cursor, "sqlite_cursor", cursor).rowcount
