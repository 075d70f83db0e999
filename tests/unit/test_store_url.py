"""Store URLs become eventsourcing environments; secrets never reach messages."""

import pytest

from infrastructure.store import StoreError, StoreUrl


def test_the_default_sqlite_url_is_a_relative_file():
    store = StoreUrl.parse("sqlite:///./pua-reginfo.db")
    assert store.kind == "sqlite"
    assert store.env["PERSISTENCE_MODULE"] == "eventsourcing.sqlite"
    assert store.env["SQLITE_DBNAME"] == "pua-reginfo.db"


def test_an_absolute_sqlite_path_keeps_its_leading_slash():
    assert StoreUrl.parse("sqlite:////tmp/x.db").env["SQLITE_DBNAME"] == "/tmp/x.db"


def test_a_postgresql_url_maps_every_part_and_hides_the_password():
    store = StoreUrl.parse("postgresql://reg:s%40cret@db.example:6543/ledger?schema=pua&lock_timeout=9")
    env = store.env
    assert (env["POSTGRES_HOST"], env["POSTGRES_PORT"], env["POSTGRES_DBNAME"]) == (
        "db.example", "6543", "ledger")
    assert (env["POSTGRES_USER"], env["POSTGRES_PASSWORD"]) == ("reg", "s@cret")
    assert (env["POSTGRES_SCHEMA"], env["POSTGRES_LOCK_TIMEOUT"]) == ("pua", "9")
    assert "s%40cret" not in store.display and "***" in store.display


def test_postgresql_defaults_to_the_postgres_user_and_an_empty_password():
    env = StoreUrl.parse("postgresql://127.0.0.1/reginfo").env
    assert (env["POSTGRES_USER"], env["POSTGRES_PASSWORD"], env["POSTGRES_PORT"]) == (
        "postgres", "", "5432")


@pytest.mark.parametrize("url, message", [
    ("pua-reginfo.db", "needs a scheme"),
    ("mysql://h/db", "unsupported store URL scheme 'mysql'"),
    ("sqlite://relative.db", "must look like sqlite:///path"),
    ("postgresql://h:5432/", "names no database"),
    ("postgresql://u:pw@h:notaport/db", "bad port"),
])
def test_unusable_urls_are_refused(url, message):
    with pytest.raises(StoreError, match=message):
        StoreUrl.parse(url)


def test_the_password_is_hidden_in_errors_too():
    with pytest.raises(StoreError) as error:
        StoreUrl.parse("postgresql://u:topsecret@h:notaport/db")
    assert "topsecret" not in str(error.value)
