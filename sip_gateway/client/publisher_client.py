"""The PUBLISH client: outbox documents in, RFC 3903 publications on the wire.

The asyncio driver of one `PublicationQueue` per resource (sip_gateway/client/
publication_queue.py: which document goes next, which are superseded, which must leave
the outbox). A round reads the new outbox documents, visits only the resources with news
or a due time (the Agenda), sends the PUBLISH each publication plans (built by
publication_request) through the outbound proxy, and records the answer through the
`PublicationStore` port: accepted documents leave the outbox together with the new
entity-tag, so a restart resumes each publication with SIP-If-Match and re-sends only
what was not acknowledged. A resource's next PUBLISH leaves only once the answer to the
previous one is recorded: a SIGKILL in between re-sends that one document, not two
(bench/kill_under_load.py saw 66, 67, 66, 67 when a new document overtook the record).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from sip_gateway.client.agenda import Agenda
from sip_gateway.client.outbound import Hop, Outbound
from sip_gateway.client.publication import Publication
from sip_gateway.client.publication_queue import OutboxDocument, PublicationQueue, new_queue
from sip_gateway.client.publication_request import (
    PublishKind,
    PublishPlan,
    build_publish,
    publish_response_fields,
)
from sip_gateway.sip import SipResponse
from sip_gateway.tallies import Tally

log = logging.getLogger("pua_reginfo.publisher")
TICK = 1.0


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


class PublisherClient:
    """Sends the outbox as PUBLISH requests through the outbound proxy (RFC 3903)."""

    def __init__(self, store: PublicationStore, outbound: Outbound, *, proxy: str,
                 proxy_hop: Hop, clock: Callable[[], float] = time.time,
                 uniform: Callable[[], float] = random.SystemRandom().random) -> None:
        self.store, self.outbound = store, outbound
        self.proxy, self.proxy_hop = proxy, proxy_hop
        self.clock, self.uniform = clock, uniform
        self.slots: dict[str, PublicationQueue] = {}
        self.sent = 0
        self.outcomes = Tally()  # PUBLISH results: the status, or "timeout"
        self._last_id = 0
        self._wakeup = asyncio.Event()
        self._tasks: set[asyncio.Task] = set()
        self._sending: set[str] = set()  # resources with a PUBLISH out or its answer unrecorded
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
                self._slot(document.resource).add(document)
                self._agenda.mark(document.resource)
        for resource in self._agenda.due(now):
            slot = self.slots.get(resource)
            if slot is not None:
                await self._visit(resource, slot, now)

    async def _visit(self, resource: str, slot: PublicationQueue, now: float) -> None:
        if resource in self._sending:
            return  # visited again once the answer is recorded (_send marks it)
        if slot.unsaved and slot.publication.in_flight is None:
            await self._remove_from_outbox(slot, [])
        stale = slot.feed(now)
        if stale:
            await self._remove_from_outbox(slot, [document.id for document in stale])
            log.info("%s: %d document(s) superseded while the publication fails",
                     slot.resource, len(stale))
        plan = slot.publication.next_request(now)
        if plan is not None:
            self._sending.add(resource)
            task = asyncio.get_running_loop().create_task(self._send(slot, plan))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif slot.done:
            del self.slots[resource]
        else:
            if slot.unsaved:
                self._agenda.at(resource, now + TICK)
            deadline = slot.publication.next_deadline()
            if deadline is not None:
                self._agenda.at(resource, deadline)

    async def _send(self, slot: PublicationQueue, plan: PublishPlan) -> None:
        try:
            await self._exchange(slot, plan)
        finally:
            self._sending.discard(slot.resource)
            self._agenda.mark(slot.resource)
            self.wake()

    async def _exchange(self, slot: PublicationQueue, plan: PublishPlan) -> None:
        """Send the PUBLISH and record its answer (the next PUBLISH of the resource waits
        for that record: a crash in between re-sends this one document only)."""
        publication = slot.publication
        via_host, via_port = self.outbound.sent_by(self.proxy_hop)
        request = build_publish(
            plan, resource=publication.resource, from_uri=publication.resource,
            from_tag=slot.from_tag, call_id=slot.call_id, cseq=slot.next_cseq(),
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
        self.outcomes.add(outcome)
        log.log(logging.INFO if response is not None and response.status < 300
                else logging.WARNING,  # a failure: the operator should see it
                "PUBLISH %s %s (version %s) -> %s", publication.resource, plan.kind.value,
                "-" if slot.current is None else slot.current.version, outcome)
        await self._record(slot, plan, response)

    async def _record(self, slot: PublicationQueue, plan: PublishPlan,
                      response: SipResponse | None) -> None:
        publication, resource = slot.publication, slot.resource
        accepted = slot.accepted()
        if accepted is not None:
            await self._remove_from_outbox(slot, [accepted.id], publication.etag,
                                           publication.expires_at or self.clock())
        elif plan.kind is PublishKind.REMOVE and publication.etag is None:
            await self.store.forget_etag(resource)
        elif plan.kind is PublishKind.REFRESH and response is not None and publication.etag:
            await self.store.acknowledge(resource, [], publication.etag,
                                         publication.expires_at or self.clock())
        if publication.last_error is not None and (response is None or response.status >= 300):
            await self.store.record_failure(resource, publication.last_error,
                                            publication.failures)

    async def _remove_from_outbox(self, slot: PublicationQueue, ids: list[int],
                                  etag: str | None = None,
                                  expires_at: float | None = None) -> None:
        """Acknowledge (with the entity-tag) or discard documents; if the store fails, the
        queue keeps the ids for the next removal."""
        ids = slot.removing(ids)
        try:
            if etag is not None:
                await self.store.acknowledge(slot.resource, ids, etag, expires_at or self.clock())
            else:
                await self.store.discard(ids)
        except Exception as error:
            slot.removal_stored(False, ids)
            log.warning("%s: %d outbox document(s) not removed yet: %s",
                        slot.resource, len(ids), error)
        else:
            slot.removal_stored(True, ids)

    def _slot(self, resource: str, publication: Publication | None = None) -> PublicationQueue:
        slot = self.slots.get(resource)
        if slot is None:
            slot = new_queue(resource, self.uniform, publication)
            self.slots[resource] = slot
            self._agenda.mark(resource)
        return slot

    def _sleep(self) -> float:
        return self._agenda.wait(self.clock(), TICK)

    def states(self) -> dict[str, int]:
        """How many publications are in each state of their lifecycle."""
        counted: dict[str, int] = {}
        for slot in self.slots.values():
            state = slot.publication.state
            counted[state] = counted.get(state, 0) + 1
        return counted
