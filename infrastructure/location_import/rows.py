"""A Kamailio 5.6 location row as one of our bindings.

What the row holds and how it is taken:
- the AoR is `username@domain`, or `username` when usrloc ran without use_domain (the
  domain column empty); it is then keyed by `[usrloc] use_domain` like a REGISTER's,
  so a bare user needs `[reginfo] default_domain`;
- `expires` and `last_modified` are datetimes as the database driver keeps them: a
  Julian day number (db_sqlite), a timestamp (PostgreSQL; usrloc writes the registrar's
  local time, and a value without a zone is read in this machine's, `TZ`), the text of
  one, or Unix seconds (usrloc's `expires_type = 1`); an expiry at the epoch is a
  permanent contact, which has no equivalent here (every binding has a lifetime) and is
  refused;
- q below 0 is usrloc's "no q"; `methods` is usrloc's bit set of methods (all bits: no
  restriction); reg_id 0 is "no reg-id" (RFC 5626 reg-ids start at 1);
- `path` is the Path header values as usrloc joined them with commas;
- `last_modified` (the last REGISTER) stands for the time the binding was registered.
`server_id`, `connection_id`, `keepalive` and `partition` describe Kamailio's own
processes and TCP connections and have nothing to carry over.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from math import isfinite
from typing import Any

from domain import Binding, DomainError
from domain.binding import MAX_CSEQ, MAX_REG_ID
from infrastructure.commands import ImportedBinding
from infrastructure.location_import.source import Row

# usrloc's method bits (one per method, lowest first); METHOD_OTHER (bit 19) has no name
METHOD_BITS = ("INVITE", "CANCEL", "ACK", "BYE", "INFO", "REGISTER", "SUBSCRIBE", "NOTIFY",
               "MESSAGE", "OPTIONS", "PRACK", "UPDATE", "REFER", "PUBLISH", "KDMQ", "GET",
               "POST", "PUT", "DELETE")
PERMANENT_BEFORE = 86400.0  # an expiry on the epoch's first day: usrloc's expires = 0
JULIAN_UNIX_EPOCH = 2440587.5  # the Julian day of 1970-01-01T00:00:00Z
JULIAN_DAYS = (2440000.0, 2600000.0)  # 1968 to 2406: a number in here is a Julian day


class RefusedRow(Exception):
    """A row that cannot be a binding here; the message says why."""


@dataclass(frozen=True)
class ExpiredRow:
    """A row whose binding had lapsed when it was read."""

    label: str


def imported(row: Row, source: str, now: float) -> ImportedBinding | ExpiredRow:
    """The binding of `row`, or ExpiredRow; RefusedRow when it cannot be one."""
    username, domain = _text(row["username"]), _text(row["domain"])
    if not username:
        raise RefusedRow("no username")
    aor = f"{username}@{domain}" if domain else username
    expires = _time(row["expires"], "expires")
    if expires < PERMANENT_BEFORE:
        raise RefusedRow("a permanent contact (expires 0): every binding here has a lifetime")
    contact = _text(row["contact"])
    if not contact:
        raise RefusedRow("no contact")
    if expires <= now:
        return ExpiredRow(label(row))
    reg_id = _integer(row["reg_id"], "reg_id", 0, MAX_REG_ID) or None
    try:
        binding = Binding(
            contact=contact, expires=expires, callid=_text(row["callid"]) or "",
            cseq=_integer(row["cseq"], "cseq", 0, MAX_CSEQ),
            registered_at=_time(row["last_modified"], "last_modified", default=now),
            q=_q(row["q"]), received=_text(row["received"]), path=path_entries(row["path"]),
            user_agent=_text(row["user_agent"]), instance=_text(row["instance"]),
            reg_id=reg_id, methods=methods(row["methods"]),
            flags=_integer(row["flags"], "flags", 0, 2**32 - 1),
            cflags=_integer(row["cflags"], "cflags", 0, 2**32 - 1),
            socket=_text(row["socket"]))
    except DomainError as error:
        raise RefusedRow(str(error)) from None
    if not binding.callid:
        raise RefusedRow("no Call-ID")
    ruid = _text(row["ruid"]) or "-"
    return ImportedBinding(aor, binding, f"import {source} ruid={ruid}")


def label(row: Row) -> str:
    """How a row is named in the import's report: its AoR and contact."""
    user, domain = _text(row["username"]) or "?", _text(row["domain"])
    return f"{user}@{domain} {row['contact']}" if domain else f"{user} {row['contact']}"


def methods(value: Any) -> tuple[str, ...]:
    """The methods of usrloc's bit set; () for none given or every method allowed."""
    if value is None or value == "":
        return ()
    bits = _integer(value, "methods", -2**31, 2**32 - 1) & 0xFFFFFFFF
    every = (1 << len(METHOD_BITS)) - 1
    if bits & every == every or bits == 0:
        return ()
    return tuple(name for n, name in enumerate(METHOD_BITS) if bits & (1 << n))


def path_entries(value: Any) -> tuple[str, ...]:
    """The Path values of usrloc's comma-joined column, outermost first."""
    text = _text(value)
    if not text:
        return ()
    entries, depth, quoted, start = [], 0, False, 0
    for n, char in enumerate(text):
        if char == '"':
            quoted = not quoted
        elif not quoted and char in "<>":
            depth += 1 if char == "<" else -1
        elif char == "," and not quoted and depth == 0:
            entries.append(text[start:n].strip())
            start = n + 1
    entries.append(text[start:].strip())
    return tuple(e for e in entries if e)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _integer(value: Any, column: str, lowest: int, highest: int) -> int:
    try:
        number = int(value if value is not None else 0)
    except (TypeError, ValueError):
        raise RefusedRow(f"{column} is not a number: {value!r}") from None
    if not lowest <= number <= highest:
        raise RefusedRow(f"{column} {number} is out of range")
    return number


def _q(value: Any) -> float | None:
    try:
        q = float(value) if value is not None else -1.0
    except (TypeError, ValueError):
        raise RefusedRow(f"q is not a number: {value!r}") from None
    if q < 0:
        return None
    if q > 1:
        raise RefusedRow(f"q {q:g} is above 1")
    return q


def _time(value: Any, column: str, default: float | None = None) -> float:
    """Unix seconds of a usrloc time: a datetime (naive: local time), a Julian day, Unix
    seconds, or the text of one of them."""
    if value is None or value == "":
        if default is not None:
            return default
        raise RefusedRow(f"no {column}")
    if isinstance(value, datetime):
        return value.timestamp()
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        try:
            return datetime.fromisoformat(text).timestamp()
        except ValueError:
            raise RefusedRow(f"{column} is not a time: {text!r}") from None
    if not isfinite(number):
        raise RefusedRow(f"{column} is not a time: {text!r}")
    if JULIAN_DAYS[0] <= number < JULIAN_DAYS[1]:
        return float(round((number - JULIAN_UNIX_EPOCH) * 86400))
    return number
