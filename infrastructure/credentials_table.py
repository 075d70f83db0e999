"""Credentials from a PostgreSQL table shaped as Kamailio's `subscriber` (auth_db):
the rows whose `domain` is our realm, by `username`, with `ha1` holding the MD5 HA1 (32
hex digits) or the SHA-256 one (64: auth_db tells them by length), and, when the table
has it, a column `ha1_sha256` of our own for users who have both. The `password` column
(clear text) is never read. An `ha1` of another length or not hexadecimal is a problem
naming the user, never the value.
"""

from __future__ import annotations

import re

import psycopg

from sip_gateway.auth import UserCredentials

TABLE = "subscriber"
CONNECT_TIMEOUT = 5  # seconds
_HEX = re.compile(r"[0-9a-fA-F]+")
Users = dict[str, UserCredentials]


def read_subscribers(url: str, realm: str) -> tuple[Users, list[str]]:
    """The users of `realm` in the table, and its problems (one line each)."""
    try:
        with psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT, autocommit=True) as db:
            columns = [c.name for c in db.execute(f"SELECT * FROM {TABLE} LIMIT 0").description]
            extra = ", ha1_sha256" if "ha1_sha256" in columns else ", NULL"
            rows = db.execute(f"SELECT username, ha1{extra} FROM {TABLE} WHERE domain = %s",
                              (realm,)).fetchall()
    except psycopg.Error as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        return {}, [f"[auth] credentials: cannot read table {TABLE}: {reason}"]
    users: Users = {}
    problems: list[str] = []
    for username, ha1, ha1_sha256 in rows:
        md5, sha256 = None, (ha1_sha256 or "").lower() or None
        value = (ha1 or "").lower()
        if value and _HEX.fullmatch(value) and len(value) in (32, 64):
            md5, sha256 = (value, sha256) if len(value) == 32 else (None, sha256 or value)
        elif value:
            problems.append(f"[auth] credentials: {TABLE} row of user {username!r}: ha1 is "
                            "not 32 (MD5) or 64 (SHA-256) hex digits")
            continue
        if sha256 is not None and not (_HEX.fullmatch(sha256) and len(sha256) == 64):
            problems.append(f"[auth] credentials: {TABLE} row of user {username!r}: "
                            "ha1_sha256 is not 64 hex digits")
            continue
        if md5 or sha256:
            users[username] = UserCredentials(md5, sha256)
    return users, problems
