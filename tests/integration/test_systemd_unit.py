"""scripts/packaging/pua-reginfo.service: systemd accepts it without a word, it waits
longer for a stop than serve's drain can take, and its hardening stays."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from infrastructure.serve import SETTLE_TIMEOUT
from infrastructure.settings import StoreSettings
from infrastructure.udp_workers import STOP_TIMEOUT

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "scripts" / "packaging" / "pua-reginfo.service"
INSTALLED = "/opt/pua-reginfo/bin/pua-reginfo"


def systemd_analyze(*args: str) -> subprocess.CompletedProcess:
    program = shutil.which("systemd-analyze")
    if program is None:
        pytest.fail("systemd-analyze is needed (Debian package systemd; scripts/test installs it)")
    return subprocess.run([program, *args], capture_output=True, text=True, timeout=60)


def installed(tmp_path: Path, text: str | None = None) -> Path:
    """A copy of the unit whose ExecStart is the pua-reginfo installed here (verify refuses
    a unit whose program does not exist)."""
    program = shutil.which("pua-reginfo")
    if program is None:
        pytest.fail("pua-reginfo is not installed (scripts/test installs it)")
    path = tmp_path / "pua-reginfo.service"
    path.write_text((text or UNIT.read_text()).replace(INSTALLED, program))
    return path


def complaints(unit: Path) -> str:
    """What `systemd-analyze verify` says of `unit`: nothing when systemd takes it as is
    (it only warns of an unknown key or a bad value, and exits 0)."""
    result = systemd_analyze("verify", "--man=no", str(unit))
    return (result.stdout + result.stderr).strip() or ("" if result.returncode == 0 else
                                                       f"exit {result.returncode}")


def settings_of(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines()
             if "=" in line and not line.startswith("#"))
    return {key: value for key, value in pairs}


def test_systemd_takes_the_unit_without_a_word(tmp_path):
    assert complaints(installed(tmp_path)) == ""


@pytest.mark.parametrize("change", [
    ("Type=notify", "Tpye=notify"),  # an unknown key: systemd ignores it
    ("Type=notify", "Type=notfy"),  # a bad value: ignored too
    ("KillSignal=SIGTERM", "KillSignal=SIGTREM"),
    (f"ExecStart={INSTALLED}", "ExecStart=/nonexistent/pua-reginfo"),
])
def test_a_broken_unit_is_caught(tmp_path, change):
    broken = UNIT.read_text().replace(*change)
    assert broken != UNIT.read_text()
    assert complaints(installed(tmp_path, broken)) != ""


def test_the_unit_runs_serve_as_its_own_user_with_the_packaged_layout():
    unit = settings_of(UNIT.read_text())
    assert unit["Type"] == "notify"
    assert unit["ExecStart"] == f"{INSTALLED} serve --config /etc/pua-reginfo/pua-reginfo.toml"
    assert unit["User"] == "pua-reginfo"
    assert unit["StateDirectory"] == unit["ConfigurationDirectory"] == "pua-reginfo"
    assert unit["WorkingDirectory"] == "/var/lib/pua-reginfo"
    assert unit["Restart"] == "on-failure"


def test_systemd_waits_longer_for_a_stop_than_the_drain_takes():
    unit = settings_of(UNIT.read_text())
    drain = StoreSettings().timeout + 3 * SETTLE_TIMEOUT + STOP_TIMEOUT
    assert unit["KillSignal"] == "SIGTERM"
    assert int(unit["TimeoutStopSec"]) > drain


def test_the_unit_stays_hardened(tmp_path):
    threshold = ["security", "--offline=yes", "--threshold=30"]  # exposure 3.0 of 10
    assert systemd_analyze(*threshold, str(installed(tmp_path))).returncode == 0
    lax = "\n".join(line for line in UNIT.read_text().splitlines()
                    if not line.startswith(("Protect", "Private", "Restrict", "SystemCall")))
    assert systemd_analyze(*threshold, str(installed(tmp_path, lax))).returncode != 0
