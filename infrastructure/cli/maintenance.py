"""`rebuild`: build a projection again from the event store beside the live one, then swap."""

from __future__ import annotations

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from infrastructure.cli.options import service_from, store_options

PROJECTIONS = ("usrloc",)


@click.command()
@click.option("--projection", type=click.Choice(PROJECTIONS), default="usrloc", show_default=True,
              help="Which projection to rebuild.")
@store_options
def rebuild(projection: str, store_url: str | None, config_file: str | None) -> None:
    """Rebuild a projection from the whole event store (safe while serve runs)."""
    with service_from(store_url, config_file, catch_up=False) as service:
        total = service.app.recorder.max_notification_id() or 0
        columns = (TextColumn(f"rebuilding {projection}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn())
        with Progress(*columns, transient=False) as progress:
            task = progress.add_task(projection, total=total)
            count = service.rebuild(lambda n: progress.advance(task, n))
        rows = service.view.count()
        click.echo(f"rebuilt {projection}: {count} events applied, {rows} binding(s)")
