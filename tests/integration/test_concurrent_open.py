"""Processes opening one PostgreSQL store at the same moment all succeed.

Two nodes started together on a new database, and CLI commands run in parallel on an
existing one, each open the store: the tables must be created by one of them only, and
an open that finds them in place must run no DDL that could collide with another's.
"""

from __future__ import annotations

import threading

import psycopg
import pytest

from infrastructure.schema import SCHEMA_VERSION
from infrastructure.commands import Register
from tests.support import open_test_service, register

OPENERS = 8


def open_together(url: str) -> list[BaseException]:
    errors: list[BaseException] = []
    barrier = threading.Barrier(OPENERS)

    def opener() -> None:
        try:
            barrier.wait()
            service = open_test_service(url)
            try:
                service.view.rows()
            finally:
                service.close()
        except BaseException as error:  # surfaced by the caller
            errors.append(error)

    threads = [threading.Thread(target=opener) for _ in range(OPENERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return errors


@pytest.mark.postgres
def test_nodes_opening_a_new_database_together_all_open_it(postgres_databases):
    for _ in range(4):
        url = postgres_databases.create()
        assert open_together(url) == []
        with psycopg.connect(url) as connection:
            version = connection.execute(
                "SELECT version FROM pua_reginfo_schema WHERE component = 'store'").fetchone()
        assert version == (SCHEMA_VERSION,)


@pytest.mark.postgres
def test_commands_opening_an_existing_database_in_parallel_all_succeed(postgres_url):
    service = open_test_service(postgres_url)
    service.app.run(Register("sip:alice@example.com", register("c1", 1, ("sip:a@10.0.0.1", 3600))),
                         1_900_000_000.0)
    service.close()
    for _ in range(6):
        assert open_together(postgres_url) == []


def test_a_store_without_the_schema_marker_is_completed_and_marked(sqlite_url):
    """A store an older version created (no marker) opens, gets what is missing, is marked."""
    service = open_test_service(sqlite_url)
    service.app.run(Register("sip:alice@example.com", register("c1", 1, ("sip:a@10.0.0.1", 3600))),
                         1_900_000_000.0)
    with service.app.factory.datastore.transaction(commit=True) as cursor:
        cursor.execute("DROP TABLE pua_reginfo_schema")
        cursor.execute("DROP TABLE reginfo_outbox")
    service.close()
    again = open_test_service(sqlite_url)
    try:
        assert [r.contact for r in again.view.rows()] == ["sip:a@10.0.0.1"]
        with again.app.factory.datastore.transaction(commit=False) as cursor:
            cursor.execute("SELECT COUNT(*) AS n FROM reginfo_outbox")
            assert cursor.fetchone()["n"] == 0
            cursor.execute("SELECT version FROM pua_reginfo_schema")
            assert cursor.fetchone()["version"] == SCHEMA_VERSION
    finally:
        again.close()
