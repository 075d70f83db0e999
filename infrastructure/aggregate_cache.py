"""Aggregates kept in memory between transactions: the registrar's working set.

Theory of operation. Loading an AoR replays its events from the store (or its latest
snapshot); a busy registrar would do that for every request. The cache keeps each
aggregate as it stood after the last transaction that committed it, least recently used
evicted beyond `maxsize`. It needs no coordination with other writers (other nodes, CLI
commands): a cached aggregate they have moved on is one version behind the store, so the
next save of it conflicts on (aggregate id, version), and the conflicted transaction is
decided again on fresh loads after `evict`. Whatever did not commit (a failed or
abandoned unit of work) is evicted too, so an aggregate is never cached with changes
the store does not hold. A command refused on a cached aggregate (the state another node
moved on may allow what the cached one forbids: a watcher's next NOTIFY number) is
decided once more on a fresh load. Only reads that record nothing (a REGISTER that only
asks for the bindings) may see a state another node has since changed, as from any
replica.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import Any
from uuid import UUID

DEFAULT_SIZE = 50_000


class AggregateCache:
    """Committed aggregates by id, least recently used first out."""

    def __init__(self, maxsize: int = DEFAULT_SIZE):
        self.maxsize = maxsize
        self._items: OrderedDict[UUID, Any] = OrderedDict()
        self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, aggregate_id: UUID) -> bool:
        return aggregate_id in self._items

    def get(self, aggregate_id: UUID) -> Any | None:
        found = self._items.get(aggregate_id)
        if found is None:
            self.misses += 1
            return None
        self.hits += 1
        self._items.move_to_end(aggregate_id)
        return found

    def put(self, aggregates: Iterable[Any]) -> None:
        for aggregate in aggregates:
            self._items[aggregate.id] = aggregate
            self._items.move_to_end(aggregate.id)
        while len(self._items) > self.maxsize:
            self._items.popitem(last=False)

    def evict(self, aggregate_ids: Iterable[UUID]) -> None:
        for aggregate_id in aggregate_ids:
            self._items.pop(aggregate_id, None)
