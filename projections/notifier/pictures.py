"""Per AoR, what its watchers see, folded from the committed events (RFC 3680 5.3).

Every watcher of an AoR sees the same thing: each live binding with the event that
brought it to its current state, the bindings learned from a NOTIFY included; a sync peer
sees this node's own bindings only (domain/watcher_document.py). `AorPictures` keeps the
two pictures of each AoR it met and moves them on by each change (the AoR's contact events
of one transaction), saying what that change shows each kind of watcher; a new watcher's
first document is the picture as it stands. An AoR it does not hold at the version just
before a change (not met since start, pushed out of the bounded cache, or moved on by
another node) is folded again from its stored history, from the seed a prune left if
there is one (projections/retained.py), as the publisher's composer does.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any
from uuid import UUID

from eventsourcing.application import Application

from domain.watcher_document import AorChange, Held, fold, seen_by
from projections.retained import Seed, retained_history

# (aor_id, up to version) -> (every binding of the AoR's seed with its last event, the
# stored events after the seed)
WatchedHistory = Callable[[str, int], tuple[Held, list[Any]]]
CACHE_SIZE = 100_000


def watched_history(app: Application[Any]) -> WatchedHistory:
    def history(aor_id: str, upto_version: int) -> tuple[Held, list[Any]]:
        retained = retained_history(app, UUID(aor_id), upto_version)
        return seed_picture(retained.seed), retained.events
    return history


def seed_picture(seed: Seed | None) -> Held:
    """Every binding a prune's seed holds, with the event of its last change."""
    if seed is None:
        return {}
    return {key: (binding, seed.changes[key].event) for key, binding in seed.bindings.items()}


class AorPictures:
    def __init__(self, history: WatchedHistory, cache_size: int = CACHE_SIZE) -> None:
        self.history, self.cache_size = history, cache_size
        self._cache: OrderedDict[str, tuple[int, Held, Held]] = OrderedDict()

    def advance(self, aor_id: str, first_version: int, last_version: int,
                events: Iterable[Any]) -> AorChange:
        """Fold the AoR's events from `first_version` to `last_version` (one change)."""
        picture, peer_picture = self._before(aor_id, first_version)
        events = list(events)
        everyone = fold(picture, events)
        peers = fold(peer_picture, events, peer=True)
        self._keep(aor_id, last_version, picture, peer_picture)
        return AorChange(aor_id, first_version, last_version, everyone, peers, dict(picture),
                         dict(peer_picture))

    def picture(self, aor_id: str, version: int, peer: bool = False) -> Held:
        """The AoR as its watchers see it at `version` (a new watcher's full state)."""
        picture, peer_picture = self._before(aor_id, version + 1)
        self._keep(aor_id, version, picture, peer_picture)
        return dict(peer_picture if peer else picture)

    # Internals -----------------------------------------------------------------------

    def _before(self, aor_id: str, first_version: int) -> tuple[Held, Held]:
        cached = self._cache.get(aor_id)
        if cached is not None and cached[0] == first_version - 1:
            return dict(cached[1]), dict(cached[2])
        picture: Held = {}
        if first_version > 1:
            picture, events = self.history(aor_id, first_version - 1)
            fold(picture, events)
        return picture, seen_by(picture.values(), peer=True)

    def _keep(self, aor_id: str, version: int, picture: Held, peer_picture: Held) -> None:
        self._cache[aor_id] = (version, picture, peer_picture)
        self._cache.move_to_end(aor_id)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
