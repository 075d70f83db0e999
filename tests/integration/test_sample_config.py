"""`pua-reginfo config sample`: the shipped settings file lists every key settings.py knows,
with its default, and passes `config check` as written."""

from __future__ import annotations

import re
import subprocess
from dataclasses import MISSING, fields
from pathlib import Path

from click.testing import CliRunner

from infrastructure.cli import cli
from infrastructure.settings import Settings, SubscribeSettings, load_settings

ROOT = Path(__file__).resolve().parents[2]
HEADER = re.compile(r"^(?:# )?\[\[?([a-z_]+)\]\]?$")
ASSIGNMENT = re.compile(r"^(# )?([a-z_]+) = ")


def sample() -> str:
    result = CliRunner().invoke(cli, ["config", "sample"], env={})
    assert result.exit_code == 0, result.output
    return result.stdout


def listed(text: str) -> dict[str, dict[str, bool]]:
    """section -> key -> whether the key is commented out."""
    found: dict[str, dict[str, bool]] = {}
    section = None
    for line in text.splitlines():
        if header := HEADER.match(line):
            section = header[1]
            found[section] = {}
        elif (assignment := ASSIGNMENT.match(line)) and section is not None:
            found[section][assignment[2]] = bool(assignment[1])
    return found


def known() -> dict[str, list]:
    """section -> the dataclass fields settings.py reads for it."""
    defaults = Settings()
    sections = {f.name: fields(getattr(defaults, f.name)) for f in fields(Settings)
                if f.name != "subscribe"}
    return {**sections, "subscribe": fields(SubscribeSettings)}


def test_the_sample_lists_every_key_settings_knows():
    keys = listed(sample())
    assert {section: sorted(keys.get(section, {})) for section in known()} == {
        section: sorted(f.name for f in section_fields)
        for section, section_fields in known().items()}


def test_as_written_the_sample_changes_no_default(tmp_path):
    path = tmp_path / "pua-reginfo.toml"
    path.write_text(sample())
    assert load_settings(path, env={}) == load_settings(None, env={})


def test_only_keys_without_a_spellable_default_are_commented_out():
    defaults = Settings()
    commented = {(section, key) for section, keys in listed(sample()).items()
                 for key, is_commented in keys.items() if is_commented}
    no_literal = {(section, f.name) for section, section_fields in known().items()
                  if section != "subscribe" for f in section_fields
                  if getattr(getattr(defaults, section), f.name) is None
                  or f.default_factory is not MISSING}
    no_literal |= {("subscribe", f.name) for f in fields(SubscribeSettings)}  # none by default
    assert commented == no_literal


def test_every_commented_out_key_is_a_valid_example(tmp_path):
    uncommented = re.sub(r"^# (\[\[subscribe\]\]$|[a-z_]+ = )", r"\1", sample(),
                         flags=re.MULTILINE)
    path = tmp_path / "pua-reginfo.toml"
    path.write_text(uncommented)
    settings = load_settings(path, env={})
    assert settings.reginfo.server_address == "sip:reginfo@127.0.0.1:5060"
    assert settings.store.retain_days == 90 and settings.node.id == "registrar-1"
    assert [s.uri for s in settings.subscribe] == ["sip:alice@example.com"]


def test_config_check_passes_the_sample_as_written(tmp_path):
    path = tmp_path / "pua-reginfo.toml"
    path.write_text(sample())
    result = CliRunner().invoke(cli, ["config", "check", str(path)], env={})
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{path}: ok\n"


def test_the_readme_install_steps_put_the_store_in_the_state_directory(tmp_path):
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Installing as a service\n", 1)[1].split("\n## ", 1)[0]
    [expression] = re.findall(r"\| sed '([^']+)'", section)
    edited = subprocess.run(["sed", expression], input=sample(), capture_output=True, text=True,
                            check=True).stdout
    path = tmp_path / "pua-reginfo.toml"
    path.write_text(edited)
    assert load_settings(path, env={}).store.url == "sqlite:////var/lib/pua-reginfo/pua-reginfo.db"
    assert edited.replace("/var/lib/pua-reginfo/", "./") == sample()  # and nothing else
