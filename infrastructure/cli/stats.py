"""`stats`: how many records and contacts the usrloc view holds, like usrloc's statistics."""

from __future__ import annotations

import click

from infrastructure.cli.options import service_from, store_options
from infrastructure.cli.render import print_json

TOTALS = ("records", "contacts", "expired")


@click.command(epilog="""\b
Examples:
  pua-reginfo stats
  pua-reginfo stats --json""")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@store_options
def stats(as_json: bool, store_url: str | None, config_file: str | None) -> None:
    """Count records (AoRs), contacts (bindings) and expired contacts the sweeper has
    not removed yet, in all and by domain."""
    with service_from(store_url, config_file, read_only=True) as service:
        domains = service.view.stats(service.clock.now())
    totals = {name: sum(d[name] for d in domains) for name in TOTALS}
    if as_json:
        print_json({**totals, "domains": domains})
        return
    click.echo(f"records {totals['records']}, contacts {totals['contacts']}, "
               f"expired (not yet swept) {totals['expired']}")
    for d in domains:
        click.echo(f"  {d['domain'] or '(no domain)'}: records {d['records']}, contacts "
                   f"{d['contacts']}, expired {d['expired']}")
