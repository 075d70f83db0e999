"""The PUBLISH client (RFC 3903) over a fake outbox store and a fake outbound, on a fake clock."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import pytest

from sip_gateway.client.outbound import Hop
from sip_gateway.client.publication import Publication
from sip_gateway.client.publisher_client import PublisherClient
from sip_gateway.sip import CSeq, SipRequest, Via
from tests.unit.sip_fakes import T0, FakeClock, FakeOutbound, answer
ALICE, BOB = "sip:alice@example.com", "sip:bob@example.com"
PROXY = "sip:127.0.0.1:5080"
PROXY_HOP = Hop(("127.0.0.1", 5080))


@dataclass
class Document:
    id: int
    resource: str
    version: int
    body: bytes
    expires: int = 600
    final: bool = False


@dataclass
class Held:
    resource: str
    etag: str | None
    expires_at: float | None


def document(id: int, resource: str = ALICE, *, final: bool = False) -> Document:
    return Document(id, resource, id - 1, f"<reginfo version='{id - 1}' id='{id}'/>".encode(),
                    final=final)


class FakeStore:
    """The PublicationStore port: an outbox list and every call recorded."""

    def __init__(self, *documents: Document, held: tuple[Held, ...] = ()) -> None:
        self.outbox = list(documents)
        self.held_rows = list(held)
        self.calls: list[tuple] = []

    def add(self, *documents: Document) -> None:
        self.outbox += documents

    async def pending(self, after_id: int):
        return [d for d in self.outbox if d.id > after_id]

    async def held(self):
        return list(self.held_rows)

    async def acknowledge(self, resource, ids, etag, expires_at):
        self.calls.append(("acknowledge", resource, list(ids), etag, expires_at))
        self.outbox = [d for d in self.outbox if d.id not in ids]

    async def forget_etag(self, resource):
        self.calls.append(("forget_etag", resource))

    async def record_failure(self, resource, error, failures):
        self.calls.append(("record_failure", resource, error, failures))

    async def discard(self, ids):
        self.calls.append(("discard", list(ids)))
        self.outbox = [d for d in self.outbox if d.id not in ids]

    def named(self, name: str) -> list[tuple]:
        return [call for call in self.calls if call[0] == name]


def ok(etag: str, expires: int = 600):
    return answer(200, SIP_ETag=etag, Expires=str(expires))


TIMEOUT = None


def client_for(store: FakeStore, outbound: FakeOutbound, clock: FakeClock) -> PublisherClient:
    return PublisherClient(store, outbound, proxy=PROXY, proxy_hop=PROXY_HOP,
                           clock=clock, uniform=lambda: 0.5)


async def step(client: PublisherClient) -> None:
    """One round of the client, then wait for the PUBLISHes it started."""
    await client._round()
    running = [task for task in client._tasks if not task.done()]
    if running:
        await asyncio.gather(*running)


async def steps(client: PublisherClient, n: int) -> None:
    for _ in range(n):
        await step(client)


def if_match(request: SipRequest) -> str | None:
    return request.headers.get("SIP-If-Match")


# -- the happy path ------------------------------------------------------------------------

def test_one_publish_per_document_in_order_initial_then_modify_with_the_previous_etag():
    store = FakeStore(document(1), document(2), document(3))
    outbound = FakeOutbound(ok("e1"), ok("e2"), ok("e3"))
    clock = FakeClock()

    async def story():
        client = client_for(store, outbound, clock)
        await steps(client, 5)
        return client

    client = asyncio.run(story())
    requests = outbound.requests
    assert [r.method for r in requests] == ["PUBLISH"] * 3
    assert [r.body for r in requests] == [document(n).body for n in (1, 2, 3)]
    assert [if_match(r) for r in requests] == [None, "e1", "e2"]
    assert [CSeq.parse(r.headers.get("CSeq")).number for r in requests] == [1, 2, 3]
    assert len({r.headers.get("Call-ID") for r in requests}) == 1
    assert all(destination == PROXY_HOP for _, destination in outbound.sent)
    first = requests[0]
    assert (first.uri, first.headers.get("Event"), first.headers.get("Expires")) == (
        ALICE, "reg", "600")
    assert first.headers.get("Route") == f"<{PROXY};lr>"
    assert first.headers.get("Content-Type") == "application/reginfo+xml"
    assert Via.parse(first.headers.get("Via")).branch == "z9hG4bK-fake-1"
    assert (Via.parse(first.headers.get("Via")).host, Via.parse(first.headers.get("Via")).port) == (
        "127.0.0.1", 5070)
    assert store.named("acknowledge") == [
        ("acknowledge", ALICE, [1], "e1", T0 + 600),
        ("acknowledge", ALICE, [2], "e2", T0 + 600),
        ("acknowledge", ALICE, [3], "e3", T0 + 600),
    ]
    assert store.outbox == [] and client.sent == 3
    assert store.named("record_failure") == [] and store.named("discard") == []


def test_resources_are_published_independently():
    store = FakeStore(document(1, ALICE), document(2, BOB), document(3, ALICE))
    outbound = FakeOutbound(ok("a1"), ok("b1"), ok("a2"))

    asyncio.run(steps(client_for(store, outbound, FakeClock()), 4))

    by_resource = [(r.uri, if_match(r)) for r in outbound.requests]
    assert by_resource == [(ALICE, None), (BOB, None), (ALICE, "a1")]
    alice, bob = (r.headers.get("Call-ID") for r in outbound.requests[:2])
    assert alice != bob
    assert [(c[1], c[2], c[3]) for c in store.named("acknowledge")] == [
        (ALICE, [1], "a1"), (BOB, [2], "b1"), (ALICE, [3], "a2")]


def test_a_final_document_is_followed_by_the_removal_then_the_etag_is_forgotten():
    store = FakeStore(document(1), document(2, final=True))
    outbound = FakeOutbound(ok("e1"), ok("e2"), ok("e3"))

    async def story():
        client = client_for(store, outbound, FakeClock())
        await steps(client, 5)
        return client

    client = asyncio.run(story())
    initial, final, remove = outbound.requests
    assert (if_match(initial), if_match(final), final.body) == (None, "e1", document(2).body)
    assert (remove.headers.get("Expires"), if_match(remove), remove.body) == ("0", "e2", b"")
    assert remove.headers.get("Content-Type") is None
    assert [c[0] for c in store.calls] == ["acknowledge", "acknowledge", "forget_etag"]
    assert store.named("forget_etag") == [("forget_etag", ALICE)]
    assert client.slots == {}  # nothing wanted or held: the publication is dropped


# -- failures --------------------------------------------------------------------------------

def test_412_publishes_the_newest_body_afresh_without_sip_if_match():
    store = FakeStore(document(1), document(2))
    outbound = FakeOutbound(ok("e1"), answer(412, "Conditional Request Failed"), ok("e9"))

    asyncio.run(steps(client_for(store, outbound, FakeClock()), 4))

    initial, modify, again = outbound.requests
    assert (if_match(modify), modify.body) == ("e1", document(2).body)
    assert (if_match(again), again.body) == (None, document(2).body)
    assert store.named("acknowledge") == [
        ("acknowledge", ALICE, [1], "e1", T0 + 600), ("acknowledge", ALICE, [2], "e9", T0 + 600)]
    assert store.named("record_failure") == []


def test_a_timeout_records_the_failure_and_backs_off_before_trying_again(caplog):
    caplog.set_level(logging.INFO)
    store = FakeStore(document(1))
    outbound = FakeOutbound(TIMEOUT, ok("e1"))
    clock = FakeClock()
    client = None

    async def story():
        nonlocal client
        client = client_for(store, outbound, clock)
        await steps(client, 3)
        assert len(outbound.sent) == 1  # backing off: uniform 0.5 * 1 s
        publication = client.slots[ALICE].publication
        assert (publication.failures, publication.retry_at) == (1, T0 + 0.5)
        assert client._sleep() == pytest.approx(0.5)
        clock.now = T0 + 0.4
        await step(client)
        assert len(outbound.sent) == 1
        clock.now = T0 + 0.5
        await steps(client, 2)

    asyncio.run(story())
    first, retry = outbound.requests
    assert (if_match(retry), retry.body) == (None, document(1).body)
    assert Via.parse(first.headers.get("Via")).branch != Via.parse(retry.headers.get("Via")).branch
    assert store.named("record_failure") == [("record_failure", ALICE, "timeout of initial", 1)]
    assert store.named("acknowledge") == [("acknowledge", ALICE, [1], "e1", T0 + 0.5 + 600)]
    assert client.outcomes.counts == {("timeout",): 1, ("200",): 1}
    levels = [(r.levelname, r.getMessage()[-10:]) for r in caplog.records
              if r.getMessage().startswith("PUBLISH")]
    assert levels == [("WARNING", "-> timeout"), ("INFO", " 0) -> 200")]  # failures stand out


def test_documents_queued_while_a_refresh_fails_collapse_to_the_newest():
    store = FakeStore(document(1))
    outbound = FakeOutbound(ok("e1"), answer(503, "Service Unavailable"), ok("e2"))
    clock = FakeClock()

    async def story():
        client = client_for(store, outbound, clock)
        await steps(client, 2)
        clock.now = T0 + 540  # the refresh is due 10 % of 600 s before expiry
        await step(client)
        assert if_match(outbound.requests[-1]) == "e1" and outbound.requests[-1].body == b""
        store.add(document(2), document(3), document(4))
        clock.now = T0 + 541  # past the back-off
        await steps(client, 3)

    asyncio.run(story())
    assert len(outbound.sent) == 3
    modify = outbound.requests[-1]
    assert (if_match(modify), modify.body) == ("e1", document(4).body)
    assert store.named("record_failure") == [
        ("record_failure", ALICE, "503 to refresh", 1)]
    assert store.named("discard") == [("discard", [2, 3])]
    assert store.named("acknowledge")[-1] == ("acknowledge", ALICE, [4], "e2", T0 + 541 + 600)
    assert store.outbox == []


def test_documents_queued_while_the_publish_fails_collapse_to_the_newest():
    store = FakeStore(document(1))
    outbound = FakeOutbound(TIMEOUT, ok("e1"), ok("e2"), ok("e3"))
    clock = FakeClock()

    async def story():
        client = client_for(store, outbound, clock)
        await step(client)  # document 1: timeout, back-off
        store.add(document(2), document(3))
        clock.now = T0 + 1
        await steps(client, 4)

    asyncio.run(story())
    assert store.named("record_failure") == [("record_failure", ALICE, "timeout of initial", 1)]
    # The compositor answers again: it gets the newest full state at once (RFC 3680 5.3).
    assert outbound.requests[1].body == document(3).body
    assert len(outbound.sent) == 2
    assert [d.id for d in store.outbox] == []


# -- restart -------------------------------------------------------------------------------

async def run_until(client: PublisherClient, condition, timeout: float = 5.0) -> None:
    """Run the client's own loop until `condition()` holds, then stop it."""
    task = asyncio.get_running_loop().create_task(client.run())
    try:
        async with asyncio.timeout(timeout):
            while not condition():
                await asyncio.sleep(0.005)
        await client.settle(1.0)
        assert task.done(), "settle ends the client's loop"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_settle_publishes_what_the_outbox_holds_then_sends_nothing_more():
    """At shutdown every queued document is sent and recorded, one PUBLISH at a time per
    resource; a document read after that waits for the next start (no answered PUBLISH
    is left unrecorded, which would send it twice)."""
    store = FakeStore(document(1), document(2), document(3, BOB), document(4, final=True))
    outbound = FakeOutbound(ok("a1"), ok("b1"), ok("a2"), ok("a3"), ok("a4", 0))

    async def story():
        client = client_for(store, outbound, FakeClock())
        task = asyncio.get_running_loop().create_task(client.run())
        await asyncio.sleep(0)
        async with asyncio.timeout(5.0):
            await client.settle(2.0)
        assert task.done()
        store.add(document(5, BOB))
        client.wake(documents=True)
        await asyncio.sleep(0.05)

    asyncio.run(story())
    assert [(r.headers.get("Expires") != "0", r.body) for r in outbound.requests] == [
        (True, document(1).body), (True, document(3, BOB).body), (True, document(2).body),
        (True, document(4).body), (False, b"")]
    assert [call[2] for call in store.named("acknowledge")] == [[1], [3], [2], [4]]
    assert [d.id for d in store.outbox] == [5]


