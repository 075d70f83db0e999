"""The statements of a prune's write transaction, on SQLite and on PostgreSQL.

`remove` deletes AoRs entirely, each only if the version read is still its last; `replace`
puts a horizon snapshot in place of an AoR's snapshots up to its version and deletes its
events up to it. Both run inside the caller's transaction, after `lock`. SQLite runs in
the process, so a statement per AoR costs microseconds; PostgreSQL takes a whole batch
in one statement each (arrays unnested), since every round trip would hold up the
writers waiting for the events table.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.postgres import PostgresDatastore

Removal = tuple[UUID, int]  # AoR id, its last version
Horizon = tuple[UUID, int, str, bytes]  # AoR id, version, the snapshot's topic and state


def stored_history(app: Any) -> SqliteHistory | PostgresHistory:
    """The statements for the application's store."""
    datastore = app.recorder.datastore
    events = app.recorder.events_table_name
    snapshots = app.snapshots.recorder.events_table_name
    if isinstance(datastore, PostgresDatastore):
        return PostgresHistory(datastore, events, snapshots)
    return SqliteHistory(events, snapshots)


class SqliteHistory:
    def __init__(self, events: str, snapshots: str):
        self.events, self.snapshots = events, snapshots

    def lock(self, cursor: Any) -> None:
        """Nothing: the first DELETE takes the database's one write lock."""

    def remove(self, cursor: Any, removals: Sequence[Removal]) -> tuple[set[UUID], int, int]:
        """Remove each AoR whose last version is still the one given; the AoRs removed,
        events and snapshots deleted."""
        removed, events, snapshots = set(), 0, 0
        for aor_id, version in removals:
            key = aor_id.hex  # as the SQLite recorder stores ids
            cursor.execute(
                f"DELETE FROM {self.events} WHERE originator_id = ? AND originator_version <= ? "
                f"AND NOT EXISTS (SELECT 1 FROM {self.events} WHERE originator_id = ? "
                "AND originator_version > ?) RETURNING originator_version",
                (key, version, key, version))
            deleted = len(cursor.fetchall())
            if deleted:
                removed.add(aor_id)
                events += deleted
                cursor.execute(f"DELETE FROM {self.snapshots} WHERE originator_id = ? "
                               "RETURNING originator_version", (key,))
                snapshots += len(cursor.fetchall())
        return removed, events, snapshots

    def replace(self, cursor: Any, horizons: Sequence[Horizon]) -> tuple[int, int]:
        """Put each horizon snapshot in place of the AoR's history up to its version;
        events and snapshots deleted."""
        events, snapshots = 0, 0
        for aor_id, version, topic, state in horizons:
            key = aor_id.hex
            cursor.execute(f"DELETE FROM {self.snapshots} WHERE originator_id = ? "
                           "AND originator_version <= ? RETURNING originator_version",
                           (key, version))
            snapshots += len(cursor.fetchall())
            cursor.execute(f"INSERT INTO {self.snapshots} (originator_id, originator_version, "
                           "topic, state) VALUES (?, ?, ?, ?)", (key, version, topic, state))
            cursor.execute(f"DELETE FROM {self.events} WHERE originator_id = ? "
                           "AND originator_version <= ? RETURNING originator_version",
                           (key, version))
            events += len(cursor.fetchall())
        return events, snapshots


class PostgresHistory:
    def __init__(self, datastore: PostgresDatastore, events: str, snapshots: str):
        self.datastore = datastore
        self.events = f"{datastore.schema}.{events}"
        self.snapshots = f"{datastore.schema}.{snapshots}"
        self.ids = f"{datastore.originator_id_type}[]"

    def lock(self, cursor: Any) -> None:
        """Wait for the writer holding the events table (EXCLUSIVE) to commit, and keep
        the next one out until this transaction commits."""
        cursor.execute(f"SET LOCAL lock_timeout = '{int(self.datastore.lock_timeout or 5)}s'")
        cursor.execute(f"LOCK TABLE {self.events} IN ROW EXCLUSIVE MODE")

    def remove(self, cursor: Any, removals: Sequence[Removal]) -> tuple[set[UUID], int, int]:
        if not removals:
            return set(), 0, 0
        ids, versions = [r[0] for r in removals], [r[1] for r in removals]
        cursor.execute(
            f"DELETE FROM {self.events} e USING unnest(%s::{self.ids}, %s::bigint[]) AS p(id, v) "
            "WHERE e.originator_id = p.id AND e.originator_version <= p.v AND NOT EXISTS "
            f"(SELECT 1 FROM {self.events} n WHERE n.originator_id = p.id "
            "AND n.originator_version > p.v) RETURNING e.originator_id", (ids, versions))
        rows = cursor.fetchall()
        removed = {UUID(str(row["originator_id"])) for row in rows}
        if not removed:
            return removed, 0, 0
        cursor.execute(f"DELETE FROM {self.snapshots} WHERE originator_id = ANY(%s::{self.ids}) "
                       "RETURNING originator_version", (list(removed),))
        return removed, len(rows), len(cursor.fetchall())

    def replace(self, cursor: Any, horizons: Sequence[Horizon]) -> tuple[int, int]:
        if not horizons:
            return 0, 0
        ids, versions = [h[0] for h in horizons], [h[1] for h in horizons]
        pairs = f"unnest(%s::{self.ids}, %s::bigint[]) AS p(id, v)"
        cursor.execute(f"DELETE FROM {self.snapshots} s USING {pairs} WHERE s.originator_id = "
                       "p.id AND s.originator_version <= p.v RETURNING s.originator_version",
                       (ids, versions))
        snapshots = len(cursor.fetchall())
        cursor.execute(f"INSERT INTO {self.snapshots} (originator_id, originator_version, topic, "
                       f"state) SELECT * FROM unnest(%s::{self.ids}, %s::bigint[], %s::text[], "
                       "%s::bytea[])", (ids, versions, [h[2] for h in horizons],
                                        [h[3] for h in horizons]))
        cursor.execute(f"DELETE FROM {self.events} e USING {pairs} WHERE e.originator_id = p.id "
                       "AND e.originator_version <= p.v RETURNING e.originator_version",
                       (ids, versions))
        return len(cursor.fetchall()), snapshots
