"""Retention against concurrent writers, publications and the other maintenance jobs, on
SQLite and PostgreSQL: a prune never deletes an event written after it read an AoR, a
writer still holding a removed AoR starts it anew, and nothing is lost."""

from __future__ import annotations

import asyncio
import threading

import pytest

from domain import ContactEvent
from infrastructure import retention, serve
from infrastructure.aggregate_cache import AggregateCache
from infrastructure.bootstrap import build_gateway, open_service
from infrastructure.commands import Register
from infrastructure.settings import load_settings
from infrastructure.store import StoreError, StoreUrl
from infrastructure.store_locks import PRUNE, store_lock
from projections import retained_history
from projections.publisher import Composer, PublisherProjection, PublisherView, stored_history
from sip_gateway.reginfo import build_reginfo
from tests.support import FakeClock, open_test_service, register

DAY = 86400
T0 = 1_800_000_000.0
TIME = T0 + DAY
ALICE, BOB = "sip:alice@example.com", "sip:bob@example.com"


def run(service, aor: str, callid: str, cseq: int, contact: str, expires: int) -> None:
    service.app.run(Register(aor, register(callid, cseq, (contact, expires))),
                    service.clock.now())


@pytest.fixture
def service(store_url):
    """Alice with a binding, Bob with none left, both before TIME; the clock two days on."""
    service = open_test_service(store_url, FakeClock(T0))
    run(service, ALICE, "a1", 1, "sip:alice@10.0.0.1", 3 * DAY)
    run(service, BOB, "b1", 1, "sip:bob@10.0.1.1", 3 * DAY)
    run(service, BOB, "b1", 2, "sip:bob@10.0.1.1", 0)
    service.clock.current = T0 + 2 * DAY
    run(service, "sip:last@example.com", "l1", 1, "sip:last@10.0.9.1", 60)
    service.catch_up()
    yield service
    service.close()


def versions(service, aor: str) -> tuple[int | None, list[int]]:
    found = service.app.retained(aor)
    return (found.seed.version if found.seed else None,
            [e.originator_version for e in found.events])


def write_after_reading(monkeypatch, service, aor: str, write) -> None:
    """Run `write` once the prune has read `aor`, before its transaction deletes."""
    target = service.app.identify(aor).id
    plan = retention.Retention._plan

    def planned(self, aor_id, version, before):
        found = plan(self, aor_id, version, before)
        if aor_id == target:
            write()
        return found

    monkeypatch.setattr(retention.Retention, "_plan", planned)


def test_an_aor_written_to_after_the_read_is_not_removed_but_cut_at_the_version_read(
        service, monkeypatch):
    write_after_reading(monkeypatch, service, BOB,
                        lambda: run(service, BOB, "b2", 1, "sip:bob@10.0.1.2", 3 * DAY))
    report = service.prune(TIME)
    assert (report.kept, report.removed) == (2, 0)
    assert versions(service, BOB) == (5, [6, 7])  # what the REGISTER after the read recorded
    [binding] = service.app.repository.get(service.app.identify(BOB).id).bindings.values()
    assert binding.contact == "sip:bob@10.0.1.2"
    service.catch_up()
    rows = service.view.rows()
    service.rebuild()
    assert service.view.rows() == rows and {r.aor for r in rows} >= {ALICE, BOB}


def test_events_appended_after_the_read_survive_the_cut(service, monkeypatch):
    write_after_reading(monkeypatch, service, ALICE,
                        lambda: run(service, ALICE, "a1", 2, "sip:alice@10.0.0.1", 3 * DAY))
    service.prune(TIME)
    assert versions(service, ALICE) == (3, [4])
    [binding] = service.app.repository.get(service.app.identify(ALICE).id).bindings.values()
    assert binding.cseq == 2


def test_a_writer_still_holding_a_removed_aor_starts_it_anew(service):
    cache = AggregateCache()
    app = service.app
    cache.put([app.repository.get(app.identify(BOB).id)])  # as a serve node holds it
    assert service.prune(TIME).removed == 1
    app.run(Register(BOB, register("b1", 3, ("sip:bob@10.0.1.1", 600))), service.clock.now(),
            cache)
    assert versions(service, BOB) == (None, [1, 2, 3])  # a new history, from version 1
    service.catch_up()
    [row] = service.view.rows(aor_id=str(app.identify(BOB).id))
    assert (row.cseq, row.event) == (3, "registered")


