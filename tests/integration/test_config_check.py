"""`pua-reginfo config check [FILE]`: every problem `serve` would stop at, a line each;
and `serve` refusing bad listen addresses and taken ports with the address named."""

from __future__ import annotations

import socket

import pytest
from click.testing import CliRunner

from infrastructure.cli import cli

GOOD = """
[reginfo]
default_domain = "example.com"
outbound_proxy = "sip:127.0.0.1:5080"
server_address = "sip:reginfo@127.0.0.1:5060"
[listen]
udp = ["127.0.0.1:5060"]
tcp = ["127.0.0.1:5060"]
[[subscribe]]
uri = "sip:alice@example.com"
"""


def check(tmp_path, text: str | None):
    path = tmp_path / "pua-reginfo.toml"
    if text is not None:
        path.write_text(text)
    return CliRunner().invoke(cli, ["config", "check", str(path)], env={})


def test_a_good_file_is_ok(tmp_path):
    result = check(tmp_path, GOOD)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip().endswith(": ok")


@pytest.mark.parametrize("text, message", [
    ("[registar]\ndomains = []\n", "unknown settings section [registar]"),
    ("[listen]\nupd = []\n", "unknown setting [listen] upd"),
    ("[listen\nudp = []\n", "is not valid TOML"),
    ('[reginfo]\npublish_reginfo = "maybe"\n', "[reginfo] publish_reginfo must be true or false"),
    ('[listen]\nudp = ["127.0.0.1"]\n',
     "[listen] udp: '127.0.0.1' is not an IP address and port"),
    ('[listen]\ntcp = ["localhost:5060"]\n',
     "[listen] tcp: 'localhost:5060' is not an IP address and port"),
    ("[registrar]\nmin_expires = 7200\n", "[registrar] needs 0 < min_expires"),
    ('[registrar]\ndomains = ["exa mple.com"]\n',
     "[registrar] domains: 'exa mple.com' is not a host name"),
    ('[security]\ntrusted = ["10.0.0.0/33"]\n', "[security] trusted: '10.0.0.0/33'"),
    ('[reginfo]\noutbound_proxy = "http://proxy"\n', "[reginfo] outbound_proxy:"),
    ('[[subscribe]]\nuri = "sip:alice@example.com"\n',
     "subscriptions need [reginfo] server_address"),
    ('[store]\nurl = "mysql://db/reginfo"\n', "[store] url: unsupported store URL scheme"),
    ('[reginfo]\noutbound_proxy = "sip:127.0.0.1:5080;transport=tcp"\n[listen]\ntcp = []\n',
     "is reached over TCP"),
    ("[notifier]\nmin_expires = 100000\n", "[notifier] needs 0 < min_expires"),
    ('[metrics]\nlisten = "9090"\n', "[metrics] listen: '9090' is not an IP address and port"),
    ("[metrics]\nready_max_lag = 0\n", "[metrics] ready_max_lag must be positive"),
    ('[log]\nlevel = "verbose"\n', "[log] level must be debug, info, warning or error"),
    ('[log]\nformat = "xml"\n', '[log] format must be "text" or "json"'),
    (None, "does not exist"),
])
def test_each_broken_file_is_refused_with_its_own_message(tmp_path, text, message):
    result = check(tmp_path, text)
    assert result.exit_code == 1
    assert message in result.stderr, result.stderr


def test_every_problem_is_a_line_of_its_own(tmp_path):
    result = check(tmp_path, '[listen]\nudp = ["127.0.0.1"]\n[registrar]\nmin_expires = 7200\n'
                             '[store]\nurl = "mysql://db"\n')
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 3, result.stderr
    assert all(line.startswith(str(tmp_path)) for line in lines)


def test_serve_refuses_a_bad_listen_address_as_a_usage_error(tmp_path):
    result = CliRunner().invoke(cli, ["serve", "--udp", "127.0.0.1", "--store",
                                      f"sqlite:///{tmp_path / 'x.db'}"], env={})
    assert result.exit_code == 1, result.stderr  # was 70, "internal error: ValueError"
    assert result.stderr.strip() == ("pua-reginfo: error: [listen] udp: '127.0.0.1' is not "
                                     "an IP address and port (127.0.0.1:5060, [::1]:5060)")


def test_serve_names_the_address_it_cannot_bind(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        result = CliRunner().invoke(cli, ["serve", "--udp", f"127.0.0.1:{port}", "--tcp",
                                          f"127.0.0.1:{port}", "--store",
                                          f"sqlite:///{tmp_path / 'x.db'}"], env={})
    assert result.exit_code == 1
    assert f"cannot listen: udp 127.0.0.1:{port}: Address already in use" in result.stderr
