"""docs/migrating-from-kamailio.md: its settings load, and every `$ pua-reginfo` line of
its `console` blocks runs, in order, against a Kamailio 5.6 location table, giving the
output lines the page shows."""

from __future__ import annotations

import re
import shlex
import sqlite3
import time
from pathlib import Path

from click.testing import CliRunner

from infrastructure.cli import cli
from infrastructure.settings import load_settings
from tests.kamailio_location import insert_rows, location_ddl, location_row

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "migrating-from-kamailio.md"
BLOCK = re.compile(r"^ *```(\w+)\n(.*?)^ *```", re.MULTILINE | re.DOTALL)


def blocks(kind: str) -> list[str]:
    """The text of each fenced block of `kind`, its indentation removed."""
    found = []
    for match in BLOCK.finditer(DOC.read_text()):
        if match.group(1) == kind:
            lines = match.group(2).splitlines()
            indent = min(len(line) - len(line.lstrip()) for line in lines if line.strip())
            found.append("\n".join(line[indent:] for line in lines))
    return found


def sessions() -> list[tuple[list[str], list[str]]]:
    """Each `$ ` command of the console blocks with the output lines the page shows."""
    steps: list[tuple[list[str], list[str]]] = []
    for block in blocks("console"):
        for line in block.splitlines():
            if line.startswith("$ "):
                steps.append((shlex.split(line[2:]), []))
            elif line.strip():
                steps[-1][1].append(line)
    return steps


def kamailio_table(path: Path, now: float) -> None:
    """The location table the page's example migrates: alice with two phones, bob with
    one, carol's lapsed registration."""
    rows = [
        location_row("alice", "sip:alice@127.0.0.1:5070", now + 3000, callid="a-1", cseq=12,
                     q=0.8, user_agent="desk-phone"),
        location_row("alice", "sip:alice@127.0.0.1:5071", now + 1800, callid="a-2", cseq=3,
                     path="<sip:edge@127.0.0.1:5999;lr>"),
        location_row("bob", "sip:bob@127.0.0.1:5080", now + 600, callid="b-1", cseq=40),
        location_row("carol", "sip:carol@127.0.0.1:5090", now - 100, callid="c-1"),
    ]
    with sqlite3.connect(path) as db:
        db.execute(location_ddl())
        insert_rows(db, rows)


def test_the_settings_example_loads(tmp_path):
    [example] = blocks("toml")
    path = tmp_path / "pua-reginfo.toml"
    path.write_text(example)
    settings = load_settings(path, env={})
    assert (settings.notify.mode, settings.notify.reply_code) == ("kamailio", 202)
    assert settings.notify.accept_unsolicited_notify is True
    assert settings.usrloc.use_domain is False and settings.reginfo.default_domain == "example.com"


def test_every_command_of_the_page_runs_and_shows_what_the_page_says(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    [example] = blocks("toml")
    (tmp_path / "pua-reginfo.toml").write_text(example)
    kamailio_table(tmp_path / "kamailio.db", time.time())
    steps = sessions()
    assert [args[:2] for args, _ in steps][:3] == [
        ["pua-reginfo", "config"], ["pua-reginfo", "import-location"],
        ["pua-reginfo", "import-location"]]
    runner = CliRunner()
    for args, shown in steps:
        assert args[0] == "pua-reginfo", args
        result = runner.invoke(cli, args[1:], env={})
        assert result.exit_code == 0, (args, result.output, result.stderr)
        for line in shown:
            assert line in result.stdout.splitlines(), (args, line, result.stdout)
    assert (tmp_path / "pua-reginfo.db").exists()  # the store the page's settings name
