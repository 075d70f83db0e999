"""Read commands: `query` (the usrloc view) and `audit` (one AoR's history)."""

from __future__ import annotations

import click

from infrastructure.cli.options import service_from, store_options
from infrastructure.cli.render import audit_entries, audit_table, bindings_table, print_json
from infrastructure.timeparse import iso, parse_time
from projections import rows_at


@click.command()
@click.option("--aor", help="Only this address-of-record.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of bindings.")
@store_options
def query(aor: str | None, as_json: bool, store_url: str | None, config_file: str | None) -> None:
    """Show the current bindings (the usrloc view)."""
    with service_from(store_url, config_file) as service:
        now = service.clock.now()
        identity = service.app.identify(aor) if aor else None
        aor_uri = identity.uri if identity else None
        rows = service.view.rows(aor_id=str(identity.id) if identity else None, valid_at=now)
        if as_json:
            print_json([row.to_json() for row in rows])
        elif not rows:
            click.echo("no bindings" + (f" for {aor_uri}" if aor_uri else ""))
        else:
            bindings_table(rows, now, f"{len(rows)} binding(s)")


@click.command()
@click.argument("aor")
@click.option("--at", "at_time", metavar="TIME",
              help="Show the bindings as they were at TIME (ISO-8601 or Unix seconds).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@store_options
def audit(aor: str, at_time: str | None, as_json: bool, store_url: str | None,
          config_file: str | None) -> None:
    """Show every recorded event of AOR, or its bindings at a past time."""
    when = parse_time(at_time) if at_time else None
    with service_from(store_url, config_file) as service:
        events = service.app.history(aor)
        aor_uri = events[0].aor
        if when is None:
            entries = audit_entries(events)
            if as_json:
                print_json(entries)
            else:
                audit_table(entries, f"history of {aor_uri}")
            return
        rows = rows_at(events, when)
        if as_json:
            print_json([row.to_json() for row in rows])
        elif not rows:
            click.echo(f"no bindings for {aor_uri} at {iso(when)}")
        else:
            bindings_table(rows, when.timestamp(), f"{aor_uri} at {iso(when)}")
