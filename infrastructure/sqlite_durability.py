"""How hard SQLite holds a commit: `[store] sqlite_synchronous`.

The store runs SQLite in WAL mode. With `full`, every commit waits for the WAL to reach
the disk (fsync): nothing acknowledged is lost even by a power cut. With `normal` (the
default), a commit is in the WAL and the operating system's cache before `serve` answers,
so a crash or SIGKILL of the service loses nothing acknowledged; only a power cut or an
operating system crash may lose the transactions of the last moments (the database stays
consistent: it comes back as of an earlier commit). eventsourcing opens SQLite
connections on demand and has no setting for this, so every connection its pool creates
gets the pragma as it is made.
"""

from __future__ import annotations

from typing import Any

MODES = ("normal", "full")


def set_synchronous(datastore: Any, mode: str) -> None:
    """Make every connection of the SQLite `datastore` use `PRAGMA synchronous=mode`."""
    if mode not in MODES:
        raise ValueError(f"sqlite_synchronous must be one of {', '.join(MODES)}, not {mode!r}")
    pool = datastore.pool
    create = pool._create_connection

    def create_connection():
        connection = create()
        connection._sqlite_conn.execute(f"PRAGMA synchronous={mode.upper()}")
        return connection

    pool._create_connection = create_connection
    for connection in list(pool._pool):  # any made before this
        connection._sqlite_conn.execute(f"PRAGMA synchronous={mode.upper()}")