def test_a_prune_concurrent_with_writes_loses_nothing(store_url):
    service = open_test_service(store_url, FakeClock(T0))
    try:
        aors = [f"sip:u{i}@example.com" for i in range(1200)]  # more than one batch
        for i, aor in enumerate(aors):
            run(service, aor, f"c{i}", 1, f"sip:u{i}@10.1.0.1", 3 * DAY)
            if i % 2:
                run(service, aor, f"c{i}", 2, f"sip:u{i}@10.1.0.1", 0)  # none left: removed
        service.clock.current = T0 + 2 * DAY
        service.catch_up()
        start = threading.Barrier(2)
        failures: list[BaseException] = []

        def write() -> None:
            try:
                start.wait()
                for cseq in (1, 2, 3):
                    for i, aor in enumerate(aors):
                        run(service, aor, f"w{i}", cseq, f"sip:u{i}@10.1.0.1", 3 * DAY)
            except BaseException as error:  # reported by the main thread
                failures.append(error)

        writer = threading.Thread(target=write)
        writer.start()
        start.wait()
        report = service.prune(TIME)
        writer.join()
        assert failures == []
        assert report.kept + report.removed >= len(aors) // 2
        app = service.app
        for i, aor in enumerate(aors):
            found = retained_history(app, app.identify(aor).id)
            written = [(e.binding.callid, e.binding.cseq) for e in found.events
                       if isinstance(e, ContactEvent) and e.timestamp.timestamp() >= TIME]
            assert written == [(f"w{i}", 1), (f"w{i}", 2), (f"w{i}", 3)], aor
            first = found.seed.version + 1 if found.seed else 1
            assert [e.originator_version for e in found.events] == list(
                range(first, first + len(found.events)))
            [binding] = app.repository.get(app.identify(aor).id).bindings.values()
            assert (binding.callid, binding.cseq) == (f"w{i}", 3)
        service.catch_up()
        rows = service.view.rows()
        assert len(rows) == len(aors)
        service.rebuild()
        assert service.view.rows() == rows
    finally:
        service.close()


def test_settled_publications_of_removed_aors_are_forgotten(store_url):
    service = open_test_service(store_url, FakeClock(T0))
    try:
        app = service.app
        view = PublisherView(app.factory.datastore)
        projection = PublisherProjection(view, app.node, app.name, Composer(
            "example.com", stored_history(app), build_reginfo))
        projection.catch_up(app)
        carol = "sip:carol@example.com"
        for aor, user in ((ALICE, "alice"), (BOB, "bob"), (carol, "carol")):
            run(service, aor, user, 1, f"sip:{user}@10.0.0.1", 600)
        run(service, BOB, "bob", 2, "sip:bob@10.0.0.1", 0)
        run(service, carol, "carol", 2, "sip:carol@10.0.0.1", 0)
        projection.catch_up(app)
        pending = view.pending(app.node)
        for resource in (ALICE, BOB):  # accepted, and Bob's publication removed
            view.acknowledge(app.node, resource, [d.id for d in pending if d.resource == resource],
                             "etag-" + resource, T0 + 600, T0 + 1)
        view.forget_etag(app.node, BOB, T0 + 2)  # carol's documents are still waiting
        service.clock.current = T0 + 2 * DAY
        run(service, "sip:last@example.com", "l1", 1, "sip:last@10.0.9.1", 60)
        service.catch_up()
        report = service.prune(TIME)
        assert (report.removed, report.publications) == (2, 1)
        assert [(p.resource, p.pending) for p in view.publications(app.node)] == [
            (ALICE, 0), (carol, 2)]
    finally:
        service.close()


def test_a_prune_and_a_rebuild_exclude_each_other(service):
    lock = store_lock(StoreUrl.parse(service.settings.store.url), PRUNE)
    assert lock.try_acquire()
    try:
        with pytest.raises(StoreError, match="a prune is running on this store"):
            service.rebuild()
        with pytest.raises(StoreError, match="a prune or a rebuild is running"):
            service.prune(TIME)
        assert service.retain() is None  # serve skips its turn
    finally:
        lock.release()
    assert service.prune(TIME).removed == 1


def test_serve_prunes_what_retain_days_leaves_out(store_url, monkeypatch):
    settings = load_settings(overrides={"store": {"url": store_url, "retain_days": 1},
                                        "node": {"id": "test-node"}})
    service = open_service(settings, clock=FakeClock(T0))
    try:
        run(service, BOB, "b1", 1, "sip:bob@10.0.1.1", 600)
        run(service, BOB, "b1", 2, "sip:bob@10.0.1.1", 0)
        service.clock.current = T0 + 2 * DAY
        run(service, ALICE, "a1", 1, "sip:alice@10.0.0.1", 600)
        service.catch_up()
        gateway = build_gateway(service)
        monkeypatch.setattr(serve, "RETENTION_DELAY", 0)
        reports = []

        async def first_prune() -> None:
            done = asyncio.Event()
            loop = asyncio.get_running_loop()
            retain = service.retain

            def retained(should_stop):
                reports.append(retain(should_stop))
                loop.call_soon_threadsafe(done.set)
                return reports[-1]

            monkeypatch.setattr(service, "retain", retained)
            job = asyncio.ensure_future(gateway._retain())
            await done.wait()
            job.cancel()

        asyncio.run(first_prune())
        [report] = reports
        assert report.before == T0 + DAY and report.removed == 1
        assert service.horizon.read() == T0 + DAY
    finally:
        service.close()


@pytest.mark.parametrize("by", ["serve", "command line"])
def test_serves_prune_rests_as_long_as_it_works_and_a_command_line_prune_does_not(
        service, monkeypatch, by):
    rests: list[float] = []
    monkeypatch.setattr(retention.time, "sleep", rests.append)
    if by == "serve":  # retain_days = 1, two days on: the history before TIME
        service.settings = load_settings(overrides={
            "store": {"url": service.settings.store.url, "retain_days": 1},
            "node": {"id": "test-node"}})
        report = service.retain()
    else:
        report = service.prune(TIME)
    assert report.before == TIME and report.removed == 1
    if by == "serve":
        assert len(rests) >= 2 and all(rest >= 0 for rest in rests)  # a page, a batch
    else:
        assert rests == []
