"""What the watchers of an AoR see, change by change, with and without the cache."""

from __future__ import annotations

from domain import AddressOfRecord, Binding, normalize_aor
from domain.address_of_record import NotifiedChange
from projections.notifier import AorPictures
from tests.support import register

T0 = 1_800_000_000.0
NODE = "node-a"
ALICE, BOB = "sip:alice@example.com", "sip:bob@example.com"
C1, C2 = "sip:alice@10.0.0.1", "sip:alice@10.0.0.2"


class Ledger:
    """AoRs in memory; every change as (aor_id, first version, last version, events)."""

    def __init__(self) -> None:
        self.aors: dict = {}
        self.log: list = []
        self.changes: list = []

    def run(self, aor: str, command, now: float) -> tuple:
        identity = normalize_aor(aor)
        if identity.id not in self.aors:
            self.aors[identity.id] = AddressOfRecord.initialize(identity, "register", NODE,
                                                                "test", now)
        aggregate = self.aors[identity.id]
        command(aggregate)
        events = aggregate.collect_events()
        self.log.extend(events)
        change = (str(identity.id), events[0].originator_version,
                  events[-1].originator_version, events)
        self.changes.append(change)
        return change

    def history(self, aor_id: str, upto: int) -> tuple[dict, list]:
        return {}, [e for e in self.log
                    if str(e.originator_id) == aor_id and e.originator_version <= upto]


def contacts(held) -> dict[str, str]:
    return {binding.contact: event for binding, event in held.values()}


def script(ledger: Ledger) -> None:
    ledger.run(ALICE, lambda a: a.register(register("a", 1, (C1, 600)), NODE, T0), T0)
    told = Binding(C2, T0 + 600, "n1", 1, T0, subscription="sub-1")
    ledger.run(ALICE, lambda a: a.apply_notified([NotifiedChange("registered", told)], NODE,
                                                 "NOTIFY", T0 + 1), T0 + 1)
    ledger.run(BOB, lambda a: a.register(register("b", 1, ("sip:bob@10.0.0.3", 600)), NODE,
                                         T0 + 2), T0 + 2)
    ledger.run(ALICE, lambda a: a.register(register("a", 2, (C1, 900)), NODE, T0 + 3), T0 + 3)
    ledger.run(ALICE, lambda a: a.register(register("a", 3, (C1, 0)), NODE, T0 + 4), T0 + 4)


def test_change_by_change_for_everyone_and_for_peers():
    ledger = Ledger()
    script(ledger)
    pictures = AorPictures(ledger.history)
    seen = [pictures.advance(*change) for change in ledger.changes]
    assert contacts(seen[0].picture) == {C1: "registered"}
    assert [b.contact for b in seen[1].everyone.changed.values()] == [C2]
    assert not seen[1].peers  # a peer is not told what a notifier told us
    assert contacts(seen[3].picture) == {C1: "refreshed", C2: "registered"}
    assert contacts(seen[3].peer_picture) == {C1: "refreshed"}
    assert [(e, b.contact) for e, b, _ in seen[4].everyone.ended] == [("unregistered", C1)]
    assert [(e, b.contact) for e, b, _ in seen[4].peers.ended] == [("unregistered", C1)]
    assert contacts(seen[4].picture) == {C2: "registered"} and seen[4].peer_picture == {}


def test_the_stored_history_stands_in_for_the_cache():
    ledger = Ledger()
    script(ledger)
    continuous = [AorPictures(ledger.history).advance(*c) for c in ledger.changes]
    tiny = AorPictures(ledger.history, cache_size=1)  # alice and bob push each other out
    assert [tiny.advance(*c) for c in ledger.changes] == continuous
    late = AorPictures(ledger.history)  # started after the first four changes
    assert late.advance(*ledger.changes[4]) == continuous[4]


def test_a_new_watcher_sees_the_picture_as_it_stands():
    ledger = Ledger()
    script(ledger)
    alice_id = ledger.changes[0][0]
    pictures = AorPictures(ledger.history)
    assert contacts(pictures.picture(alice_id, ledger.changes[3][2])) == {
        C1: "refreshed", C2: "registered"}
    assert contacts(pictures.picture(alice_id, ledger.changes[3][2], peer=True)) == {
        C1: "refreshed"}
    after = pictures.advance(*ledger.changes[4])  # from the cache the picture left
    assert contacts(after.picture) == {C2: "registered"}
