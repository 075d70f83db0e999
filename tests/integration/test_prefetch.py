"""AoRs met for the first time cost no load query: one existence query per batch tells
the new ones from those with a history, and a race with another writer still conflicts."""

from __future__ import annotations

import asyncio

import pytest
from eventsourcing.persistence import IntegrityError

from infrastructure.clock import SystemClock
from infrastructure.command_handlers import aggregates_named, execute
from infrastructure.commands import Register
from infrastructure.executor import GroupCommitExecutor
from infrastructure.unit_of_work import UnitOfWork
from tests.support import open_test_service, register

NOW = 1_900_000_000.0
ALICE, BOB = "sip:alice@example.com", "sip:bob@example.com"


@pytest.fixture
def service(store_url):
    opened = open_test_service(store_url)
    yield opened
    opened.close()


def _register(uow: UnitOfWork, aor: str, callid: str, contact: str):
    return execute(uow, Register(aor, register(callid, 1, (contact, 3600))))


def test_stored_among_names_the_aors_with_a_history(service):
    app = service.app
    service.app.run(Register(ALICE, register("a1", 1, ("sip:alice@10.0.0.1", 3600))), NOW)
    alice, bob = app.identify(ALICE).id, app.identify(BOB).id
    assert app.stored_among([alice, bob]) == {alice}
    assert app.stored_among([]) == set()
    many = [app.identify(f"sip:u{n}@example.com").id for n in range(1200)]  # several chunks
    assert app.stored_among(many + [alice]) == {alice}


def test_a_prefetched_new_aor_is_started_without_a_load(service, monkeypatch):
    app = service.app
    app.run(Register(ALICE, register("a1", 1, ("sip:alice@10.0.0.1", 3600))), NOW)
    loads = []
    real_get = app.repository.get
    monkeypatch.setattr(app.repository, "get", lambda key, **kw: loads.append(key) or real_get(key, **kw))
    commands = [Register(ALICE, register("a1", 2, ("sip:alice@10.0.0.1", 3600))),
                Register(BOB, register("b1", 1, ("sip:bob@10.0.0.2", 3600))),
                Register("sip:", register("x", 1, ("sip:x@10.0.0.3", 3600)))]  # unreadable
    uow = UnitOfWork(app, NOW + 1)
    uow.prefetch(key for command in commands for key in aggregates_named(app, command))
    assert uow.absent == {app.identify(BOB).id}
    _register(uow, ALICE, "a1", "sip:alice@10.0.0.1")
    _register(uow, BOB, "b1", "sip:bob@10.0.0.2")
    assert loads == [app.identify(ALICE).id]  # bob: no query
    uow.commit()
    assert [b.contact for b in app.run(Register(BOB, None), NOW + 2)] == ["sip:bob@10.0.0.2"]


def test_an_aor_created_elsewhere_after_the_prefetch_conflicts(service):
    app = service.app
    uow = UnitOfWork(app, NOW)
    uow.prefetch([app.identify(BOB).id])
    app.run(Register(BOB, register("b-other", 1, ("sip:bob@10.9.9.9", 3600))), NOW)  # a rival
    _register(uow, BOB, "b1", "sip:bob@10.0.0.2")
    with pytest.raises(IntegrityError):
        uow.commit()


def test_the_group_commit_decides_again_after_such_a_race(service, monkeypatch):
    """The executor's batch conflicts, is decided again on fresh state, and both
    REGISTERs' bindings are kept."""
    app = service.app
    real = UnitOfWork.prefetch
    raced = []

    def prefetch_then_rival(self, keys):
        real(self, keys)
        if not raced:  # the rival writes between the first prefetch and its save
            raced.append(True)
            app.run(Register(BOB, register("b-other", 1, ("sip:bob@10.9.9.9", 3600))), NOW)

    monkeypatch.setattr(UnitOfWork, "prefetch", prefetch_then_rival)

    async def one() -> list:
        executor = GroupCommitExecutor(app, SystemClock())
        executor.start()
        try:
            return await executor.submit(Register(BOB, register("b1", 1, ("sip:bob@10.0.0.2", 3600))))
        finally:
            await executor.stop()

    bindings = asyncio.run(one())
    assert sorted(b.contact for b in bindings) == ["sip:bob@10.0.0.2", "sip:bob@10.9.9.9"]
