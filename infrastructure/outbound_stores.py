"""The store behind the PUBLISH client and the subscription keeper (their ports).

Publication state lives in the publisher projection's tables (outbox, entity-tags), read
and written on the store thread. Subscription state lives in the event store: requests are
followed on the notification log by topic, and what the keeper learns is recorded as
events of the `ResourceSubscription` aggregates through the group-commit executor.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from domain.resource_subscription import REQUEST_TOPICS, DialogState, ResourceSubscription
from infrastructure.commands import RecordSubscriber
from sip_gateway.client.subscription_keeper import WantedSubscription

InStore = Callable[..., Awaitable[Any]]
PAGE = 500


class PublicationsInStore:
    """PublicationStore port on the publisher view of this node."""

    def __init__(self, view: Any, node: str, in_store: InStore, clock: Callable[[], float]):
        self.view, self.node, self.in_store, self.clock = view, node, in_store, clock
        self._acks: list[tuple[str, list[int], str, float]] = []
        self._flushing: asyncio.Future | None = None

    async def pending(self, after_id: int) -> Sequence[Any]:
        return await self.in_store(self.view.pending, self.node, after_id)

    async def held(self) -> Sequence[Any]:
        return await self.in_store(self.view.publications, self.node)

    async def acknowledge(self, resource: str, ids: list[int], etag: str,
                          expires_at: float) -> None:
        """Queued: the acknowledgements of one moment share one transaction."""
        self._acks.append((resource, ids, etag, expires_at))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.ensure_future(self._flush())
        await asyncio.shield(self._flushing)

    async def _flush(self) -> None:
        await asyncio.sleep(0)  # let the other answers of this moment queue up
        while self._acks:
            batch, self._acks = self._acks, []
            await self.in_store(self.view.acknowledge_many, self.node, batch, self.clock())

    async def forget_etag(self, resource: str) -> None:
        await self.in_store(self.view.forget_etag, self.node, resource, self.clock())

    async def record_failure(self, resource: str, error: str, failures: int) -> None:
        await self.in_store(self.view.record_failure, self.node, resource, error, failures,
                            self.clock())

    async def discard(self, ids: list[int]) -> None:
        await self.in_store(self.view.discard, ids)


class SubscriptionsInStore:
    """SubscriberStore port on the ResourceSubscription aggregates."""

    def __init__(self, app: Any, submit: Callable[[Any], Awaitable[Any]], in_store: InStore):
        self.app, self.submit, self.in_store = app, submit, in_store
        self.position = 0

    async def changed(self) -> Sequence[WantedSubscription]:
        return await self.in_store(self._changed)

    async def established(self, resource: str, dialog: DialogState) -> None:
        await self.submit(RecordSubscriber(resource, established=dialog))

    async def failed(self, resource: str, reason: str, dialog_lost: bool) -> None:
        await self.submit(RecordSubscriber(resource, failure=reason, dialog_lost=dialog_lost))

    async def closed(self, resource: str, reason: str) -> None:
        await self.submit(RecordSubscriber(resource, closed=reason))

    def _changed(self) -> list[WantedSubscription]:
        head = self.app.recorder.max_notification_id() or 0
        ids = _requested(self.app, self.position, head)
        self.position = head  # the next look scans only what is newer
        return [wanted for wanted in map(self._load, ids) if wanted is not None]

    def _load(self, aggregate_id: UUID) -> WantedSubscription | None:
        try:
            found: ResourceSubscription = self.app.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
        return WantedSubscription(found.resource, found.expires, found.wanted, found.dialog)


def kept_subscriptions(app: Any) -> list[ResourceSubscription]:
    """Every ResourceSubscription in the store (for `status`)."""
    head = app.recorder.max_notification_id() or 0
    return [app.repository.get(aggregate_id) for aggregate_id in _requested(app, 0, head)]


def _requested(app: Any, after: int, head: int) -> list[UUID]:
    """The ResourceSubscriptions requested or withdrawn in notifications (after, head]."""
    ids: dict[UUID, None] = {}
    while after < head:
        page = app.recorder.select_notifications(after + 1, PAGE, stop=head,
                                                 topics=REQUEST_TOPICS)
        ids.update((notification.originator_id, None) for notification in page)
        if len(page) < PAGE:
            break
        after = page[-1].id
    return list(ids)
