"""Empty stores for benchmarks: a SQLite file, or a PostgreSQL database dropped afterwards."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

PG = dict(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")


@contextmanager
def empty_store(kind: str, folder: Path | None = None) -> Iterator[str]:
    """A store URL for `kind` (sqlite or postgresql), empty, removed after use."""
    if kind == "sqlite":
        if folder is not None:
            yield f"sqlite:///{folder / 'bench.db'}"
            return
        with tempfile.TemporaryDirectory() as temporary:
            yield f"sqlite:///{Path(temporary) / 'bench.db'}"
        return
    if kind != "postgresql":
        raise SystemExit(f"unknown store {kind!r} (sqlite, postgresql)")
    name = f"pua_reginfo_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(**PG, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@{PG['host']}:{PG['port']}/{name}"
    finally:
        with psycopg.connect(**PG, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
