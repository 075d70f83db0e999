"""Group commit: many commands, few transactions, per-AoR order, nothing lost or mixed up."""

from __future__ import annotations

import asyncio
import threading

import pytest
from eventsourcing.persistence import IntegrityError, OperationalError

from domain import OutOfOrderRequest
from infrastructure.commands import Register
from infrastructure.executor import GroupCommitExecutor, StoreBusy, StoreUnavailable
from infrastructure.unit_of_work import UnitOfWork
from tests.support import FakeClock, open_test_service, register


@pytest.fixture
def service(store_url):
    service = open_test_service(store_url, FakeClock())
    yield service
    service.close()


async def run_all(executor: GroupCommitExecutor, commands) -> list:
    executor.start()
    try:
        return await asyncio.gather(*(executor.submit(c) for c in commands), return_exceptions=True)
    finally:
        await executor.stop()


def test_concurrent_commands_share_transactions_and_keep_per_aor_order(service):
    executor = GroupCommitExecutor(service.app, service.clock)
    commands = [Register(f"sip:user{n % 10}@example.com",
                         register(f"call-{n % 10}", n // 10 + 1, (f"sip:u{n % 10}@10.0.0.{n % 10}", 600)))
                for n in range(200)]
    results = asyncio.run(run_all(executor, commands))
    assert not [r for r in results if isinstance(r, BaseException)]
    assert executor.commands == 200 and executor.batches < 200
    service.catch_up()
    rows = service.view.rows()
    assert len(rows) == 10 and {r.cseq for r in rows} == {20}


def test_a_refused_command_fails_alone(service):
    executor = GroupCommitExecutor(service.app, service.clock)
    ok1 = Register("sip:a@example.com", register("c", 2, ("sip:a@10.0.0.1", 600)))
    stale = Register("sip:a@example.com", register("c", 1, ("sip:a@10.0.0.1", 0)))
    ok2 = Register("sip:b@example.com", register("d", 1, ("sip:b@10.0.0.2", 600)))
    results = asyncio.run(run_all(executor, [ok1, stale, ok2]))
    assert isinstance(results[1], OutOfOrderRequest)
    assert [b.contact for b in results[0]] == ["sip:a@10.0.0.1"]
    assert [b.contact for b in results[2]] == ["sip:b@10.0.0.2"]
    service.catch_up()
    assert sorted(r.contact for r in service.view.rows()) == ["sip:a@10.0.0.1", "sip:b@10.0.0.2"]


def test_results_are_durable_when_they_arrive(service, store_url):
    executor = GroupCommitExecutor(service.app, service.clock)
    asyncio.run(run_all(executor, [Register("sip:a@example.com", register("c", 1, ("sip:a@h", 600)))]))
    other = open_test_service(store_url, FakeClock())
    try:
        assert [r.contact for r in other.view.rows()] == ["sip:a@h"]
    finally:
        other.close()


def test_a_conflicting_save_is_retried_one_command_at_a_time(service, monkeypatch):
    real_commit, calls = UnitOfWork.commit, []

    def conflict_once(self):
        calls.append(1)
        if len(calls) == 1:
            raise IntegrityError("another node wrote first")
        return real_commit(self)

    monkeypatch.setattr(UnitOfWork, "commit", conflict_once)
    executor = GroupCommitExecutor(service.app, service.clock)
    commands = [Register(f"sip:u{n}@example.com", register(f"c{n}", 1, (f"sip:u{n}@h", 600)))
                for n in range(5)]
    results = asyncio.run(run_all(executor, commands))
    assert all(isinstance(r, list) and len(r) == 1 for r in results)
    service.catch_up()
    assert len(service.view.rows()) == 5


# -- the store unreachable -----------------------------------------------------------------

def _commands(n: int, start: int = 0) -> list[Register]:
    return [Register(f"sip:o{i}@example.com", register(f"o{i}", 1, (f"sip:o{i}@h", 600)))
            for i in range(start, start + n)]


def test_an_unreachable_store_fails_the_batch_with_store_unavailable_then_fails_fast(
        service, monkeypatch):
    """OperationalError on commit: every caller hears StoreUnavailable; commands submitted
    before the probe interval ends fail at once without touching the store; the next batch
    after it probes, and its commit closes the circuit."""
    real_commit, down = UnitOfWork.commit, [True]
    attempts = []

    def commit(self):
        attempts.append(1)
        if down[0]:
            raise OperationalError("connection refused")
        return real_commit(self)

    monkeypatch.setattr(UnitOfWork, "commit", commit)

    async def story():
        executor = GroupCommitExecutor(service.app, service.clock, probe_interval=0.3)
        executor.start()
        try:
            first = await asyncio.gather(*(executor.submit(c) for c in _commands(3)),
                                         return_exceptions=True)
            tried = len(attempts)
            with pytest.raises(StoreUnavailable, match="connection refused"):
                await executor.submit(_commands(1, 3)[0])
            assert len(attempts) == tried, "failing fast must not touch the store"
            await asyncio.sleep(0.35)
            down[0] = False
            probe = await executor.submit(_commands(1, 4)[0])
            assert executor.unavailable is None
            return first, probe
        finally:
            await executor.stop()

    first, probe = asyncio.run(story())
    assert all(isinstance(r, StoreUnavailable) for r in first), first
    assert [b.contact for b in probe] == ["sip:o4@h"]
    service.catch_up()
    assert [r.contact for r in service.view.rows()] == ["sip:o4@h"]  # nothing half-applied


def test_a_transaction_slower_than_store_timeout_answers_its_callers_at_once(
        service, monkeypatch):
    """A hung store: callers hear StoreUnavailable after store_timeout, new commands fail
    fast while it hangs; when the transaction ends after all, the circuit closes."""
    real_commit = UnitOfWork.commit
    release = threading.Event()

    def hanging_commit(self):
        release.wait(10)
        return real_commit(self)

    monkeypatch.setattr(UnitOfWork, "commit", hanging_commit)

    async def story():
        executor = GroupCommitExecutor(service.app, service.clock, store_timeout=0.2)
        executor.start()
        try:
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(StoreUnavailable, match="no answer within 0.2 s"):
                await executor.submit(_commands(1)[0])
            waited = loop.time() - started
            with pytest.raises(StoreUnavailable):
                await executor.submit(_commands(1, 1)[0])  # the store still hangs
            release.set()
            for _ in range(100):
                if executor.unavailable is None:
                    break
                await asyncio.sleep(0.02)
            return waited, executor.unavailable
        finally:
            release.set()
            await executor.stop()

    waited, unavailable = asyncio.run(story())
    assert waited < 5 and unavailable is None


def test_a_command_beyond_max_pending_is_refused_at_once(service):
    async def story():
        executor = GroupCommitExecutor(service.app, service.clock, max_pending=3)
        executor.start()
        try:
            results = await asyncio.gather(*(executor.submit(c) for c in _commands(6)),
                                           return_exceptions=True)
        finally:
            await executor.stop()
        return results

    results = asyncio.run(story())
    refused = [r for r in results if isinstance(r, StoreBusy)]
    assert len(refused) == 3 and "3 commands waiting" in str(refused[0])
    assert all(isinstance(r, list) for r in results[:3])  # the first three were stored
    service.catch_up()
    assert len(service.view.rows()) == 3


def test_a_command_refused_on_a_cached_aggregate_another_node_moved_on_is_decided_again(
        service, store_url):
    from domain.watcher import WatcherDialog
    from infrastructure.aggregate_cache import AggregateCache
    from infrastructure.commands import RecordNotified, Watch

    dialog = WatcherDialog("w@phone", "ours", "theirs", "sip:w@example.com",
                           "sip:w@10.0.0.9:5062", (), "udp")
    cache = AggregateCache()
    executor = GroupCommitExecutor(service.app, service.clock, cache=cache)

    async def story():
        executor.start()
        try:
            await executor.submit(Watch("sip:alice@example.com", dialog, 600, refresh=False))
            other = open_test_service(store_url, FakeClock())  # another node, same store
            try:
                other.app.run(RecordNotified(dialog.dialog_id, 0, 1, True), other.clock.now())
            finally:
                other.close()
            # This node's cache still holds the watcher before that NOTIFY: version 0
            # looks next to it, version 1 is next in the store.
            return await executor.submit(RecordNotified(dialog.dialog_id, 1, 2, False))
        finally:
            await executor.stop()

    watcher = asyncio.run(story())
    assert (watcher.document_version, watcher.cseq) == (1, 2)


def test_a_binding_another_writer_shortened_expires_though_this_node_cached_its_aor(
        service, store_url):
    from uuid import UUID

    from infrastructure.aggregate_cache import AggregateCache
    from infrastructure.commands import ExpireDue, ShortenContact

    contact = "sip:a@10.0.0.1"
    executor = GroupCommitExecutor(service.app, service.clock, cache=AggregateCache())

    async def story():
        executor.start()
        try:
            await executor.submit(Register("sip:a@example.com",
                                           register("c", 1, (contact, 600))))
            cli = open_test_service(store_url, FakeClock(service.clock.now()))
            try:  # the CLI (another process) shortens it; this node's cache does not know
                cli.app.run(ShortenContact("sip:a@example.com", contact, 1, "admin"),
                            cli.clock.now())
            finally:
                cli.close()
            service.clock.advance(2)
            service.catch_up()
            due = [UUID(d) for d in service.view.due_aor_ids(service.clock.now())]
            assert due, "the view knows the binding is due"
            return await executor.submit(ExpireDue(tuple(due)))
        finally:
            await executor.stop()

    assert asyncio.run(story()) == 1
    service.catch_up()
    assert service.view.rows(valid_at=service.clock.now()) == []
