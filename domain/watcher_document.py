"""What one watcher is told of an AoR (RFC 3680 5.3): full state, then partial state.

A watcher holds its own picture of the AoR: the bindings it was told are live, each with
the event that brought it to its current state. `fold` moves that picture on by one
change (the AoR's contact events of one transaction) and returns what the change showed
the watcher: the live bindings it touched and the bindings it ended, reported once and
then forgotten (RFC 3680 5.1). The first NOTIFY of a subscription, and the one after each
refresh, carries `full_state`; every change after that `partial_state`, with the
watcher's next version.

A watcher sees the whole AoR, the bindings learned from a NOTIFY included, except a sync
peer (another registrar keeping in step with this one): it sees only this node's own
bindings, those made by a REGISTER or an administrator here, so that two nodes subscribed
to each other never tell each other back what they were told (loop prevention by origin,
as for PUBLISH). A binding that a notifier now tells us of leaves a peer's picture without
a word, as it leaves what we PUBLISH.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from domain.binding import Binding
from domain.binding_refresh import binding_after
from domain.events import ContactEvent, ContactProbation
from domain.publication_document import Ended, partial_document, publication_document
from domain.reginfo import ReginfoDocument

Held = dict[str, tuple[Binding, str]]  # binding key -> (binding, event that made it so)


@dataclass(frozen=True)
class Shown:
    """What one change showed a watcher: live bindings touched, bindings ended."""

    changed: dict[str, Binding]
    ended: list[Ended]

    def __bool__(self) -> bool:
        return bool(self.changed or self.ended)

    def then(self, later: Shown) -> Shown:
        """What this change and a `later` one show together, as one partial state: a
        binding's latest report wins (a binding ended, then made again, is live)."""
        changed = {**self.changed, **later.changed}
        ended = {binding.key: item for item in self.ended for binding in (item[1],)}
        for item in later.ended:
            changed.pop(item[1].key, None)
            ended[item[1].key] = item
        for key in later.changed:
            ended.pop(key, None)
        return Shown(changed, list(ended.values()))


NOTHING = Shown({}, [])


@dataclass(frozen=True)
class AorChange:
    """One change of an AoR (the contact events of its versions `first` to `last`), what it
    showed each kind of watcher, and their pictures after it."""

    aor_id: str
    first: int
    last: int
    everyone: Shown
    peers: Shown
    picture: Held  # every binding, after the change
    peer_picture: Held  # this node's own bindings, after the change

    def shown(self, peer: bool) -> Shown:
        return self.peers if peer else self.everyone

    def held(self, peer: bool) -> Held:
        return self.peer_picture if peer else self.picture


def fold(held: Held, events: Iterable[Any], peer: bool = False) -> Shown:
    """Apply one change's contact events to a watcher's picture `held` (in place)."""
    changed: dict[str, Binding] = {}
    ended: list[Ended] = []
    for event in events:
        if not isinstance(event, ContactEvent):
            continue
        key = event.binding.key
        if event.TERMINATES:
            if held.pop(key, None) is not None:
                changed.pop(key, None)
                retry = event.retry_after if isinstance(event, ContactProbation) else None
                ended.append((event.EVENT, event.binding, retry))
        elif peer and not event.binding.is_local:
            held.pop(key, None)
            changed.pop(key, None)
        else:
            before = held.get(key)
            binding = binding_after(event.binding, before and before[0])
            held[key] = (binding, event.EVENT)
            changed[key] = binding
    return Shown(changed, ended)


def seen_by(bindings: Iterable[tuple[Binding, str]], peer: bool) -> Held:
    """A new watcher's picture of the AoR's live bindings (with their last events)."""
    return {binding.key: (binding, event) for binding, event in bindings
            if not peer or binding.is_local}


def full_state(resource: str, held: Held, version: int, now: float) -> ReginfoDocument:
    """Every binding the watcher sees, live; nothing ended (RFC 3680 5.3 full state)."""
    live = [binding for binding, _ in held.values() if not binding.is_due(now)]
    events = {binding.key: event for binding, event in held.values()}
    return publication_document(resource, live, events, (), version, now)


def partial_state(resource: str, held: Held, shown: Shown, version: int,
                  now: float) -> ReginfoDocument:
    """The contacts one change touched (RFC 3680 5.3 partial state); `held` is the
    watcher's picture after that change."""
    events = {key: held[key][1] for key in shown.changed}
    remaining = sum(1 for binding, _ in held.values() if not binding.is_due(now))
    changed = [binding for binding in shown.changed.values() if not binding.is_due(now)]
    return partial_document(resource, changed, events, shown.ended, remaining, version, now)
