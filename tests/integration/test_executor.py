"""Group commit: many commands, few transactions, per-AoR order, nothing lost or mixed up."""

from __future__ import annotations

import asyncio

import pytest
from eventsourcing.persistence import IntegrityError

from domain import OutOfOrderRequest
from infrastructure.commands import Register
from infrastructure.executor import GroupCommitExecutor
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
        real_commit(self)

    monkeypatch.setattr(UnitOfWork, "commit", conflict_once)
    executor = GroupCommitExecutor(service.app, service.clock)
    commands = [Register(f"sip:u{n}@example.com", register(f"c{n}", 1, (f"sip:u{n}@h", 600)))
                for n in range(5)]
    results = asyncio.run(run_all(executor, commands))
    assert all(isinstance(r, list) and len(r) == 1 for r in results)
    service.catch_up()
    assert len(service.view.rows()) == 5
