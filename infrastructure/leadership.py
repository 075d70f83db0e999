"""One subscription keeper per store: a lock held while a node keeps the dialogs.

Several `serve` processes may share one store (PostgreSQL across nodes, or one SQLite file
on one host). Each standing subscription must have one SUBSCRIBE dialog, not one per node,
so only the node holding this lock runs the keeper; the others wait as hot standbys and
take over when the holder stops or dies, resuming the recorded dialogs (a refresh from the
new node also moves the notifier's target to it, RFC 6665 4.1.2.1 / RFC 3261 12.2).

PostgreSQL: a session advisory lock on a dedicated connection (released by the server when
the connection dies). SQLite: an exclusive `flock` on `<database>.keeper.lock` (released
by the kernel when the process dies).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from typing import Protocol

import psycopg

from infrastructure.store import StoreUrl

LOCK_NAME = "pua-reginfo:subscription-keeper"


class Lock(Protocol):
    def try_acquire(self) -> bool: ...
    def held(self) -> bool: ...
    def release(self) -> None: ...


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
    def __init__(self, connect: dict, schema: str = ""):
        self.connect, self._connection = connect, None
        digest = hashlib.blake2b(f"{LOCK_NAME}:{schema}".encode(), digest_size=8).digest()
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


def keeper_lock(store: StoreUrl) -> Lock:
    if store.kind == "postgresql":
        return AdvisoryLock(store.connect_kwargs(), store.env.get("POSTGRES_SCHEMA", ""))
    name = store.env["SQLITE_DBNAME"]
    return ProcessLock() if name.startswith("file:") else FileLock(name + ".keeper.lock")
