"""Output of the CLI: JSON for machines, rich tables for people."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from domain import Binding, ContactEvent, RegistrationEvent, RegistrationInitialized
from domain.events import with_bindings
from infrastructure.timeparse import iso
from projections import LocationRow
from projections.usrloc.row import COLUMNS


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2))


_TSV_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def print_tsv(rows: Iterable[LocationRow]) -> None:
    """Every column of the usrloc rows, tab-separated, after a header line of the column
    names: a missing value (None) is an empty field, times are Unix seconds, and a tab,
    newline, carriage return or backslash inside a value is written \\t, \\n, \\r, \\\\."""
    click.echo("\t".join(COLUMNS))
    for row in rows:
        click.echo("\t".join(_tsv_value(value) for value in row.as_tuple()))


def _tsv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).translate(_TSV_ESCAPES)


def audit_entries(events: Iterable[Any], bindings: dict[str, Binding] | None = None,
                  ) -> list[dict[str, Any]]:
    """The audit lines of one AoR's history, oldest first; `bindings` are the AoR's at
    the history's start (a prune's horizon)."""
    return [audit_entry(event, binding)
            for event, binding in with_bindings(events, bindings)]


def audit_entry(event: Any, binding: Binding | None) -> dict[str, Any]:
    """One audit line: time, version, event, contact, origin, cause, node; `binding` is
    the binding a contact event leaves or ends."""
    entry = {
        "time": iso(event.timestamp),
        "version": event.originator_version,
        "event": event_name(event),
        "contact": None,
        "origin": None,
        "cause": None,
        "node": None,
    }
    if isinstance(event, (ContactEvent, RegistrationEvent, RegistrationInitialized)):
        entry.update(origin=event.origin, cause=event.cause, node=event.node)
    if binding is not None:
        entry["contact"] = binding.contact
        entry["expires"] = int(round(binding.expires))
        if hasattr(event, "retry_after"):
            entry["retry_after"] = event.retry_after
    return entry


def event_name(event: Any) -> str:
    if isinstance(event, ContactEvent):
        return event.EVENT
    if isinstance(event, RegistrationInitialized):
        return "registration.init"
    if isinstance(event, RegistrationEvent):
        return "registration." + event.STATE
    return type(event).__name__


def bindings_table(rows: Sequence[LocationRow], now: float, title: str) -> None:
    table = Table(title=title, title_justify="left")
    for column in ("AoR", "Contact", "Expires", "q", "Call-ID", "CSeq", "Event", "Origin"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            row.aor,
            row.contact,
            f"{max(0, int(round(row.expires - now)))} s",
            "" if row.q is None else f"{row.q:g}",
            row.callid,
            str(row.cseq),
            row.event,
            row.origin,
        )
    _console().print(table)


def audit_table(entries: Iterable[dict[str, Any]], title: str) -> None:
    table = Table(title=title, title_justify="left")
    for column in ("Time", "Ver", "Event", "Contact", "Origin", "Cause", "Node"):
        table.add_column(column, overflow="fold")
    for e in entries:
        table.add_row(e["time"], str(e["version"]), e["event"], e["contact"] or "",
                      e["origin"] or "", e["cause"] or "", e["node"] or "")
    _console().print(table)


def _console() -> Console:
    return Console(width=None if sys.stdout.isatty() else 200)
