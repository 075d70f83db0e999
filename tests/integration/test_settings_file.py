"""Settings files: the DESIGN example loads; typos and bad TOML are refused by name."""

import pytest

from infrastructure.settings import SettingsError, load_settings

DESIGN_EXAMPLE = """
[reginfo]
default_domain  = "example.com"
publish_reginfo = true
outbound_proxy  = "sip:127.0.0.1:5080"
server_address  = "sip:reginfo@127.0.0.1:5060"
[usrloc]
use_domain = false
[notify]
mode = "rfc"
accept_unsolicited_notify = false
reply_code = 200
[registrar]
domains = ["example.com"]
min_expires = 60
max_expires = 3600
default_expires = 3600
[security]
trusted = ["127.0.0.0/8", "::1/128"]
[listen]
udp = ["127.0.0.1:5060"]
tcp = ["127.0.0.1:5060"]
[store]
url = "sqlite:///./pua-reginfo.db"
[[subscribe]]
uri = "sip:alice@example.com"
expires = 3761
"""


def test_the_design_example_file_loads(tmp_path):
    path = tmp_path / "pua-reginfo.toml"
    path.write_text(DESIGN_EXAMPLE)
    settings = load_settings(path, env={"PUA_REGINFO_NOTIFY_MODE": "kamailio"})
    assert settings.reginfo.default_domain == "example.com"
    assert settings.registrar.domains == ("example.com",)
    assert settings.subscribe[0].uri == "sip:alice@example.com"
    assert settings.subscribe[0].expires == 3761
    assert settings.notify.mode == "kamailio"  # environment beats the file


@pytest.mark.parametrize("text, message", [
    ("[usrlock]\nuse_domain = true\n", "unknown settings section [usrlock]"),
    ("[store]\nurl = 5\n", "[store] url must be a string"),
    ("[[subscribe]]\nexpires = 10\n", "every [[subscribe]] needs a uri"),
    ("[[subscribe]]\nuri = 'sip:a@b'\nexpire = 10\n", "unknown setting [[subscribe]] expire"),
    ("[registrar]\nmin_expires = true\n", "must be a whole number"),
    ("store = 'x'\n", "[store] must be a table"),
    ("[store\n", "is not valid TOML"),
])
def test_bad_files_are_refused_with_the_reason(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(SettingsError) as error:
        load_settings(path, env={})
    assert message in str(error.value)


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings(tmp_path / "nope.toml", env={})
