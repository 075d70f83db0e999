"""One resource's outbox documents and the publication they feed, sans-IO (RFC 3903 4).

Theory of operation. Documents arrive oldest first. One at a time is `want`ed by the
publication, and only once the previous one was accepted, so every change reaches the
compositor as its own PUBLISH and in order. While the publication is failing (back-off),
documents that queued up behind it are superseded by the newest, which holds the full
state (RFC 3680 5.3): the queue never grows without bound and the compositor gets the
latest state as soon as it answers again. A `final` document (no binding left) asks for
the removal after it (Expires: 0, RFC 3903 4.5). Documents sent and accepted, or
superseded, must leave the durable outbox; the ids whose removal could not be stored yet
are kept in `unsaved` and tried again with the next removal, because a document left in
the outbox would be sent again after a restart, stale behind newer ones.
"""

from __future__ import annotations

import secrets
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from sip_gateway.client.publication import Publication


class OutboxDocument(Protocol):
    id: int
    resource: str
    version: int
    body: bytes
    expires: int
    final: bool


@dataclass
class PublicationQueue:
    """The documents of one resource waiting for its publication, and what to remove."""

    publication: Publication
    call_id: str = field(default_factory=lambda: secrets.token_hex(16))
    from_tag: str = field(default_factory=lambda: secrets.token_hex(8))
    cseq: int = 0
    queue: deque = field(default_factory=deque)
    current: OutboxDocument | None = None  # the document wanted last
    acknowledged: bool = True  # ... and accepted by the compositor
    unsaved: list[int] = field(default_factory=list)  # ids still to remove from the outbox

    @property
    def resource(self) -> str:
        return self.publication.resource

    def add(self, document: OutboxDocument) -> None:
        self.queue.append(document)

    def next_cseq(self) -> int:
        """The CSeq of the next PUBLISH (each a new transaction of one Call-ID)."""
        self.cseq += 1
        return self.cseq

    def feed(self, now: float) -> list[OutboxDocument]:
        """Give the publication its next document when it can take one; returns the
        documents that are superseded by it (to remove from the outbox)."""
        publication = self.publication
        if not self.queue or publication.in_flight is not None:
            return []
        if publication.failures:  # the newest (full state) replaces the unsent ones
            stale = [self.queue.popleft() for _ in range(len(self.queue) - 1)]
            if self.current is not None and not self.acknowledged:
                stale.insert(0, self.current)
            self._want(self.queue.popleft(), now)
            return stale
        if publication.settled:
            self._want(self.queue.popleft(), now)
        return []

    def accepted(self) -> OutboxDocument | None:
        """The current document, once (when the compositor holds it with an entity-tag)."""
        current, publication = self.current, self.publication
        if (current is not None and not self.acknowledged and publication.etag
                and publication.holds(current.body)):
            self.acknowledged = True
            return current
        return None

    def removing(self, ids: list[int]) -> list[int]:
        """Every id to remove now: the new ones and those not stored before."""
        return self.unsaved + ids

    def removal_stored(self, stored: bool, ids: list[int]) -> None:
        self.unsaved = [] if stored else ids

    @property
    def done(self) -> bool:
        """Nothing left to send, remove or hold: the queue may be forgotten."""
        return self.publication.forgotten and not self.queue and not self.unsaved

    def _want(self, document: OutboxDocument, now: float) -> None:
        self.current, self.acknowledged = document, False
        self.publication.want(document.body, max(1, document.expires), now)
        if document.final:
            self.publication.want_removed(now)


def new_queue(resource: str, random: Callable[[], float],
              publication: Publication | None = None) -> PublicationQueue:
    return PublicationQueue(publication or Publication(resource, random=random))
