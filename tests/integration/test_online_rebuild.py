"""`rebuild` while nodes keep the usrloc view moving: nothing lost, never a partial view.

A node registers and catches the view up in a loop (what `serve` does after each commit);
rebuilds run again and again beside it; a reader counts the rows all along. Every rebuild
must leave the view as a quiet rebuild would, and no reader may see fewer bindings than
the ones registered before it all began.
"""

from __future__ import annotations

import threading

import psycopg
import pytest

from projections.usrloc import rebuild as rebuild_module
from projections.usrloc import view as view_module
from projections.usrloc.rebuild import RebuildIncomplete
from infrastructure.commands import Register
from tests.support import open_test_service, register

T0 = 1_900_000_000.0
QUIET_AORS = 300
REBUILDS = 6


def test_rebuilds_while_a_node_registers_lose_nothing_and_readers_never_see_a_partial_view(
        store_url):
    setup = open_test_service(store_url)
    for n in range(QUIET_AORS):
        setup.app.run(Register(f"sip:quiet{n}@example.com",
                           register(f"q{n}", 1, (f"sip:quiet{n}@10.1.{n // 250}.{n % 250}", 3600))),
                           T0)
    setup.catch_up()
    setup.close()
    stop = threading.Event()
    errors: list[BaseException] = []
    smallest_view: list[int] = []
    registered: list[int] = [0]

    def node() -> None:
        service = open_test_service(store_url)
        try:
            n = 0
            while not stop.is_set():
                for _ in range(5):
                    n += 1
                    service.app.run(Register(f"sip:hot{n % 100}@example.com",
                                         register(f"h{n % 100}", n, (f"sip:h{n % 100}@10.2.0.1", 3600))),
                                         T0 + 1)
                registered[0] = n
                service.catch_up()
        except BaseException as error:  # surfaced below
            errors.append(error)
        finally:
            service.close()

    def reader() -> None:
        service = open_test_service(store_url)
        try:
            while not stop.is_set():
                smallest_view.append(service.view.count())
        except BaseException as error:
            errors.append(error)
        finally:
            service.close()

    threads = [threading.Thread(target=node), threading.Thread(target=reader)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(REBUILDS):
            rebuilder = open_test_service(store_url)
            try:
                rebuilder.rebuild()
            finally:
                rebuilder.close()
            check = open_test_service(store_url)  # catches up like any command
            try:
                assert check.view.count() >= QUIET_AORS
            finally:
                check.close()
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert errors == []
    assert smallest_view and min(smallest_view) >= QUIET_AORS
    final = open_test_service(store_url)
    try:
        live = final.view.rows()
        assert final.view.max_tracking_id(final.app.name) == final.app.recorder.max_notification_id()
        final.rebuild()  # quiet now
        assert final.view.rows() == live
        assert len(live) == QUIET_AORS + min(registered[0], 100)
    finally:
        final.close()


@pytest.mark.postgres
def test_a_reader_holding_the_view_makes_the_rebuild_stop_cleanly_not_hang(postgres_url,
                                                                            monkeypatch):
    monkeypatch.setattr(rebuild_module, "SWAP_ATTEMPTS", 2)
    monkeypatch.setattr(view_module, "SWAP_LOCK_TIMEOUT", 1)
    service = open_test_service(postgres_url)
    try:
        service.app.run(Register("sip:alice@example.com", register("c1", 1, ("sip:a@10.0.0.1", 3600))),
                             T0)
        service.catch_up()
        before = service.view.rows()
        with psycopg.connect(postgres_url) as reader:  # a transaction left open on the view
            reader.execute("SELECT COUNT(*) FROM usrloc_location").fetchone()
            with pytest.raises(RebuildIncomplete, match="stayed locked"):
                service.rebuild()
            assert reader.execute("SELECT COUNT(*) FROM usrloc_location").fetchone() == (1,)
        assert service.view.rows() == before
        service.rebuild()  # the reader is gone
        assert service.view.rows() == before
    finally:
        service.close()
