"""Reading another registrar's location table: Kamailio 5.6 usrloc's `location` schema
(what usrloc writes with db_mode 1-3) from a db_sqlite file or a PostgreSQL database.

The whole table is read before anything is recorded, so a source that cannot be read
(missing file or table, a table of another shape) stops the import with one line and
nothing imported.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from domain import PuaReginfoError
from infrastructure.store import StoreError, StoreUrl

COLUMNS = ("ruid", "username", "domain", "contact", "received", "path", "expires", "q",
           "callid", "cseq", "last_modified", "flags", "cflags", "user_agent", "socket",
           "methods", "instance", "reg_id", "server_id", "connection_id", "keepalive",
           "partition")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?")

Row = dict[str, Any]


class LocationSourceError(PuaReginfoError):
    """A location table that cannot be read, or is not a Kamailio 5.6 location table."""


@dataclass(frozen=True)
class LocationTable:
    """The rows of one location table, read whole; `display` names it (no password)."""

    display: str
    table: str
    rows: list[Row]


def read_location(url: str, table: str = "location") -> LocationTable:
    """Every row of `table` at `url` (sqlite:///path or postgresql://...), by column name."""
    if not _NAME.fullmatch(table):
        raise LocationSourceError(f"{table!r} is not a table name")
    try:
        source = StoreUrl.parse(url)
    except StoreError as error:
        raise LocationSourceError(str(error).replace("store URL", "source URL")) from None
    read = _read_sqlite if source.kind == "sqlite" else _read_postgres
    return LocationTable(f"{source.display} table {table}", table, read(source, table))


def _read_sqlite(source: StoreUrl, table: str) -> list[Row]:
    path = Path(source.env["SQLITE_DBNAME"])
    if not path.is_file():
        raise LocationSourceError(f"cannot read {source.display}: {path} does not exist")
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
            connection.text_factory = lambda data: data.decode("utf-8", "replace")
            found = [r[1] for r in connection.execute(f"PRAGMA table_info({table})")]
            _check_columns(found, table, source.display)
            return _fetch(connection.execute(_select(table)))
    except sqlite3.Error as error:
        raise LocationSourceError(f"cannot read {source.display}: {error}") from None


def _read_postgres(source: StoreUrl, table: str) -> list[Row]:
    import psycopg

    schema, _, name = table.rpartition(".")
    try:
        with psycopg.connect(**source.connect_kwargs()) as connection:
            found = [r[0] for r in connection.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = %s "
                "AND table_schema = COALESCE(NULLIF(%s, ''), current_schema())",
                (name, schema))]
            _check_columns(found, table, source.display)
            return _fetch(connection.execute(_select(table)))
    except psycopg.Error as error:
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        reason = (lines[0] if lines else type(error).__name__).replace("FATAL:  ", "")
        raise LocationSourceError(f"cannot read {source.display}: {reason}") from None


def _check_columns(found: list[str], table: str, display: str) -> None:
    if not found:
        raise LocationSourceError(f"{display} has no table {table}")
    missing = [c for c in COLUMNS if c not in {f.lower() for f in found}]
    if missing:
        raise LocationSourceError(f"{table} in {display} is not a Kamailio 5.6 location "
                                  f"table: no column {', '.join(missing)}")


def _select(table: str) -> str:
    quoted = ", ".join(f'"{c}"' for c in COLUMNS)
    return f"SELECT {quoted} FROM {table} ORDER BY username, domain, contact"


def _fetch(cursor: Any) -> list[Row]:
    return [dict(zip(COLUMNS, values)) for values in cursor.fetchall()]
