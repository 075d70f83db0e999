"""Composing the full-state reginfo document a message gives (RFC 3680 5.3-5.5, RFC 3903 4.1).

The composer keeps, per AoR, the local bindings (RFC 3261 10.3 registrations and
administrative bindings, not those learned from a NOTIFY) with the event that brought each
to its current state, and folds every message into that state, published or not. An AoR
it has not seen since it started, or whose state it holds for another point of the
history (another runner moved on meanwhile), is rebuilt by folding the AoR's stored events
up to the version just before the message, starting from the local bindings of its
prune's seed when a prune left one (`seeded`). The cache is a bounded LRU.

kamailio_compat reproduces what Kamailio 5.6 pua_reginfo PUBLISHes: REGISTER-made bindings
are `created`, the document version is always 0, and every contact carries `received`,
`path` (comma-joined) and `user_agent` (empty when unknown), outside the schema. The body
is written by the `render` function the composition root gives (the XML codec, which
projections do not import).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from domain.binding import Binding
from domain.publication_document import (
    Ended, publication_document, publication_expires, resource_uri,
)
from domain.reginfo import ReginfoDocument
from domain.watcher_document import fold as fold_view
from projections.publisher.messages import Message
from projections.retained import Seed

Local = dict[str, tuple[Binding, str]]  # binding key -> (binding, event that made it so)
# (aor_id, up to version) -> (the local bindings of the AoR's seed, stored events after it)
History = Callable[[str, int], tuple[Local, list[Any]]]
Render = Callable[[ReginfoDocument], bytes]  # the application/reginfo+xml body
CACHE_SIZE = 100_000


@dataclass(frozen=True)
class ComposedDocument:
    """One PUBLISH body for a resource (RFC 3903 4.1), before it enters the outbox."""

    node: str
    resource: str
    aor_id: str
    version: int  # the publication's own count; the body says 0 in kamailio_compat
    body: bytes
    expires: int
    final: bool  # no local binding left: after it is accepted, the publication is removed
    composed_at: float
    notification_id: int | None


def fold(local: Local, events: Iterable[Any]) -> list[Ended]:
    """Apply contact events to the local bindings; returns the local bindings they ended.
    What we PUBLISH is what a sync peer watching us sees (domain/watcher_document.py):
    this node's own bindings, a binding a notifier now tells us of leaving it silently."""
    return fold_view(local, events, peer=True).ended


def seeded(seed: Seed | None) -> Local:
    """The local bindings a prune's seed holds, each with the event of its last change."""
    if seed is None:
        return {}
    return {key: (binding, seed.changes[key].event)
            for key, binding in seed.bindings.items() if binding.is_local}


class Composer:
    """Local binding state per AoR, and the documents of published messages."""

    def __init__(self, default_domain: str | None, history: History, render: Render, *,
                 kamailio_compat: bool = False, cache_size: int = CACHE_SIZE):
        self.default_domain = default_domain
        self.history, self.render = history, render
        self.kamailio_compat = kamailio_compat
        self.cache_size = cache_size
        self._cache: OrderedDict[str, tuple[int, Local]] = OrderedDict()

    def resource(self, message: Message) -> str:
        """The PUBLISH Request-URI and `<registration aor>` of the message's AoR."""
        return resource_uri(message.aor, self.default_domain)

    def absorb(self, message: Message) -> None:
        """Fold a message that is not published (it still moves the state on)."""
        self._advance(message)

    def compose(self, message: Message, version: int) -> ComposedDocument:
        """Fold a published message and return its full-state document."""
        local, ended = self._advance(message)
        resource = self.resource(message)
        now = message.timestamp
        live = [binding for binding, _ in local.values()]
        events = {key: self._event(event) for key, (_, event) in local.items()}
        ended = [(self._event(e), b, r) for e, b, r in ended]
        document = publication_document(resource, live, events, ended,
                                        0 if self.kamailio_compat else version, now,
                                        routing=self.kamailio_compat)
        return ComposedDocument(message.node, resource, message.aor_id, version,
                                self.render(document),
                                publication_expires(live, now), not live, now,
                                message.last_notification_id)

    # Internals -----------------------------------------------------------------------

    def _advance(self, message: Message) -> tuple[Local, list[Ended]]:
        local = self._state_before(message)
        ended = fold(local, message.events)
        self._cache[message.aor_id] = (message.last_version, local)
        self._cache.move_to_end(message.aor_id)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return local, ended

    def _state_before(self, message: Message) -> Local:
        cached = self._cache.get(message.aor_id)
        if cached is not None and cached[0] == message.first_version - 1:
            return dict(cached[1])
        local: Local = {}
        if message.first_version > 1:
            local, events = self.history(message.aor_id, message.first_version - 1)
            fold(local, events)
        return local

    def _event(self, event: str) -> str:
        return "created" if self.kamailio_compat and event == "registered" else event
