"""`[store] sqlite_synchronous`: every connection the store opens holds commits as set."""

from __future__ import annotations

import pytest

from infrastructure.bootstrap import open_service
from infrastructure.settings import SettingsError, load_settings
from infrastructure.sqlite_durability import set_synchronous

SYNCHRONOUS = {"normal": 1, "full": 2}  # SQLite's numbers for the pragma's values


def _synchronous(datastore) -> int:
    with datastore.transaction(commit=False) as cursor:
        cursor.execute("PRAGMA synchronous")
        return cursor.fetchone()[0]


@pytest.mark.parametrize("mode", ["normal", "full"])
def test_the_setting_reaches_every_connection(sqlite_url, mode):
    settings = load_settings(overrides={"store": {"url": sqlite_url, "sqlite_synchronous": mode},
                                        "node": {"id": "test-node"}})
    service = open_service(settings)
    try:
        datastore = service.app.factory.datastore
        assert _synchronous(datastore) == SYNCHRONOUS[mode]
        # a connection made later (the pool closes idle ones) gets it too
        made = datastore.pool._create_connection()
        try:
            assert made._sqlite_conn.execute("PRAGMA synchronous").fetchone()[0] \
                == SYNCHRONOUS[mode]
        finally:
            made.close()
    finally:
        service.close()


def test_an_unknown_mode_is_refused_by_name():
    with pytest.raises(SettingsError, match="sqlite_synchronous"):
        load_settings(overrides={"store": {"sqlite_synchronous": "off"}}, env={})
    with pytest.raises(ValueError, match="sqlite_synchronous"):
        set_synchronous(object(), "off")


def test_an_unknown_event_loop_is_refused_by_name():
    with pytest.raises(SettingsError, match="event_loop"):
        load_settings(overrides={"node": {"event_loop": "tokio"}}, env={})
