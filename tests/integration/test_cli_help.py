"""Every command's --help ends with an example of itself and shows each option's default."""

from __future__ import annotations

import re

import click
import pytest
from click.testing import CliRunner

from infrastructure.cli import cli


def every_command(group: click.Group, path: tuple[str, ...] = ()):
    yield path, group
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from every_command(command, (*path, name))
        else:
            yield (*path, name), command


COMMANDS = list(every_command(cli))


def defaulted(command: click.Command) -> list[click.Option]:
    """Options with a default value (a flag that is off by default has none to show)."""
    return [p for p in command.params if isinstance(p, click.Option) and not p.hidden
            and isinstance(p.default, (str, int, float)) and not (p.is_flag and not p.default)]


@pytest.mark.parametrize("path, command", COMMANDS,
                         ids=[" ".join(path) or "pua-reginfo" for path, _ in COMMANDS])
def test_help_shows_an_example_and_the_defaults(path, command):
    result = CliRunner().invoke(cli, [*path, "--help"], env={})
    assert result.exit_code == 0, result.output
    example = re.split(r"\n  Examples?:\n", result.output, maxsplit=1)[-1]
    assert re.match(rf"    pua-reginfo {re.escape(' '.join(path))}", example), result.output
    text = " ".join(result.output.split())  # as if no line were wrapped
    for option in defaulted(command):
        assert re.search(rf"\[default: {re.escape(str(option.default))}[;\]]", text), \
            (option.name, result.output)


def test_the_walk_reaches_the_subcommands():
    paths = {" ".join(path) for path, _ in COMMANDS}
    assert {"", "serve", "contact add", "contact reject", "config check", "config sample"} <= paths
    assert any(defaulted(command) for _, command in COMMANDS)


def test_an_option_of_a_new_command_shows_its_default_unasked():
    @click.command()
    @click.option("--retries", default=3, help="How often.")
    def probe(retries: int) -> None:
        """A command added later."""

    parent = click.Context(cli, info_name="pua-reginfo", **cli.context_settings)
    assert "[default: 3]" in probe.get_help(click.Context(probe, parent=parent, info_name="probe"))
