"""The store's tables: created by one process at a time, and not touched once in place.

Opening a store used to run every CREATE statement each time (the event store's own
tables, types and functions, then the views'), so processes opening one PostgreSQL
database together collided in its catalog ("duplicate key ... pg_type_typname_nsp_index",
"tuple concurrently updated"). Now a marker row records the schema version the tables
were created for. An open that finds the current version runs no DDL at all; otherwise
it takes the store's `schema` lock, looks again (another process may have just finished),
runs every `CREATE ... IF NOT EXISTS` and writes the marker. A store created by an older
version has no marker yet: its first open creates what is missing and marks it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from eventsourcing.postgres import PostgresDatastore

from infrastructure.store import StoreError, StoreUrl
from infrastructure.store_locks import SCHEMA, acquire, store_lock

SCHEMA_VERSION = 4  # raise it when a table, index or column is added (4: reg_watcher)
MARKER = "pua_reginfo_schema"
WAIT = 60.0  # seconds to wait for another process creating the tables


class HasTables(Protocol):
    def create_table(self) -> None: ...


def ensure_schema(store: StoreUrl, datastore: Any, recorders: Iterable[HasTables]) -> bool:
    """Create the tables of `recorders` unless the store is marked current; True if created."""
    if _version(datastore) == SCHEMA_VERSION:
        return False
    lock = store_lock(store, SCHEMA)
    if not acquire(lock, WAIT):
        raise StoreError(f"cannot open store {store.display}: another process has been "
                         f"creating its tables for {WAIT:g} s")
    try:
        if _version(datastore) == SCHEMA_VERSION:
            return False
        for recorder in recorders:
            recorder.create_table()
        _mark(datastore)
        return True
    finally:
        lock.release()


def _version(datastore: Any) -> int | None:
    postgres = isinstance(datastore, PostgresDatastore)
    with datastore.transaction(commit=False) as cursor:
        if postgres:
            cursor.execute("SELECT to_regclass(%s) AS found", (f"{datastore.schema}.{MARKER}",))
        else:
            cursor.execute("SELECT name AS found FROM sqlite_master WHERE type = 'table' "
                           "AND name = ?", (MARKER,))
        row = cursor.fetchone()
        if row is None or row["found"] is None:
            return None
        cursor.execute(f"SELECT version FROM {_table(datastore)} WHERE component = 'store'")
        row = cursor.fetchone()
        return None if row is None else row["version"]


def _mark(datastore: Any) -> None:
    mark = "%s" if isinstance(datastore, PostgresDatastore) else "?"
    table = _table(datastore)
    with datastore.transaction(commit=True) as cursor:
        cursor.execute(f"CREATE TABLE IF NOT EXISTS {table} ("
                       " component TEXT PRIMARY KEY, version INTEGER NOT NULL)")
        cursor.execute(f"INSERT INTO {table} (component, version) VALUES ('store', {mark}) "
                       "ON CONFLICT (component) DO UPDATE SET version = excluded.version",
                       (SCHEMA_VERSION,))


def _table(datastore: Any) -> str:
    return f"{datastore.schema}.{MARKER}" if isinstance(datastore, PostgresDatastore) else MARKER
