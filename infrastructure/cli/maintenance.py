"""Maintenance: `rebuild` a projection beside the live one, then swap; `prune` the history."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timezone

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from infrastructure.cli.options import service_from, store_options
from infrastructure.cli.render import print_json
from infrastructure.timeparse import iso, parse_time

PROJECTIONS = ("usrloc",)


@click.command(epilog="\b\nExample:\n"
               "  pua-reginfo rebuild --config /etc/pua-reginfo/pua-reginfo.toml")
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


@click.command(epilog="\b\nExample:\n  pua-reginfo prune --before 2026-09-01T00:00:00Z")
@click.option("--before", "before_time", metavar="TIME", required=True,
              help="Delete the history before TIME (ISO-8601 or Unix seconds).")
@click.option("--json", "as_json", is_flag=True, help="Print what was deleted as JSON.")
@store_options
def prune(before_time: str, as_json: bool, store_url: str | None,
          config_file: str | None) -> None:
    """Delete the AoR histories before TIME (safe while serve runs).

    Each AoR keeps its state at TIME as a snapshot, and its events from then on; an AoR
    with no binding left and nothing recorded since TIME is removed entirely. `audit`
    answers from TIME on.
    """
    before = parse_time(before_time)
    with service_from(store_url, config_file) as service:
        report = service.prune(before.timestamp())
    if as_json:
        print_json({**asdict(report), "before": iso(before),
                    "horizon": iso(datetime.fromtimestamp(report.horizon, timezone.utc))})
    else:
        click.echo(report.summary())