def test_after_a_restart_the_first_publish_modifies_the_stored_publication():
    store = FakeStore(document(7), held=(Held(ALICE, "stored-etag", T0 + 300),))
    outbound = FakeOutbound(ok("e8"))

    async def story():
        client = client_for(store, outbound, FakeClock())
        await run_until(client, lambda: store.named("acknowledge"))

    asyncio.run(story())
    [modify] = outbound.requests
    assert (if_match(modify), modify.body) == ("stored-etag", document(7).body)
    assert store.named("acknowledge") == [("acknowledge", ALICE, [7], "e8", T0 + 600)]


def test_a_stored_publication_that_has_expired_is_published_afresh():
    store = FakeStore(document(7), held=(Held(ALICE, "stored-etag", T0 - 1),
                                         Held(BOB, None, None)))
    outbound = FakeOutbound(ok("e8"))

    async def story():
        client = client_for(store, outbound, FakeClock())
        await run_until(client, lambda: store.named("acknowledge"))
        assert list(client.slots) == [ALICE]

    asyncio.run(story())
    [initial] = outbound.requests
    assert (if_match(initial), initial.body) == (None, document(7).body)


def test_a_restored_publication_is_refreshed_before_it_expires():
    store = FakeStore(held=(Held(ALICE, "stored-etag", T0 + 100),))
    outbound = FakeOutbound(ok("e2"))
    clock = FakeClock()

    async def story():
        client = client_for(store, outbound, clock)
        task = asyncio.get_running_loop().create_task(client.run())
        try:
            await asyncio.sleep(0.05)
            assert outbound.sent == []  # nothing due yet
            clock.now = T0 + 99.5  # half a second before the stored lifetime ends
            client.wake()
            async with asyncio.timeout(2.0):
                while not store.named("acknowledge"):
                    await asyncio.sleep(0.005)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    asyncio.run(story())
    [refresh] = outbound.requests
    assert (if_match(refresh), refresh.body) == ("stored-etag", b"")
    assert int(refresh.headers.get("Expires")) > 0


