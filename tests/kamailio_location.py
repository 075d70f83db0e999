"""Kamailio 5.6 `location` tables for the import tests: the usrloc schema (version 9) on
SQLite (as db_sqlite has it) or PostgreSQL, and rows as usrloc writes them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

# name, SQL type, default (None: NULL allowed) -- usrloc's location table, version 9
LOCATION_COLUMNS = (
    ("ruid", "VARCHAR(64)", "''"), ("username", "VARCHAR(64)", "''"),
    ("domain", "VARCHAR(64)", None), ("contact", "VARCHAR(512)", "''"),
    ("received", "VARCHAR(128)", None), ("path", "VARCHAR(512)", None),
    ("expires", "TIMESTAMP WITHOUT TIME ZONE", "'2030-05-28 21:32:15'"),
    ("q", "REAL", "1.0"), ("callid", "VARCHAR(255)", "'Default-Call-ID'"),
    ("cseq", "INTEGER", "1"),
    ("last_modified", "TIMESTAMP WITHOUT TIME ZONE", "'2000-01-01 00:00:01'"),
    ("flags", "INTEGER", "0"), ("cflags", "INTEGER", "0"),
    ("user_agent", "VARCHAR(255)", "''"), ("socket", "VARCHAR(64)", None),
    ("methods", "INTEGER", None), ("instance", "VARCHAR(255)", None),
    ("reg_id", "INTEGER", "0"), ("server_id", "INTEGER", "0"),
    ("connection_id", "INTEGER", "0"), ("keepalive", "INTEGER", "0"),
    ("partition", "INTEGER", "0"),
)


def location_ddl(table: str = "location", postgres: bool = False) -> str:
    key = "id SERIAL PRIMARY KEY" if postgres else "id INTEGER PRIMARY KEY NOT NULL"
    columns = [key] + [
        f'"{name}" {kind} DEFAULT {default} NOT NULL' if default is not None
        else f'"{name}" {kind} DEFAULT NULL' for name, kind, default in LOCATION_COLUMNS]
    return f"CREATE TABLE {table} ({', '.join(columns)})"


def local_time(seconds: float) -> datetime:
    """A time as usrloc hands it to the database: local time, whole seconds."""
    return datetime.fromtimestamp(int(seconds))


def julian_day(moment: datetime) -> float:
    """A datetime as db_sqlite stores it: the Julian day number (UTC)."""
    return moment.timestamp() / 86400.0 + 2440587.5


def location_row(username: str, contact: str, expires: float, *, callid: str,
                 cseq: int = 1, domain: str | None = None, **columns: Any) -> dict[str, Any]:
    """A row as usrloc writes it; `expires` in Unix seconds."""
    return {"ruid": f"uloc-{callid}-{cseq}", "username": username, "domain": domain,
            "contact": contact, "expires": local_time(expires), "callid": callid,
            "cseq": cseq, "q": -1.0, "last_modified": local_time(expires - 3600),
            "user_agent": "", **columns}


def insert_rows(connection: Any, rows: list[dict[str, Any]], table: str = "location",
                postgres: bool = False) -> None:
    """INSERT each row through a sqlite3 or a psycopg connection, its datetimes as each
    database keeps them (db_sqlite: Julian days; PostgreSQL: timestamps)."""
    mark = "%s" if postgres else "?"
    for row in rows:
        names = ", ".join(f'"{name}"' for name in row)
        values = tuple(julian_day(v) if isinstance(v, datetime) and not postgres else v
                       for v in row.values())
        connection.execute(f"INSERT INTO {table} ({names}) VALUES "
                           f"({', '.join([mark] * len(row))})", values)
