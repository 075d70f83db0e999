"""One transaction's worth of aggregates: each loaded once, all saved together.

Commands of one transaction (a CLI command, a NOTIFY document, or a group-committed batch
of gateway requests) load AoRs and subscriptions through here, so a second command on the
same AoR sees the first one's events, and `commit` stores every change in one atomic save.
A brand-new aggregate whose only event is its creation is not stored (a refused NOTIFY
leaves no empty AoR or subscription behind). With an AggregateCache (the gateway's group
commit), aggregates come from it when it holds them and go back to it after a commit; a
unit of work that does not commit must be `abandon`ed, which evicts what it touched.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from domain import AddressOfRecord, AorIdentity
from domain.events import replayed
from infrastructure.aggregate_cache import AggregateCache
from domain.resource_subscription import ResourceSubscription, resource_subscription_id
from domain.subscription import Subscription, subscription_aggregate_id
from domain.watcher import Watcher, watcher_id


class UnitOfWork:
    def __init__(self, app: Any, now: float, cache: AggregateCache | None = None):
        self.app, self.now, self.cache = app, now, cache
        self.loaded: dict[UUID, tuple[Any, bool]] = {}
        self.absent: set[UUID] = set()  # known to have no history (see `prefetch`)
        self._before: dict[UUID, int] = {}  # pending events of what this command touched
        self.from_cache: set[UUID] = set()  # loaded from the cache, not the store

    def prefetch(self, keys: Iterable[UUID]) -> None:
        """Learn in one query which of `keys` (aggregates the commands will load, neither
        loaded nor cached) have no history, so that loading them costs no query: a
        registrar meets many AoRs for the first time at once (a start, a wave of new
        users). Should another node create one meanwhile, the save conflicts and the
        batch is decided again, as for any concurrent write."""
        cache = self.cache
        wanted = {key for key in keys
                  if key not in self.loaded and (cache is None or key not in cache)}
        if wanted:
            self.absent |= wanted - self.app.stored_among(wanted)

    def begin_command(self) -> None:
        """Start watching what the next command changes (see `command_changed`)."""
        self._before = {}

    def forget_cached(self) -> bool:
        """A refused command may have been refused on a cached aggregate that another
        writer (another node) has moved on since: forget what it read from the cache and
        nothing in this unit of work changed, so that it can be decided again on fresh
        loads. Whether there was any."""
        return self._forget([key for key in self._before if key in self.from_cache])

    def forget_if_cached(self, key: UUID) -> bool:
        """Forget `key` if it came from the cache and is unchanged here, so that the next
        read loads it from the store (another writer may have moved it on)."""
        return self._forget([key] if key in self.from_cache else [])

    def _forget(self, keys: list[UUID]) -> bool:
        stale = [key for key in keys if not self.loaded[key][0].pending_events]
        for key in stale:
            del self.loaded[key]
            self._before.pop(key, None)
            self.from_cache.discard(key)
        if stale and self.cache is not None:
            self.cache.evict(stale)
        return bool(stale)

    def command_changed(self) -> bool:
        """Whether the command since `begin_command` recorded events (a refused command
        must not have: domain commands validate before they record)."""
        return any(len(self.loaded[key][0].pending_events) != count
                   for key, count in self._before.items())

    def _get(self, key: UUID) -> Any | None:
        """The aggregate stored under `key`, loaded once per unit of work; None if absent."""
        if key not in self.loaded:
            if key in self.absent:
                return None
            found = self.cache.get(key) if self.cache is not None else None
            if found is not None:
                self.from_cache.add(key)
            else:
                try:
                    found = self.app.repository.get(key, projector_func=replayed)
                except AggregateNotFoundError:
                    return None
            self.loaded[key] = (found, False)
        aggregate = self.loaded[key][0]
        if key not in self._before:
            self._before[key] = len(aggregate.pending_events)
        return aggregate

    def existing_aor(self, identity: AorIdentity) -> AddressOfRecord | None:
        return self._get(identity.id)

    def aor(self, identity: AorIdentity, origin: str, cause: str) -> AddressOfRecord:
        """The AoR's aggregate, started (registration `init`) if it has no history yet."""
        found = self.existing_aor(identity)
        if found is None:
            found = AddressOfRecord.initialize(identity, origin, self.app.node, cause, self.now)
            self.loaded[identity.id] = (found, True)
            self._before[identity.id] = 0
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
            self._before[key] = 0
        return found

    def resource_subscription(self, resource: str) -> ResourceSubscription | None:
        return self._get(resource_subscription_id(resource))

    def watcher(self, dialog_id: str) -> Watcher | None:
        return self._get(watcher_id(dialog_id))

    def add(self, aggregate: Any) -> None:
        """A new aggregate whose creation is itself the change (stored even if alone)."""
        self.loaded[aggregate.id] = (aggregate, False)
        self._before[aggregate.id] = 0

    def changed(self) -> list[Any]:
        return [agg for agg, new in self.loaded.values() if len(agg.pending_events) > int(new)]

    def commit(self) -> list[Any]:
        """Store every change in one transaction; the recordings (event, notification)."""
        changed = self.changed()
        recordings = self.app.save(*changed) if changed else []
        if self.cache is not None:
            self.cache.put(agg for agg, new in self.loaded.values()
                           if not new or len(agg.pending_events) == 0)
        return recordings

    def abandon(self) -> None:
        """Nothing of this unit of work is stored: forget what it may have changed."""
        if self.cache is not None:
            self.cache.evict(self.loaded)