# -- the store away --------------------------------------------------------------------------

def test_an_acknowledgement_the_store_refused_is_saved_on_a_later_round():
    """The PUBLISH was answered but the store was away: the document must still leave the
    outbox (else a restart would send it again, stale behind newer ones)."""
    store = FakeStore(document(1), document(2))
    outbound = FakeOutbound(ok("e1"), ok("e2"))
    real_acknowledge, outage = store.acknowledge, [True]

    async def acknowledge(resource, ids, etag, expires_at):
        if outage[0]:
            outage[0] = False  # back for the next call
            raise OSError("event store unavailable")
        await real_acknowledge(resource, ids, etag, expires_at)

    store.acknowledge = acknowledge

    async def story():
        client = client_for(store, outbound, FakeClock())
        await steps(client, 3)

    asyncio.run(story())
    assert store.named("discard") == [("discard", [1])]  # retried on the next round
    assert [call[2] for call in store.named("acknowledge")] == [[2]]
    assert store.outbox == []
    assert [r.body for r in outbound.requests] == [document(1).body, document(2).body]


def test_a_round_looks_only_at_resources_with_news_or_a_due_time():
    """With many publications held, a new document costs a visit to its resource only
    (not a scan of every publication), and a refresh comes when its time is due."""
    held = tuple(Held(f"sip:u{n}@example.com", f"etag-{n}", T0 + 3000 + 1000 * n)
                 for n in range(500))
    store = FakeStore(held=held)
    outbound = FakeOutbound(ok("a1", 3600), ok("refreshed"))
    clock = FakeClock()

    async def story():
        client = client_for(store, outbound, clock)
        for row in held:  # what run() does with the held publications
            client._slot(row.resource, Publication.restore(row.resource, row.etag,
                                                           row.expires_at, clock(),
                                                           random=lambda: 0.5))
        visited = []
        real_visit = client._visit

        async def visit(resource, slot, now):
            visited.append(resource)
            await real_visit(resource, slot, now)

        client._visit = visit
        await step(client)  # the first round looks at every restored publication once
        assert len(visited) == 500 and outbound.sent == []
        visited.clear()
        store.add(document(1))
        client.wake(documents=True)
        await steps(client, 2)
        assert set(visited) == {ALICE} and len(outbound.sent) == 1
        visited.clear()
        clock.now = T0 + 3000 - 1  # u0's refresh is due before its expiry at T0 + 3000
        await step(client)
        assert visited == ["sip:u0@example.com"]
        assert len(outbound.sent) == 2

    asyncio.run(story())
    assert outbound.requests[1].uri == "sip:u0@example.com"


