"""`pua-reginfo config check [FILE]`: everything `serve` would refuse in its settings, one
line per problem, before a deployment finds out; `config sample`: every key with its
default, commented (the file shipped as infrastructure/sample-config.toml)."""

from __future__ import annotations

import os
from importlib import resources

import click

from infrastructure.bootstrap import proxy_hop
from infrastructure.credentials import open_credentials
from infrastructure.settings import SettingsError, load_settings


@click.group(epilog="\b\nExample:\n  pua-reginfo config sample > /etc/pua-reginfo/pua-reginfo.toml")
def config() -> None:
    """Check settings files, or print a commented sample."""


def sample_text() -> str:
    """The shipped sample settings file: every section and key with its default."""
    return resources.files("infrastructure").joinpath("sample-config.toml").read_text()


@config.command(epilog="\b\nExample:\n  pua-reginfo config sample > pua-reginfo.toml")
def sample() -> None:
    """Print a settings file with every key, its default and what it does."""
    click.echo(sample_text(), nl=False)


@config.command(epilog="\b\nExample:\n  pua-reginfo config check /etc/pua-reginfo/pua-reginfo.toml")
@click.argument("file", required=False, metavar="[FILE]")
def check(file: str | None) -> None:
    """Check FILE (and the PUA_REGINFO_* environment) as `serve` would read them; print
    each problem on a line of its own and exit 1 if there is any."""
    try:
        settings = load_settings(file, os.environ)
        proxy_hop(settings.reginfo.outbound_proxy, settings.listen)
        open_credentials(settings)  # [auth] credentials: readable, every line well formed
    except SettingsError as error:
        for problem in error.problems:
            click.echo(f"{file or 'settings'}: {problem}", err=True)
        raise SystemExit(1) from None
    click.echo(f"{file or 'settings'}: ok")
