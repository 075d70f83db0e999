"""The RFC 3903 publication of one resource's `reg` state: what to PUBLISH next, sans-IO.

Theory of operation. The owner says what the event state compositor should hold: `want`
a full document with a lifetime, or `want_removed`. The publication compares that with
what the compositor acknowledged and, when `next_request` is asked, plans one request:
an initial PUBLISH with the body and no SIP-If-Match while it holds no entity-tag (RFC
3903 4.2); a modify, body and SIP-If-Match, when the document changed (4.4); a refresh,
SIP-If-Match without body, at expiry minus max(5 s, 10% of the granted lifetime), or when
only the lifetime changed (4.3); a remove, SIP-If-Match and Expires 0, after the final
document was accepted (4.5). One request at a time: documents wanted meanwhile coalesce
and the newest goes next. A 2xx stores SIP-ETag and the granted Expires (5), counted from
when the request left; a 2xx without SIP-ETag is a failure. 412 means the entity-tag is
gone (5, 6): drop it, publish the newest body afresh at once. 423 retries at once with
Expires = Min-Expires (5), which stays the floor. Anything else, or a timeout (RFC 3261
8.1.3.1), waits out an exponential back-off with full jitter; 481 also drops the tag. A
held tag whose lifetime ran out is forgotten (`expired`). Time comes in as `now`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from sip_gateway.client.backoff import Backoff
from sip_gateway.errors import MalformedMessage
from sip_gateway.client.publication_request import PublicationMisuse, PublishKind, PublishPlan
from sip_gateway.sip.machine import step
from sip_gateway.sip.values import MAX_DELTA_SECONDS, ETag

UNPUBLISHED, PUBLISHING, PUBLISHED = "unpublished", "publishing", "published"
MODIFYING, REFRESHING, REMOVING = "modifying", "refreshing", "removing"
FAILED_WAITING = "failed-waiting"

SEND_INITIAL, SEND_MODIFY, SEND_REFRESH, SEND_REMOVE = (
    "send_initial", "send_modify", "send_refresh", "send_remove")
ACCEPTED, REMOVED, ETAG_LOST, TOO_BRIEF, FAILED, EXPIRED, FORGOTTEN = (
    "accepted", "removed", "etag_lost", "too_brief", "failed", "expired", "forgotten")

# (state, event) -> next state. `want` and `want_removed` change only the desired state.
PUBLICATION_MACHINE: dict[tuple[str, str], str] = {
    (UNPUBLISHED, SEND_INITIAL): PUBLISHING,  # 4.2
    (UNPUBLISHED, FORGOTTEN): UNPUBLISHED,
    (PUBLISHING, ACCEPTED): PUBLISHED,  # 5: SIP-ETag and Expires stored
    (PUBLISHING, TOO_BRIEF): UNPUBLISHED,  # 5: again at once with Min-Expires
    (PUBLISHING, FAILED): FAILED_WAITING,
    (PUBLISHED, SEND_MODIFY): MODIFYING,  # 4.4
    (PUBLISHED, SEND_REFRESH): REFRESHING,  # 4.3
    (PUBLISHED, SEND_REMOVE): REMOVING,  # 4.5
    (PUBLISHED, EXPIRED): UNPUBLISHED,
    (MODIFYING, ACCEPTED): PUBLISHED,
    (MODIFYING, ETAG_LOST): UNPUBLISHED,  # 412: an initial PUBLISH next
    (MODIFYING, TOO_BRIEF): PUBLISHED,
    (MODIFYING, FAILED): FAILED_WAITING,
    (REFRESHING, ACCEPTED): PUBLISHED,
    (REFRESHING, ETAG_LOST): UNPUBLISHED,
    (REFRESHING, TOO_BRIEF): PUBLISHED,
    (REFRESHING, FAILED): FAILED_WAITING,
    (REMOVING, REMOVED): UNPUBLISHED,  # 2xx, or 412/481: nothing left to remove
    (REMOVING, FAILED): FAILED_WAITING,
    (FAILED_WAITING, SEND_INITIAL): PUBLISHING,
    (FAILED_WAITING, SEND_MODIFY): MODIFYING,
    (FAILED_WAITING, SEND_REFRESH): REFRESHING,
    (FAILED_WAITING, SEND_REMOVE): REMOVING,
    (FAILED_WAITING, EXPIRED): FAILED_WAITING,
    (FAILED_WAITING, FORGOTTEN): UNPUBLISHED,
}

REFRESH_MARGIN = 5.0  # seconds before expiry at least; 10% of the lifetime when larger
ETAG_LOST_STATUSES = frozenset({481})  # the compositor has no such publication any more

_SEND_EVENTS = {PublishKind.INITIAL: SEND_INITIAL, PublishKind.MODIFY: SEND_MODIFY,
                PublishKind.REFRESH: SEND_REFRESH, PublishKind.REMOVE: SEND_REMOVE}


class Publication:
    """The RFC 3903 (4, 5) publication lifecycle of one resource's `reg` event state."""

    def __init__(self, resource: str, *, random: Callable[[], float],
                 backoff: Backoff | None = None) -> None:
        self.resource = resource
        self._random = random
        self._backoff = backoff or Backoff()
        self._state = UNPUBLISHED
        self._body: bytes | None = None  # the newest full document wanted
        self._lifetime = 0  # the Expires wanted with it
        self._removed = False  # want_removed: remove once the final document was accepted
        self._floor = 0  # the latest Min-Expires of a 423 (RFC 3903 5)
        self._published: tuple[bytes, int] | None = None  # (body, Expires) the compositor took
        self._etag: str | None = None
        self._granted = 0
        self._expires_at: float | None = None
        self._in_flight: PublishPlan | None = None
        self._sent_at = 0.0
        self._failures = 0
        self._last_error: str | None = None
        self._retry_at: float | None = None
        self._seen = float("-inf")  # the latest `now`: when immediate work became due

    # --- status, read-only ---
    state = property(lambda self: self._state, doc="The lifecycle state (PUBLICATION_MACHINE).")
    etag = property(lambda self: self._etag, doc="The SIP-ETag held, None when unpublished.")
    expires_at = property(lambda self: self._expires_at, doc="When the granted lifetime ends.")
    failures = property(lambda self: self._failures, doc="Consecutive failed requests.")
    last_error = property(lambda self: self._last_error, doc="The latest failure; None once OK.")
    in_flight = property(lambda self: self._in_flight, doc="The plan sent and not answered yet.")
    retry_at = property(lambda self: self._retry_at, doc="The end of the back-off, if any.")

    @classmethod
    def restore(cls, resource: str, etag: str, expires_at: float, now: float, *,
                random: Callable[[], float], backoff: Backoff | None = None) -> Publication:
        """A publication whose entity-tag survived a restart (RFC 3903 4.3, 4.4).

        The next change modifies it; without one it is refreshed before it ends, asking
        for the lifetime it had left (the lifetime of the bindings it described).
        """
        publication = cls(resource, random=random, backoff=backoff)
        try:
            publication._etag = ETag.parse(etag).value
        except MalformedMessage:
            raise PublicationMisuse(f"stored SIP-ETag is not a token: {etag!r}") from None
        left = min(max(1, math.ceil(expires_at - now)), MAX_DELTA_SECONDS)
        publication._expires_at, publication._granted, publication._lifetime = expires_at, left, left
        publication._state = PUBLISHED
        publication._see(now)
        return publication

    def holds(self, body: bytes) -> bool:
        """The compositor accepted exactly this document (RFC 3903 4.2, 4.4)."""
        return self._published is not None and self._published[0] == body

    @property
    def settled(self) -> bool:
        """Nothing in flight and nothing left to send for what is wanted now."""
        return (self._in_flight is None and not self._dirty()
                and not (self._removed and self._etag is not None))

    @property
    def forgotten(self) -> bool:
        """Nothing wanted, held or in flight: the owner may drop this publication."""
        return self._body is None and self._etag is None and self._in_flight is None

    # --- what the owner wants ---
    def want(self, body: bytes, expires: int, now: float) -> None:
        """Publish this full document with this lifetime; it replaces any not sent yet."""
        if not isinstance(body, bytes) or not body:
            raise PublicationMisuse("a reg publication needs a non-empty document")
        if not isinstance(expires, int) or not 0 < expires <= MAX_DELTA_SECONDS:
            raise PublicationMisuse(f"expires must be 1..{MAX_DELTA_SECONDS}, got {expires!r}")
        self._see(now)
        self._body, self._lifetime, self._removed = body, expires, False

    def want_removed(self, now: float) -> None:
        """No bindings any more: remove the publication after the final document (4.5)."""
        self._see(now)
        self._removed = True
        self._expire(now)
        if self._etag is None and self._in_flight is None and not self._dirty():
            self._forget()

    # --- what to send ---
    def next_request(self, now: float) -> PublishPlan | None:
        """The PUBLISH to send now, marked in flight; None if nothing, in flight or backing off."""
        self._see(now)
        self._expire(now)
        if self._in_flight is not None or (self._retry_at is not None and now < self._retry_at):
            return None
        due = self._due()
        if due is None or due > now:
            return None
        plan = self._plan()
        self._step(_SEND_EVENTS[plan.kind])
        self._in_flight, self._sent_at, self._retry_at = plan, now, None
        return plan

    def next_deadline(self) -> float | None:
        """When next_request may have something to send (refresh or retry time); None: never."""
        if self._in_flight is not None:
            return None
        due = self._due()
        if due is None:
            return None
        return due if self._retry_at is None else max(due, self._retry_at)

    # --- what came back ---
    def on_response(self, status: int, *, etag: str | None, expires: int | None,
                    min_expires: int | None, now: float) -> None:
        """A response to the plan in flight (RFC 3903 5); 1xx are ignored."""
        if not isinstance(status, int) or not 100 <= status <= 699:
            raise PublicationMisuse(f"not a SIP status code: {status!r}")
        plan = self._sent()
        self._see(now)
        if status < 200:
            return
        if plan.kind is PublishKind.REMOVE:
            if 200 <= status < 300 or status == 412 or status in ETAG_LOST_STATUSES:
                self._finish_removal()
            else:
                self._fail(now, f"{status} to remove", lost=False)
            return
        if 200 <= status < 300:
            self._accept(plan, etag, expires, now)
        elif status == 412 and plan.if_match is not None:
            self._drop_etag()
            self._in_flight = None
            self._step(ETAG_LOST)
        elif status == 423 and min_expires is not None and min_expires > plan.expires:
            self._floor = min(min_expires, MAX_DELTA_SECONDS)
            self._in_flight = None
            self._step(TOO_BRIEF)
        else:
            self._fail(now, f"{status} to {plan.kind.value}", lost=status in ETAG_LOST_STATUSES)

    def on_timeout(self, now: float) -> None:
        """The client transaction timed out: a failure like 408 (RFC 3261 8.1.3.1)."""
        plan = self._sent()
        self._see(now)
        self._fail(now, f"timeout of {plan.kind.value}", lost=False)

    # --- internals ---
    def _step(self, event: str) -> None:
        self._state = step(PUBLICATION_MACHINE, self._state, event, PublicationMisuse,
                           "publication")

    def _see(self, now: float) -> None:
        self._seen = max(self._seen, now)

    def _sent(self) -> PublishPlan:
        if self._in_flight is None:
            raise PublicationMisuse("a response or timeout with no PUBLISH in flight")
        return self._in_flight

    def _expires(self) -> int:
        return max(self._lifetime, self._floor)

    def _dirty(self) -> bool:
        return self._body is not None and self._published != (self._body, self._expires())

    def _refresh_at(self) -> float | None:
        if self._expires_at is None:
            return None
        margin = min(max(REFRESH_MARGIN, self._granted / 10), self._granted / 2)
        return self._expires_at - margin

    def _due(self) -> float | None:
        """When there is something to send, back-off aside."""
        if self._dirty() or (self._removed and self._etag is not None):
            return self._seen
        return self._refresh_at()

    def _plan(self) -> PublishPlan:
        if self._etag is None:
            assert self._body is not None  # _due() saw a document to publish
            return PublishPlan(PublishKind.INITIAL, self._expires(), self._body)
        if self._body is not None and self._body != self._published_body():
            return PublishPlan(PublishKind.MODIFY, self._expires(), self._body, self._etag)
        if self._removed:
            return PublishPlan(PublishKind.REMOVE, 0, None, self._etag)
        return PublishPlan(PublishKind.REFRESH, self._expires(), None, self._etag)

    def _accept(self, plan: PublishPlan, etag: str | None, expires: int | None,
                now: float) -> None:
        try:
            tag = None if etag is None else ETag.parse(etag).value
        except MalformedMessage:
            tag = None
        if tag is None:
            self._fail(now, f"2xx to {plan.kind.value} without a usable SIP-ETag", lost=True)
            return
        granted = plan.expires if expires is None else expires  # RFC 3903 5 says MUST send it
        if granted <= 0:
            self._fail(now, f"2xx to {plan.kind.value} granted no lifetime", lost=True)
            return
        body = plan.body if plan.body is not None else self._published_body()
        self._published = None if body is None else (body, plan.expires)
        self._etag, self._granted = tag, granted
        self._expires_at = self._sent_at + granted
        self._in_flight, self._failures, self._last_error, self._retry_at = None, 0, None, None
        self._step(ACCEPTED)

    def _published_body(self) -> bytes | None:
        return None if self._published is None else self._published[0]

    def _fail(self, now: float, error: str, *, lost: bool) -> None:
        if lost:
            self._drop_etag()
        self._failures += 1
        self._last_error = error
        self._retry_at = now + self._backoff.delay(self._failures, self._random)
        self._in_flight = None
        self._step(FAILED)
        if self._removed and self._etag is None and not self._dirty():
            self._forget()

    def _expire(self, now: float) -> None:
        """A held entity-tag whose granted lifetime ran out is gone at the compositor."""
        if self._in_flight is None and self._expires_at is not None and now >= self._expires_at:
            final_accepted = not self._dirty()
            self._drop_etag()
            self._step(EXPIRED)
            if self._removed and final_accepted:  # gone is what was wanted
                self._forget()

    def _drop_etag(self) -> None:
        self._etag = self._expires_at = None
        self._published, self._granted = None, 0

    def _finish_removal(self) -> None:
        self._drop_etag()
        self._in_flight, self._failures, self._last_error, self._retry_at = None, 0, None, None
        self._step(REMOVED)
        if self._removed:  # else a document wanted during the removal: publish it afresh
            self._body, self._lifetime, self._removed = None, 0, False

    def _forget(self) -> None:
        """Nothing to publish or remove any more: the desired state and the back-off go."""
        self._body, self._lifetime, self._removed = None, 0, False
        self._retry_at, self._failures, self._last_error = None, 0, None
        self._step(FORGOTTEN)
