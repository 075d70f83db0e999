"""`pua-reginfo`: the command line (DESIGN section 5).

Every failure is one line on stderr and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import os
import sys

import click
from eventsourcing.persistence import PersistenceError

from domain import PuaReginfoError
from infrastructure.cli.config import config
from infrastructure.cli.contact import contact, expire
from infrastructure.cli.maintenance import prune, rebuild
from infrastructure.cli.migration import import_location_command
from infrastructure.cli.notify import handle_notify
from infrastructure.cli.reads import audit, query
from infrastructure.cli.serve import serve
from infrastructure.cli.stats import stats
from infrastructure.cli.subscriptions import status, subscribe, unsubscribe


class ErrorReportingGroup(click.Group):
    """Turns every error of a subcommand into one clear line on stderr."""

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except PuaReginfoError as error:
            _fail(ctx, str(error))
        except PersistenceError as error:
            _fail(ctx, f"store error: {_first_line(error)}")
        except KeyboardInterrupt:
            _fail(ctx, "interrupted", status=130)
        except BrokenPipeError:  # `status | head`: the reader has what it wanted
            _quiet_exit(ctx)
        except Exception as error:  # the promise is: never a traceback
            _fail(ctx, f"internal error: {type(error).__name__}: {_first_line(error)}", status=70)


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _quiet_exit(ctx: click.Context) -> None:
    """Stdout's reader went away: nothing more to say, no error (and no second one when
    Python flushes stdout at exit)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    ctx.exit(0)


def _fail(ctx: click.Context, message: str, status: int = 1) -> None:
    for line in message.splitlines() or [""]:  # several problems: a line each
        click.echo(f"pua-reginfo: error: {line}", err=True)
    ctx.exit(status)


@click.group(cls=ErrorReportingGroup,
             context_settings={"help_option_names": ["-h", "--help"], "show_default": True},
             epilog="\b\nExample:\n  pua-reginfo serve --config /etc/pua-reginfo/pua-reginfo.toml\n"
                    "  pua-reginfo query --aor alice@example.com --json")
@click.version_option(package_name="pua-reginfo")
def cli() -> None:
    """RFC 3680 reg event service: registrations as an event-sourced ledger.

    The store defaults to the embedded SQLite file ./pua-reginfo.db; pass
    --store postgresql://user@host:5432/db for a shared PostgreSQL store.
    """


cli.add_command(query)
cli.add_command(audit)
cli.add_command(rebuild)
cli.add_command(prune)
cli.add_command(contact)
cli.add_command(expire)
cli.add_command(handle_notify)
cli.add_command(serve)
cli.add_command(subscribe)
cli.add_command(unsubscribe)
cli.add_command(status)
cli.add_command(config)
cli.add_command(stats)
cli.add_command(import_location_command)


def main() -> None:
    try:
        status = cli.main(prog_name="pua-reginfo", standalone_mode=True)
        sys.stdout.flush()
    except BrokenPipeError:  # the last output, flushed after the command
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        status = 0
    sys.exit(status)