class SlowAcknowledgements(FakeStore):
    """An outbox store whose acknowledgements commit only when the test lets them."""

    def __init__(self, *documents: Document) -> None:
        super().__init__(*documents)
        self.commit = asyncio.Event()

    async def acknowledge(self, resource, ids, etag, expires_at):
        await self.commit.wait()
        await super().acknowledge(resource, ids, etag, expires_at)


def test_the_next_document_waits_until_the_previous_acceptance_is_stored():
    """A SIGKILL between a 200 and its record re-sends that one document, never two: the
    next PUBLISH of the resource leaves only once the acceptance is in the store."""
    store = SlowAcknowledgements(document(1))
    outbound = FakeOutbound(ok("e1"), ok("e2"), ok("e3"))

    async def story():
        client = client_for(store, outbound, FakeClock())
        await client._round()
        for id in (2, 3):  # the answer came; while its acceptance is being written,
            await asyncio.sleep(0)  # the resource has news
            store.add(document(id))
            client.wake(documents=True)
            await client._round()
        sent_before_commit = len(outbound.requests)
        store.commit.set()
        await steps(client, 3)
        return sent_before_commit

    assert asyncio.run(story()) == 1
    assert [call[2] for call in store.named("acknowledge")] == [[1], [2], [3]]
    assert len(outbound.requests) == 3
