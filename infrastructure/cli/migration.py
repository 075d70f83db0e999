"""`import-location`: bindings of a Kamailio 5.6 location table recorded here."""

from __future__ import annotations

import click

from infrastructure.cli.options import service_from, store_options
from infrastructure.cli.render import print_json
from infrastructure.location_import import import_location, read_location


@click.command("import-location", epilog="""\b
Examples:
  pua-reginfo import-location sqlite:////var/lib/kamailio/kamailio.db
  pua-reginfo import-location postgresql://kamailio@127.0.0.1/kamailio --table location""")
@click.argument("source")
@click.option("--table", default="location", show_default=True,
              help="The usrloc table to read.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@store_options
def import_location_command(source: str, table: str, as_json: bool, store_url: str | None,
                            config_file: str | None) -> None:
    """Import the bindings of a Kamailio 5.6 usrloc location table (db_mode 1-3).

    SOURCE is sqlite:///path/to/kamailio.db (a db_sqlite file) or
    postgresql://user@host:5432/db. Each live row is recorded as a `created` event
    (origin `import`) on its AoR, keyed by [usrloc] use_domain; expired rows are
    skipped, a binding already here with the same Call-ID and CSeq is left alone (a
    second run changes nothing), and a row that cannot be a binding is refused with its
    reason. Imported bindings are not PUBLISHed. Exit status 1 when a row was refused.
    """
    location = read_location(source, table)  # whole, before the store is touched
    with service_from(store_url, config_file) as service:
        report = import_location(service, location)
    if as_json:
        print_json(report.to_json())
    else:
        click.echo(report.summary())
    for row, reason in report.refused:
        click.echo(f"pua-reginfo: refused: {row}: {reason}", err=True)
    if report.refused:
        raise click.exceptions.Exit(1)
