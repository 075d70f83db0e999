"""`[auth] credentials`: an htdigest file or Kamailio's `subscriber` table on PostgreSQL,
loaded whole, refused at start with a line per problem (never showing an HA1), and kept
fresh: a file edited while serving is read again, a reload with problems changes nothing."""

from __future__ import annotations

import asyncio
import os

import psycopg
import pytest
from click.testing import CliRunner

from infrastructure import credentials as credentials_module
from infrastructure.cli import cli
from infrastructure.credentials import Credentials, open_credentials
from infrastructure.settings import AuthSettings, SettingsError, load_settings
from sip_gateway.auth import MD5, SHA256, ha1

REALM = "example.com"
ALICE = ha1(MD5, "alice", REALM, "secret")
BOB, BOB256 = ha1(MD5, "bob", REALM, "hunter2"), ha1(SHA256, "bob", REALM, "hunter2")


def settings(location: str):
    return load_settings(overrides={"auth": {"realm": REALM, "credentials": location}}, env={})


def test_an_htdigest_file_with_other_realms_comments_and_a_sha256_field(tmp_path):
    path = tmp_path / "users.htdigest"
    path.write_text(f"# written by htdigest\nalice:{REALM}:{ALICE}\n\n"
                    f"alice:other.org:{'0' * 32}\nbob:{REALM}:{BOB}:{BOB256.upper()}\n"
                    f"carol:{REALM}::{BOB256}\n")
    users = open_credentials(settings(str(path)))
    assert users.lookup("alice").md5 == ALICE and users.lookup("alice").sha256 is None
    assert (users.lookup("bob").md5, users.lookup("bob").sha256) == (BOB, BOB256)
    assert users.lookup("carol").algorithms == (SHA256,)
    assert users.lookup("mallory") is None
    assert ALICE not in repr(users.lookup("alice"))


def test_every_problem_of_a_file_is_a_line_naming_it_and_never_an_ha1(tmp_path):
    path = tmp_path / "users.htdigest"
    secret_looking = "f" * 31
    path.write_text(f"alice:{REALM}:{ALICE}\nbroken line\nbob:{REALM}:{secret_looking}\n"
                    f"alice:{REALM}:{ALICE}\ncarol:{REALM}:{ALICE}:xyz\ndave:{REALM}:\n")
    with pytest.raises(SettingsError) as refused:
        open_credentials(settings(str(path)))
    assert refused.value.problems == [
        f"[auth] credentials {path} line 2: not user:realm:HA1 (or user:realm:HA1:HA1-SHA-256)",
        f"[auth] credentials {path} line 3: the MD5 HA1 is not 32 hex digits",
        f"[auth] credentials {path} line 4: user 'alice' is listed twice for realm 'example.com'",
        f"[auth] credentials {path} line 5: the SHA-256 HA1 is not 64 hex digits",
        f"[auth] credentials {path} line 6: no HA1",
    ]
    assert not any(secret_looking in p or ALICE in p for p in refused.value.problems)


def test_a_missing_or_unreadable_file_is_one_line(tmp_path):
    with pytest.raises(SettingsError, match="cannot read .*missing.htdigest: No such file"):
        open_credentials(settings(str(tmp_path / "missing.htdigest")))
    if os.geteuid() != 0:  # root reads anything
        path = tmp_path / "locked.htdigest"
        path.write_text(f"alice:{REALM}:{ALICE}\n")
        path.chmod(0)
        with pytest.raises(SettingsError, match="Permission denied"):
            open_credentials(settings(str(path)))


def test_config_check_reports_the_credentials_problems(tmp_path):
    path = tmp_path / "users.htdigest"
    path.write_text("nonsense\n")
    config = tmp_path / "pua-reginfo.toml"
    config.write_text(f'[auth]\nrealm = "{REALM}"\ncredentials = "{path}"\n')
    result = CliRunner().invoke(cli, ["config", "check", str(config)], env={})
    assert result.exit_code == 1
    assert result.stderr == (f"{config}: [auth] credentials {path} line 1: not user:realm:HA1 "
                             "(or user:realm:HA1:HA1-SHA-256)\n")
    path.write_text(f"alice:{REALM}:{ALICE}\n")
    assert CliRunner().invoke(cli, ["config", "check", str(config)], env={}).exit_code == 0


