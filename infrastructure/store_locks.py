"""Named locks on a store, held by one process at a time across every node sharing it.

Several `serve` processes and CLI commands may share one store (PostgreSQL across nodes,
or one SQLite file on one host). Some work must run in one of them only:
- `keeper`: each standing subscription must have one SUBSCRIBE dialog, not one per node,
  so only the node holding this lock runs the keeper; the others wait as hot standbys and
  take over when the holder stops or dies, resuming the recorded dialogs (a refresh from
  the new node also moves the notifier's target to it, RFC 6665 4.1.2.1 / RFC 3261 12.2).
- `rebuild`: one rebuild of the usrloc view at a time (they share the tables they fill).
- `prune`: one prune at a time, and none while a rebuild runs (a rebuild holds it too:
  it reads the prunes' seeds first, then the log, and a prune in between would delete
  events it has yet to read).
- `schema`: one process creates or upgrades the tables; the others wait for it.

PostgreSQL: a session advisory lock on a dedicated connection (released by the server when
the connection dies). SQLite: an exclusive `flock` on `<database>.<name>.lock` (released
by the kernel when the process dies). An in-memory SQLite store lives in one process and
needs no lock.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import time
from typing import Protocol

import psycopg

from infrastructure.store import StoreUrl

KEEPER, REBUILD, SCHEMA, PRUNE = "keeper", "rebuild", "schema", "prune"
_ADVISORY_NAMES = {KEEPER: "pua-reginfo:subscription-keeper", REBUILD: "pua-reginfo:rebuild",
                   SCHEMA: "pua-reginfo:schema", PRUNE: "pua-reginfo:prune"}
POLL_INTERVAL = 0.05  # seconds between attempts of a lock waited for


class Lock(Protocol):
    def try_acquire(self) -> bool: ...
    def held(self) -> bool: ...
    def release(self) -> None: ...


def acquire(lock: Lock, timeout: float) -> bool:
    """Wait up to `timeout` seconds for `lock`; True once held."""
    deadline = time.monotonic() + timeout
    while not lock.try_acquire():
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_INTERVAL)
    return True


class FileLock:
    def __init__(self, path: str):
        self.path, self._fd = path, None

    def try_acquire(self) -> bool:
        if self._fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None


class ProcessLock:
    """An in-memory store lives in one process: it needs no lock across processes."""

    def try_acquire(self) -> bool:
        return True

    def held(self) -> bool:
        return True

    def release(self) -> None:
        pass


class AdvisoryLock:
    def __init__(self, connect: dict, name: str, schema: str = ""):
        self.connect, self._connection = connect, None
        digest = hashlib.blake2b(f"{name}:{schema}".encode(), digest_size=8).digest()
        self.key = int.from_bytes(digest, "big", signed=True)

    def try_acquire(self) -> bool:
        if self.held():
            return True
        self.release()
        try:
            connection = psycopg.connect(**self.connect, autocommit=True)
            row = connection.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
        except psycopg.Error:
            return False
        if row and row[0]:
            self._connection = connection
            return True
        connection.close()
        return False

    def held(self) -> bool:
        if self._connection is None:
            return False
        try:
            self._connection.execute("SELECT 1")
            return True
        except psycopg.Error:
            self.release()
            return False

    def release(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            except psycopg.Error:
                pass
            self._connection = None


def store_lock(store: StoreUrl, name: str) -> Lock:
    """The lock called `name` (KEEPER, REBUILD, SCHEMA or PRUNE) of the store."""
    if store.kind == "postgresql":
        return AdvisoryLock(store.connect_kwargs(), _ADVISORY_NAMES[name],
                            store.env.get("POSTGRES_SCHEMA", ""))
    database = store.env["SQLITE_DBNAME"]
    return ProcessLock() if database.startswith("file:") else FileLock(f"{database}.{name}.lock")
