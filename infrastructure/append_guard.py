"""The append guard: an event is stored only after a version that is stored.

A prune removes an AoR that has nothing left entirely: its events and snapshots. A writer
still holding that AoR (the gateway's aggregate cache, on any node, keeps aggregates
between transactions) would append version v+1 to nothing, and the AoR would have a
history without a beginning. Optimistic concurrency does not see it: nothing else holds
v+1. So, once a store is first pruned, a trigger refuses an event of version v+1 unless
version v is stored as an event or a snapshot. The refusal is an integrity error, the
conflict every writer already handles: the command is decided again on a fresh load, which
finds no AoR and starts a new one at version 1. The trigger runs inside the inserting
transaction, after the prune's deleting one committed or before it began (PostgreSQL: the
insert's table lock and the prune's conflict; SQLite: one writer at a time).
Stores never pruned do not pay for the check.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.postgres import PostgresDatastore

NAME = "pua_reginfo_append_guard"
MESSAGE = "pua-reginfo append guard: the version before this event is not stored (pruned)"


def install(app: Any) -> bool:
    """Put the guard on the application's events table unless it is there; True if added."""
    datastore = app.recorder.datastore
    events, snapshots = app.recorder.events_table_name, app.snapshots.recorder.events_table_name
    if isinstance(datastore, PostgresDatastore):
        return _install_postgres(datastore, events, snapshots)
    return _install_sqlite(datastore, events, snapshots)


def _missing(table: str, version: str) -> str:
    return (f"NOT EXISTS (SELECT 1 FROM {table} WHERE originator_id = NEW.originator_id "
            f"AND originator_version = {version})")


def _install_sqlite(datastore: Any, events: str, snapshots: str) -> bool:
    with datastore.transaction(commit=False) as cursor:
        cursor.execute("SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = ?", (NAME,))
        if cursor.fetchone() is not None:
            return False
    before = "NEW.originator_version - 1"
    with datastore.transaction(commit=True) as cursor:
        cursor.execute(
            f"CREATE TRIGGER IF NOT EXISTS {NAME} AFTER INSERT ON {events} FOR EACH ROW "
            f"WHEN NEW.originator_version > 1 AND {_missing(events, before)} "
            f"AND {_missing(snapshots, before)} "
            f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END")
    return True


def _install_postgres(datastore: PostgresDatastore, events: str, snapshots: str) -> bool:
    schema = datastore.schema
    events, snapshots = f"{schema}.{events}", f"{schema}.{snapshots}"
    with datastore.transaction(commit=False) as cursor:
        cursor.execute("SELECT 1 FROM pg_trigger WHERE tgname = %s AND tgrelid = to_regclass(%s)",
                       (NAME, events))
        if cursor.fetchone() is not None:
            return False
    before = "NEW.originator_version - 1"
    with datastore.transaction(commit=True) as cursor:
        cursor.execute(
            f"CREATE OR REPLACE FUNCTION {schema}.{NAME}() RETURNS trigger LANGUAGE plpgsql AS "
            f"$guard$ BEGIN IF NEW.originator_version > 1 AND {_missing(events, before)} "
            f"AND {_missing(snapshots, before)} THEN RAISE EXCEPTION '{MESSAGE}' "
            "USING ERRCODE = 'unique_violation'; END IF; RETURN NULL; END $guard$")
        cursor.execute(f"DROP TRIGGER IF EXISTS {NAME} ON {events}")
        cursor.execute(f"CREATE TRIGGER {NAME} AFTER INSERT ON {events} FOR EACH ROW "
                       f"EXECUTE FUNCTION {schema}.{NAME}()")
    return True