@pytest.mark.parametrize("auth, message", [
    ({"realm": REALM}, "[auth] realm needs [auth] credentials"),
    ({"credentials": "/etc/users"}, "[auth] credentials needs [auth] realm"),
    ({"realm": 'a"b', "credentials": "/x"}, "must be printable, without quotes"),
    ({"realm": REALM, "credentials": "/x", "nonce_lifetime": 0}, "nonce_lifetime must be positive"),
])
def test_auth_settings_that_cannot_work_are_refused(auth, message):
    with pytest.raises(SettingsError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_settings(overrides={"auth": auth}, env={})


def test_an_edited_file_is_read_again_and_a_broken_edit_keeps_the_users(tmp_path, monkeypatch,
                                                                          caplog):
    monkeypatch.setattr(credentials_module, "FILE_CHECK", 0.01)
    path = tmp_path / "users.htdigest"
    path.write_text(f"alice:{REALM}:{ALICE}\n")
    users = Credentials(AuthSettings(REALM, str(path)))
    assert users.load() == []

    async def edits():
        fresh = asyncio.create_task(users.keep_fresh())
        path.write_text(f"alice:{REALM}:{ALICE}\nbob:{REALM}:{BOB}\n")
        for _ in range(200):
            await asyncio.sleep(0.01)
            if users.lookup("bob"):
                break
        path.write_text("garbage\n")
        await asyncio.sleep(0.2)
        fresh.cancel()

    asyncio.run(edits())
    assert users.lookup("bob") is not None and users.lookup("alice") is not None
    assert "credentials not reloaded" in caplog.text and "garbage" not in caplog.text


SUBSCRIBER = """CREATE TABLE subscriber (
    id SERIAL PRIMARY KEY NOT NULL, username VARCHAR(64) DEFAULT '' NOT NULL,
    domain VARCHAR(64) DEFAULT '' NOT NULL, password VARCHAR(64) DEFAULT '' NOT NULL,
    ha1 VARCHAR(128) DEFAULT '' NOT NULL, ha1b VARCHAR(128) DEFAULT '' NOT NULL,
    CONSTRAINT subscriber_account_idx UNIQUE (username, domain))"""  # Kamailio's auth_db


@pytest.mark.postgres
def test_kamailios_subscriber_table(postgres_url):
    with psycopg.connect(postgres_url, autocommit=True) as db:
        db.execute(SUBSCRIBER)
        db.execute("INSERT INTO subscriber (username, domain, password, ha1) VALUES "
                   "(%s, %s, 'secret', %s), (%s, %s, '', %s), (%s, 'other.org', '', %s)",
                   ("alice", REALM, ALICE, "bob", REALM, BOB256, "carol", ALICE))
    users = open_credentials(settings(postgres_url))
    assert users.lookup("alice").md5 == ALICE
    assert users.lookup("bob").algorithms == (SHA256,)  # told apart by length, as auth_db does
    assert users.lookup("carol") is None
    with psycopg.connect(postgres_url, autocommit=True) as db:
        db.execute("ALTER TABLE subscriber ADD COLUMN ha1_sha256 VARCHAR(64)")
        db.execute("UPDATE subscriber SET ha1 = %s, ha1_sha256 = %s WHERE username = 'bob'",
                   (BOB, BOB256))
        db.execute("INSERT INTO subscriber (username, domain, ha1) VALUES ('dave', %s, 'xyz')",
                   (REALM,))
    with pytest.raises(SettingsError) as refused:
        open_credentials(settings(postgres_url))
    assert refused.value.problems == ["[auth] credentials: subscriber row of user 'dave': ha1 "
                                      "is not 32 (MD5) or 64 (SHA-256) hex digits"]
    with psycopg.connect(postgres_url, autocommit=True) as db:
        db.execute("DELETE FROM subscriber WHERE username = 'dave'")
    assert open_credentials(settings(postgres_url)).lookup("bob").algorithms == (SHA256, MD5)


@pytest.mark.postgres
def test_a_database_without_the_table_is_one_line(postgres_url):
    with pytest.raises(SettingsError, match='cannot read table subscriber: relation "subscriber" '
                                            "does not exist"):
        open_credentials(settings(postgres_url))
