"""The store's horizon: the time before which a prune may have deleted history.

One row, moved only forwards, written before a prune deletes anything: from then on
`audit` refuses to answer for a time before it rather than answer from what is left.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.postgres import PostgresDatastore

TABLE = "pua_reginfo_horizon"


class HorizonTable:
    """The horizon of the store's last prune (Unix seconds), None if never pruned."""

    def __init__(self, datastore: Any):
        self.datastore = datastore
        if isinstance(datastore, PostgresDatastore):
            self.table, mark = f"{datastore.schema}.{TABLE}", "%s"
        else:
            self.table, mark = TABLE, "?"
        self._advance = (
            f"INSERT INTO {self.table} (component, horizon, recorded_at) "
            f"VALUES ('store', {mark}, {mark}) ON CONFLICT (component) DO UPDATE SET "
            "horizon = excluded.horizon, recorded_at = excluded.recorded_at "
            f"WHERE {self.table}.horizon < excluded.horizon")

    def create_table(self) -> None:
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute(f"CREATE TABLE IF NOT EXISTS {self.table} ("
                           " component TEXT PRIMARY KEY, horizon DOUBLE PRECISION NOT NULL,"
                           " recorded_at DOUBLE PRECISION NOT NULL)")

    def advance(self, horizon: float, now: float) -> float:
        """Move the horizon to `horizon` unless it is further already; the horizon now."""
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute(self._advance, (horizon, now))
        found = self.read()
        assert found is not None
        return found

    def read(self) -> float | None:
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(f"SELECT horizon FROM {self.table} WHERE component = 'store'")
            row = cursor.fetchone()
        return None if row is None else row["horizon"]
