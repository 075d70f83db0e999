"""One transaction's worth of aggregates: each loaded once, all saved together.

Commands of one transaction (a CLI command, a NOTIFY document, or a group-committed batch
of gateway requests) load AoRs and subscriptions through here, so a second command on the
same AoR sees the first one's events, and `commit` stores every change in one atomic save.
A brand-new aggregate whose only event is its creation is not stored (a refused NOTIFY
leaves no empty AoR or subscription behind).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from domain import AddressOfRecord, AorIdentity
from domain.resource_subscription import ResourceSubscription, resource_subscription_id
from domain.subscription import Subscription, subscription_aggregate_id


class UnitOfWork:
    def __init__(self, app: Any, now: float):
        self.app, self.now = app, now
        self.loaded: dict[UUID, tuple[Any, bool]] = {}

    def _get(self, key: UUID) -> Any | None:
        """The aggregate stored under `key`, loaded once per unit of work; None if absent."""
        if key not in self.loaded:
            try:
                self.loaded[key] = (self.app.repository.get(key), False)
            except AggregateNotFoundError:
                return None
        return self.loaded[key][0]

    def existing_aor(self, identity: AorIdentity) -> AddressOfRecord | None:
        return self._get(identity.id)

    def aor(self, identity: AorIdentity, origin: str, cause: str) -> AddressOfRecord:
        """The AoR's aggregate, started (registration `init`) if it has no history yet."""
        found = self.existing_aor(identity)
        if found is None:
            found = AddressOfRecord.initialize(identity, origin, self.app.node, cause, self.now)
            self.loaded[identity.id] = (found, True)
        return found

    def aor_by_id(self, aor_id: UUID) -> AddressOfRecord | None:
        return self._get(aor_id)

    def existing_subscription(self, subscription_id: str) -> Subscription | None:
        key = subscription_aggregate_id(subscription_id)
        found = self._get(key)
        return None if found is None or self.loaded[key][1] else found

    def subscription(self, subscription_id: str) -> Subscription:
        key = subscription_aggregate_id(subscription_id)
        found = self._get(key)
        if found is None:
            found = Subscription.observe(subscription_id, self.app.node, self.now)
            self.loaded[key] = (found, True)
        return found

    def resource_subscription(self, resource: str) -> ResourceSubscription | None:
        return self._get(resource_subscription_id(resource))

    def add(self, aggregate: Any) -> None:
        """A new aggregate whose creation is itself the change (stored even if alone)."""
        self.loaded[aggregate.id] = (aggregate, False)

    def pending_count(self) -> int:
        return sum(len(agg.pending_events) for agg, _ in self.loaded.values())

    def changed(self) -> list[Any]:
        return [agg for agg, new in self.loaded.values() if len(agg.pending_events) > int(new)]

    def commit(self) -> None:
        changed = self.changed()
        if changed:
            self.app.save(*changed)
