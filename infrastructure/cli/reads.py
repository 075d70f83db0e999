"""Read commands: `query` (the usrloc view) and `audit` (one AoR's history)."""

from __future__ import annotations

from datetime import datetime, timezone

import click

from domain import UnknownAddressOfRecord
from infrastructure.cli.options import service_from, store_options
from infrastructure.cli.render import (audit_entries, audit_table, bindings_table, print_json,
                                      print_tsv)
from infrastructure.timeparse import iso, parse_time
from projections import HistoryPruned, LocationRow, Retained, rows_at


@click.command(epilog="""\b
Examples:
  pua-reginfo query --aor alice@example.com
  pua-reginfo query --format tsv > location.tsv""")
@click.option("--aor", help="Only this address-of-record.")
@click.option("--format", "output", type=click.Choice(["table", "json", "tsv"]),
              default="table", show_default=True,
              help="json: a list of bindings; tsv: every column of the usrloc row, a "
                   "header line first.")
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@store_options
def query(aor: str | None, output: str, as_json: bool, store_url: str | None,
          config_file: str | None) -> None:
    """Show the current bindings (the usrloc view)."""
    with service_from(store_url, config_file, read_only=True) as service:
        now = service.clock.now()
        identity = service.app.identify(aor) if aor else None
        aor_uri = identity.uri if identity else None
        rows = service.view.rows(aor_id=str(identity.id) if identity else None, valid_at=now)
        if as_json or output == "json":
            print_json([row.to_json() for row in rows])
        elif output == "tsv":
            print_tsv(rows)
        elif not rows:
            click.echo("no bindings" + (f" for {aor_uri}" if aor_uri else ""))
        else:
            bindings_table(rows, now, f"{len(rows)} binding(s)")


@click.command(epilog="\b\nExample:\n  pua-reginfo audit alice@example.com --json\n"
                      "  pua-reginfo audit alice@example.com --at 2026-11-26T12:00:00Z")
@click.argument("aor")
@click.option("--at", "at_time", metavar="TIME",
              help="Show the bindings as they were at TIME (ISO-8601 or Unix seconds).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@store_options
def audit(aor: str, at_time: str | None, as_json: bool, store_url: str | None,
          config_file: str | None) -> None:
    """Show every recorded event of AOR, or its bindings at a past time."""
    when = parse_time(at_time) if at_time else None
    with service_from(store_url, config_file, read_only=True) as service:
        horizon = service.horizon.read()
        try:
            retained = service.app.retained(aor)
        except UnknownAddressOfRecord as error:
            if horizon is None:
                raise
            if when is not None and when.timestamp() >= horizon:
                # an AoR a prune removed had no binding left then, and nothing since
                _print_rows([], service.app.identify(aor).uri, when, as_json)
                return
            raise UnknownAddressOfRecord(f"{error} since {_iso(horizon)} (the history "
                                         "before it was pruned)") from None
        seed, events = retained.seed, retained.events
        aor_uri = seed.aor if seed is not None else events[0].aor
        if when is None:
            entries = audit_entries(events, seed.bindings if seed is not None else None)
            note = _pruned(seed.horizon) if seed is not None else (
                f"the store keeps history from {_iso(horizon)} on" if horizon is not None
                else None)
            if as_json:
                print_json(entries)
                if note:
                    click.echo(f"pua-reginfo: note: {note}", err=True)
            else:
                audit_table(entries, f"history of {aor_uri}" + (f" ({note})" if note else ""))
            return
        _check_retained(retained, aor_uri, when, horizon)
        _print_rows(rows_at(events, when, seed), aor_uri, when, as_json)


def _print_rows(rows: list[LocationRow], aor_uri: str, when: datetime, as_json: bool) -> None:
    if as_json:
        print_json([row.to_json() for row in rows])
    elif not rows:
        click.echo(f"no bindings for {aor_uri} at {iso(when)}")
    else:
        bindings_table(rows, when.timestamp(), f"{aor_uri} at {iso(when)}")


def _check_retained(retained: Retained, aor_uri: str, when: datetime,
                    horizon: float | None) -> None:
    """Refuse a time the stored history cannot answer for: before the AoR's own horizon,
    or, for an AoR whose stored history begins after `when`, before the store's (an
    earlier life of the AoR may have been removed)."""
    moment = when.timestamp()
    if retained.seed is not None:
        if moment < retained.seed.horizon:
            raise HistoryPruned(f"the history of {aor_uri} before "
                                f"{_iso(retained.seed.horizon)} was pruned: ask for a time "
                                "from then on")
        return
    begins = retained.events[0].timestamp
    if horizon is not None and moment < horizon and when < begins:
        raise HistoryPruned(f"the store keeps history from {_iso(horizon)} on (older history "
                            f"was pruned) and the history of {aor_uri} begins at {iso(begins)}: "
                            f"its bindings at {iso(when)} are not known")


def _pruned(horizon: float) -> str:
    return f"the events before {_iso(horizon)} were pruned; the state then is kept"


def _iso(seconds: float) -> str:
    return iso(datetime.fromtimestamp(seconds, timezone.utc))
