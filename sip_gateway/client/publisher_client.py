"""The PUBLISH client: outbox documents in, RFC 3903 publications on the wire.

Theory of operation. The publisher projection writes one document per local change of an
AoR into a durable outbox (oldest first). This client keeps one `Publication` per resource
and feeds it the documents one at a time: a document is `want`ed only once the previous
one was accepted, so every change reaches the compositor as its own PUBLISH and in order.
While a publication is failing (back-off), documents that queue up behind it are
superseded by the newest one, which holds the full state (RFC 3680 5.3): the outbox never
grows without bound and the compositor gets the latest state as soon as it answers again.
A `final` document (the last binding is gone) is followed by the removal (Expires: 0,
RFC 3903 4.5). Acknowledged documents leave the outbox together with the new entity-tag,
so a restart resumes each publication with SIP-If-Match and re-sends only what was not
acknowledged. The store is reached only through the `PublicationStore` port.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sip_gateway.client.agenda import Agenda
from sip_gateway.client.outbound import Hop, Outbound
from sip_gateway.client.publication import Publication
from sip_gateway.client.publication_request import PublishKind, PublishPlan, build_publish, publish_response_fields
from sip_gateway.sip import SipResponse

log = logging.getLogger("pua_reginfo.publisher")
TICK = 1.0


class OutboxDocument(Protocol):
    id: int
    resource: str
    version: int
    body: bytes
    expires: int
    final: bool


class HeldPublication(Protocol):
    resource: str
    etag: str | None
    expires_at: float | None


class PublicationStore(Protocol):
    async def pending(self, after_id: int) -> Sequence[OutboxDocument]: ...
    async def held(self) -> Sequence[HeldPublication]: ...
    async def acknowledge(self, resource: str, ids: list[int], etag: str,
                          expires_at: float) -> None: ...
    async def forget_etag(self, resource: str) -> None: ...
    async def record_failure(self, resource: str, error: str, failures: int) -> None: ...
    async def discard(self, ids: list[int]) -> None: ...


@dataclass
class _Slot:
    publication: Publication
    call_id: str
    from_tag: str
    cseq: int = 0
    queue: deque = field(default_factory=deque)
    current: OutboxDocument | None = None
    acknowledged: bool = True
    unsaved: list[int] = field(default_factory=list)  # sent or superseded; still in the outbox


class PublisherClient:
    """Sends the outbox as PUBLISH requests through the outbound proxy (RFC 3903)."""

    def __init__(self, store: PublicationStore, outbound: Outbound, *, proxy: str,
                 proxy_hop: Hop, clock: Callable[[], float] = time.time,
                 uniform: Callable[[], float] = random.SystemRandom().random) -> None:
        self.store, self.outbound = store, outbound
        self.proxy, self.proxy_hop = proxy, proxy_hop
        self.clock, self.uniform = clock, uniform
        self.slots: dict[str, _Slot] = {}
        self.sent = 0
        self._last_id = 0
        self._wakeup = asyncio.Event()
        self._tasks: set[asyncio.Task] = set()
        self._documents = True  # read the outbox on the first round
        self._read_at = 0.0
        self._stopping = False
        self._runner: asyncio.Task | None = None
        # a round looks only at resources with a new document or an answer, and those
        # whose refresh or retry time came
        self._agenda = Agenda()

    def wake(self, documents: bool = False) -> None:
        """Run a round now; `documents`: the outbox has new documents to read."""
        self._documents = self._documents or documents
        self._wakeup.set()

    async def run(self) -> None:
        self._runner = asyncio.current_task()
        for held in await self.store.held():
            if held.etag and held.expires_at and held.expires_at > self.clock():
                self._slot(held.resource, Publication.restore(
                    held.resource, held.etag, held.expires_at, self.clock(),
                    random=self.uniform))
        while not self._stopping:
            await self._guarded_round()
            timeout = self._sleep()
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), timeout)
            except asyncio.TimeoutError:
                pass

    async def settle(self, timeout: float) -> None:
        """At shutdown: end `run`, then publish what the outbox still holds and let every
        PUBLISH finish and be recorded, for at most `timeout` seconds. Nothing is sent
        after this returns, so no answered PUBLISH goes unrecorded; only what the timeout
        cut short is sent again after the restart."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        self._stopping, self._documents = True, True
        self._wakeup.set()
        if self._runner is not None and not self._runner.done():
            await asyncio.wait({self._runner}, timeout=timeout)
        while loop.time() < deadline:
            await self._guarded_round()
            if not self._tasks:
                return
            await asyncio.wait(set(self._tasks), timeout=deadline - loop.time())
        if self._tasks:
            log.warning("%d PUBLISH(es) still unanswered at shutdown; they are sent again "
                        "after the restart", len(self._tasks))

    # -- internals ---------------------------------------------------------------------

    async def _guarded_round(self) -> None:
        try:
            await self._round()
        except Exception:
            log.exception("publisher round failed; retrying")

    async def _round(self) -> None:
        now = self.clock()
        if self._documents or now - self._read_at >= TICK:  # new documents, or a safety tick
            self._documents, self._read_at = False, now
            for document in await self.store.pending(self._last_id):
                self._last_id = max(self._last_id, document.id)
                self._slot(document.resource).queue.append(document)
                self._agenda.mark(document.resource)
        for resource in self._agenda.due(now):
            slot = self.slots.get(resource)
            if slot is not None:
                await self._visit(resource, slot, now)

    async def _visit(self, resource: str, slot: _Slot, now: float) -> None:
        if slot.unsaved and slot.publication.in_flight is None:
            await self._remove_from_outbox(slot, [])
        await self._feed(slot, now)
        plan = slot.publication.next_request(now)
        if plan is not None:
            task = asyncio.get_running_loop().create_task(self._send(slot, plan))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif slot.publication.forgotten and not slot.queue and not slot.unsaved:
            del self.slots[resource]
        else:
            if slot.unsaved:
                self._agenda.at(resource, now + TICK)
            deadline = slot.publication.next_deadline()
            if deadline is not None:
                self._agenda.at(resource, deadline)

    async def _feed(self, slot: _Slot, now: float) -> None:
        publication = slot.publication
        if not slot.queue or publication.in_flight is not None:
            return
        if publication.failures:
            await self._collapse(slot, now)
        elif publication.settled:
            self._want(slot, slot.queue.popleft(), now)

    async def _collapse(self, slot: _Slot, now: float) -> None:
        """While failing, the newest document (full state) replaces the unsent ones."""
        stale = [slot.queue.popleft() for _ in range(len(slot.queue) - 1)]
        if slot.current is not None and not slot.acknowledged:
            stale.insert(0, slot.current)
        if stale:
            await self._remove_from_outbox(slot, [document.id for document in stale])
            log.info("%s: %d document(s) superseded while the publication fails",
                     slot.publication.resource, len(stale))
        self._want(slot, slot.queue.popleft(), now)

    def _want(self, slot: _Slot, document: OutboxDocument, now: float) -> None:
        slot.current, slot.acknowledged = document, False
        slot.publication.want(document.body, max(1, document.expires), now)
        if document.final:
            slot.publication.want_removed(now)

    async def _send(self, slot: _Slot, plan: PublishPlan) -> None:
        publication = slot.publication
        slot.cseq += 1
        via_host, via_port = self.outbound.sent_by(self.proxy_hop)
        request = build_publish(
            plan, resource=publication.resource, from_uri=publication.resource,
            from_tag=slot.from_tag, call_id=slot.call_id, cseq=slot.cseq,
            branch=self.outbound.new_branch(), via_host=via_host, via_port=via_port,
            transport=self.proxy_hop.transport, route=self.proxy)
        response = await self.outbound.request(request, self.proxy_hop)
        now = self.clock()
        if response is None:
            publication.on_timeout(now)
            outcome = "timeout"
        else:
            fields = publish_response_fields(response)
            publication.on_response(response.status, etag=fields.etag, expires=fields.expires,
                                    min_expires=fields.min_expires, now=now)
            outcome = str(response.status)
        self.sent += 1
        log.info("PUBLISH %s %s (version %s) -> %s", publication.resource, plan.kind.value,
                 "-" if slot.current is None else slot.current.version, outcome)
        await self._record(slot, plan, response)
        self._agenda.mark(publication.resource)
        self.wake()

    async def _record(self, slot: _Slot, plan: PublishPlan, response: SipResponse | None) -> None:
        publication, resource = slot.publication, slot.publication.resource
        current = slot.current
        if (current is not None and not slot.acknowledged and publication.etag
                and publication.holds(current.body)):
            slot.acknowledged = True
            await self._remove_from_outbox(slot, [current.id], publication.etag,
                                           publication.expires_at or self.clock())
        elif plan.kind is PublishKind.REMOVE and publication.etag is None:
            await self.store.forget_etag(resource)
        elif plan.kind is PublishKind.REFRESH and response is not None and publication.etag:
            await self.store.acknowledge(resource, [], publication.etag,
                                         publication.expires_at or self.clock())
        if publication.last_error is not None and (response is None or response.status >= 300):
            await self.store.record_failure(resource, publication.last_error,
                                            publication.failures)

    async def _remove_from_outbox(self, slot: _Slot, ids: list[int], etag: str | None = None,
                                  expires_at: float | None = None) -> None:
        """Acknowledge (with the entity-tag) or discard documents. If the store fails, the
        ids are kept and removed on a later round: a document that stayed in the outbox
        would be sent again after a restart, stale behind newer ones."""
        ids = slot.unsaved + ids
        try:
            if etag is not None:
                await self.store.acknowledge(slot.publication.resource, ids, etag,
                                             expires_at or self.clock())
            else:
                await self.store.discard(ids)
        except Exception as error:
            slot.unsaved = ids
            log.warning("%s: %d outbox document(s) not removed yet: %s",
                        slot.publication.resource, len(ids), error)
        else:
            slot.unsaved = []

    def _slot(self, resource: str, publication: Publication | None = None) -> _Slot:
        slot = self.slots.get(resource)
        if slot is None:
            slot = _Slot(publication or Publication(resource, random=self.uniform),
                         call_id=secrets.token_hex(16), from_tag=secrets.token_hex(8))
            self.slots[resource] = slot
            self._agenda.mark(resource)
        return slot

    def _sleep(self) -> float:
        return self._agenda.wait(self.clock(), TICK)
