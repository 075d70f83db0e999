"""The store behind the PUBLISH client and the subscription keeper (their ports).

Publication state lives in the publisher projection's tables (outbox, entity-tags), read
and written on the store thread. Subscription state lives in the event store as
`ResourceSubscription` aggregates: the keeper reads the requests from their tracked
projection (projections/subscriptions), and what it learns is recorded as their events
through the group-commit executor.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from domain.resource_subscription import DialogState
from infrastructure.commands import RecordSubscriber
from projections.subscriptions import SubscriptionRow
from sip_gateway.client.subscription_keeper import WantedSubscription

InStore = Callable[..., Awaitable[Any]]


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
    """SubscriberStore port: requests read from the subscriptions view (a tracked
    projection of the ResourceSubscription events), what the keeper learns recorded as
    events through the group-commit executor."""

    def __init__(self, service: Any, submit: Callable[[Any], Awaitable[Any]], in_store: InStore):
        self.service, self.submit, self.in_store = service, submit, in_store
        self.position = 0  # the latest request the keeper was told of

    async def changed(self) -> Sequence[WantedSubscription]:
        return await self.in_store(self._changed)

    async def established(self, resource: str, dialog: DialogState) -> None:
        await self.submit(RecordSubscriber(resource, established=dialog))

    async def failed(self, resource: str, reason: str, dialog_lost: bool) -> None:
        await self.submit(RecordSubscriber(resource, failure=reason, dialog_lost=dialog_lost))

    async def closed(self, resource: str, reason: str) -> None:
        await self.submit(RecordSubscriber(resource, closed=reason))

    def _changed(self) -> list[WantedSubscription]:
        self.service.catch_up_subscriptions()
        rows = self.service.subscriptions.view.requested_since(self.position)
        if rows:
            self.position = max(row.requested_at for row in rows)
        return [WantedSubscription(row.resource, row.expires, row.wanted, row.dialog)
                for row in rows]


def kept_subscriptions(service: Any) -> list[SubscriptionRow]:
    """Every resource subscription in the store (for `status`)."""
    service.catch_up_subscriptions()
    return service.subscriptions.view.rows()
