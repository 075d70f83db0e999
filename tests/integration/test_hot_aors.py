"""Nodes writing the same few AoRs: conflicts end in a 2xx, or at worst a clean 503.

Two nodes on one PostgreSQL store each run their own group-commit executor on their own
application (as two `serve` processes do). Twenty UAs per node share five AoRs; each
sends its next REGISTER once the previous one was answered. Conflicts between the nodes
are retried on fresh state, so each UA must get its every answer. Then a rival node that
writes an AoR right after each load shows the limits: contention that ends is survived,
contention that never ends is a 503 with Retry-After, never the database's error.
"""

from __future__ import annotations

import asyncio
import multiprocessing

import pytest

from infrastructure import application
from infrastructure import executor as executor_module
from infrastructure.clock import SystemClock
from infrastructure.commands import Register
from infrastructure.executor import GroupCommitExecutor
from infrastructure.gateway_port import ExecutorPort
from sip_gateway.errors import ServiceUnavailable
from sip_gateway.server.notify_modes import notify_mode
from tests.support import FakeClock, open_test_service, register

NODES, UAS, REGISTERS, AORS = 2, 20, 30, 5


async def node_load(service, node: int) -> list[BaseException]:
    executor = GroupCommitExecutor(service.app, SystemClock())
    executor.start()
    failures: list[BaseException] = []

    async def ua(index: int) -> None:
        aor, contact = f"sip:hot{index % AORS}@example.com", f"sip:ua{index}@10.0.{node}.{index}"
        for cseq in range(1, REGISTERS + 1):
            try:
                bindings = await executor.submit(
                    Register(aor, register(f"n{node}-ua{index}", cseq, (contact, 600))))
                assert any(b.contact == contact and b.cseq == cseq for b in bindings)
            except BaseException as error:  # collected: every failure is reported
                failures.append(error)

    try:
        await asyncio.gather(*(ua(i) for i in range(UAS)))
    finally:
        await executor.stop()
        executor.store_thread.shutdown(wait=True)
    return failures


def node_process(url: str, node: int, start, results) -> None:
    service = open_test_service(url)
    try:
        start.wait()
        failures = asyncio.run(node_load(service, node))
        results.put((node, [f"{type(f).__name__}: {f}"[:300] for f in failures]))
    finally:
        service.close()


@pytest.mark.postgres
def test_two_nodes_on_five_hot_aors_answer_every_register(postgres_url):
    open_test_service(postgres_url).close()  # the schema, before the nodes start
    context = multiprocessing.get_context("spawn")
    start, results = context.Event(), context.Queue()
    nodes = [context.Process(target=node_process, args=(postgres_url, n, start, results))
             for n in range(NODES)]
    for process in nodes:
        process.start()
    start.set()
    try:
        reports = dict(results.get(timeout=300) for _ in nodes)
    finally:
        for process in nodes:
            process.join(timeout=60)
    assert reports == {n: [] for n in range(NODES)}
    service = open_test_service(postgres_url)
    try:
        rows = service.view.rows()
        assert len(rows) == NODES * UAS
        assert {r.cseq for r in rows} == {REGISTERS}
    finally:
        service.close()


class RivalNode:
    """Another node that writes the AoR each time this node has just loaded it, `times`
    times: this node's next save of the AoR then conflicts."""

    def __init__(self, store_url: str, service, aor: str, times: float) -> None:
        self.rival = open_test_service(store_url)
        self.aor_id = service.app.identify(aor).id
        self.aor, self.times, self.cseq = aor, times, 0
        self.load = service.app.repository.get
        self.write()  # the AoR exists before this node first loads it

    def write(self) -> None:
        self.cseq += 1
        self.rival.app.run(Register(self.aor, register("rival", self.cseq,
                                                   ("sip:rival@10.9.9.9", 600))), T0)

    def get(self, aggregate_id, *args, **kwargs):
        found = self.load(aggregate_id, *args, **kwargs)
        if aggregate_id == self.aor_id and self.times > 0:
            self.times -= 1
            self.write()
        return found


T0 = 1_900_000_000.0


@pytest.fixture
def contended(store_url, monkeypatch):
    service = open_test_service(store_url, FakeClock(T0))
    rivals = []

    def with_rival(times: float) -> GroupCommitExecutor:
        rival = RivalNode(store_url, service, "sip:hot@example.com", times)
        rivals.append(rival)
        monkeypatch.setattr(service.app.repository, "get", rival.get)
        monkeypatch.setattr(application, "conflict_pause", lambda attempt: 0.0, raising=False)
        monkeypatch.setattr(executor_module, "conflict_pause", lambda attempt: 0.0, raising=False)
        return GroupCommitExecutor(service.app, service.clock)

    yield with_rival
    for rival in rivals:
        rival.rival.close()
    service.close()


async def submit_one(executor: GroupCommitExecutor, command):
    executor.start()
    try:
        return await executor.submit(command)
    finally:
        await executor.stop()


def test_a_register_whose_aor_another_node_keeps_changing_for_a_while_succeeds(contended):
    executor = contended(times=8)  # more conflicts than one save used to survive
    command = Register("sip:hot@example.com", register("mine", 1, ("sip:me@10.0.0.1", 600)))
    bindings = asyncio.run(submit_one(executor, command))
    assert sorted(b.contact for b in bindings) == ["sip:me@10.0.0.1", "sip:rival@10.9.9.9"]


def test_an_aor_contended_for_good_gives_503_with_retry_after_and_no_database_text(contended):
    executor = contended(times=float("inf"))
    port = ExecutorPort(executor, notify_mode("rfc"), max_bindings=None, default_expires=3600)
    with pytest.raises(ServiceUnavailable) as refused:
        asyncio.run(submit_one_through(port, executor))
    assert refused.value.sip_status == 503 and refused.value.retry_after == 1
    text = str(refused.value).lower()
    assert "contended" in text or "kept changing" in text
    assert not any(word in text for word in ("unique", "duplicate", "constraint", "key"))


async def submit_one_through(port: ExecutorPort, executor: GroupCommitExecutor):
    executor.start()
    try:
        return await port.register("sip:hot@example.com",
                                   register("mine", 1, ("sip:me@10.0.0.1", 600)))
    finally:
        await executor.stop()
