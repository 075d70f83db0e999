"""The notifier's watchers (RFC 6665 4.2) and what each is told (RFC 3680 5.2-5.3), in memory."""

from __future__ import annotations

import pytest

from domain import AddressOfRecord, Binding, ContactUpdate, normalize_aor
from domain.address_of_record import NotifiedChange
from domain.errors import IllegalTransition, InvalidRequest
from domain.publication_document import contact_id
from domain.watcher import Watcher, WatcherDialog, watcher_id
from domain.watcher_document import fold, full_state, partial_state, seen_by
from sip_gateway.reginfo import build_reginfo, validate_reginfo
from tests.support import register

T0 = 1_800_000_000.0
NODE = "node-a"
ALICE = "sip:alice@example.com"
C1, C2, C3 = "sip:alice@10.0.0.1", "sip:alice@10.0.0.2", "sip:alice@10.0.0.3"
DIALOG = WatcherDialog("w1@phone", "ours-1", "theirs-1", "sip:alice@example.com",
                       "sip:alice@10.0.0.1:5060", ("<sip:proxy.example.com;lr>",), "udp")


def watcher(peer: bool = False, expires: float = 600.0) -> Watcher:
    return Watcher.subscribe(ALICE, DIALOG, T0 + expires, peer, NODE, T0)


def replayed(aggregate: Watcher) -> Watcher:
    """The watcher as a restart folds it from its stored events."""
    events = aggregate.collect_events()
    again = None
    for event in events:
        again = event.mutate(again)
    return again


# --- the watcher's subscription --------------------------------------------------------

def test_versions_count_from_zero_one_by_one_and_survive_a_replay():
    w = watcher()
    assert (w.next_version(), w.next_cseq()) == (0, 1)
    w.notified(0, 1, True, NODE, T0)
    w.notified(1, 2, False, NODE, T0 + 1)
    w.notified(None, 3, False, NODE, T0 + 2)  # a NOTIFY without body takes no version
    assert (w.next_version(), w.next_cseq()) == (2, 4)
    again = replayed(w)
    assert again.id == watcher_id(DIALOG.dialog_id)
    assert (again.document_version, again.cseq, again.dialog, again.expires_at) == (
        1, 3, DIALOG, T0 + 600)


def test_a_notify_out_of_sequence_is_refused():
    w = watcher()
    with pytest.raises(IllegalTransition):
        w.notified(1, 1, True, NODE, T0)  # version 0 comes first
    with pytest.raises(IllegalTransition):
        w.notified(0, 2, True, NODE, T0)  # CSeq 1 comes first


def test_refresh_moves_the_expiry_and_a_terminated_watcher_takes_no_refresh():
    w = watcher(expires=60)
    assert w.seconds_left(T0 + 10.5) == 49 and not w.is_expired(T0 + 59)
    assert w.is_expired(T0 + 60)
    w.refresh(T0 + 3600, NODE, T0 + 30)
    assert w.seconds_left(T0 + 30) == 3570
    assert w.terminate("timeout", NODE, T0 + 40)
    assert not w.terminate("timeout", NODE, T0 + 41)  # once
    with pytest.raises(IllegalTransition):
        w.refresh(T0 + 7200, NODE, T0 + 42)
    assert w.seconds_left(T0 + 42) == 0 and not w.is_expired(T0 + 9999)


@pytest.mark.parametrize("reason, final", [("timeout", True), ("noresource", True),
                                           ("deactivated", True), ("failed", False)])
def test_after_termination_only_the_final_notify_is_sent(reason, final):
    w = watcher()
    w.notified(0, 1, True, NODE, T0)
    w.terminate(reason, NODE, T0 + 1)
    assert w.final_due is final
    if final:
        w.notified(1, 2, True, NODE, T0 + 1)
        assert replayed(w).final_sent
    with pytest.raises(IllegalTransition):
        w.notified(w.next_version(), w.next_cseq(), True, NODE, T0 + 2)


@pytest.mark.parametrize("dialog", [
    WatcherDialog("", "a", "b", "sip:w@x", "sip:w@x", (), "udp"),
    WatcherDialog("c", "a", "", "sip:w@x", "sip:w@x", (), "udp"),
    WatcherDialog("c", "a", "b", "sip:w@x", "", (), "udp"),
    WatcherDialog("c", "a", "b", "sip:w@x", "sip:w@x", (), "sctp"),
])
def test_an_incomplete_dialog_is_refused(dialog):
    with pytest.raises(InvalidRequest):
        Watcher.subscribe(ALICE, dialog, T0 + 60, False, NODE, T0)


def test_unknown_reasons_and_past_expiries_are_refused():
    with pytest.raises(InvalidRequest):
        Watcher.subscribe(ALICE, DIALOG, T0 - 1, False, NODE, T0)
    with pytest.raises(InvalidRequest):
        watcher().terminate("bored", NODE, T0)


# --- what a watcher is told --------------------------------------------------------------

class Aor:
    """An AddressOfRecord in memory, each command's events returned."""

    def __init__(self) -> None:
        self.aggregate = AddressOfRecord.initialize(normalize_aor(ALICE), "register", NODE,
                                                    "test", T0)
        self.aggregate.collect_events()

    def __call__(self, command) -> list:
        command(self.aggregate)
        return self.aggregate.collect_events()

    def live(self, now: float) -> list[tuple[Binding, str]]:
        return [(b, "registered") for b in self.aggregate.live_bindings(now)]


def contacts(document) -> list[tuple[str, str, str, int]]:
    [registration] = document.registrations
    return [(c.uri, c.state, c.event, c.expires) for c in registration.contacts]


def body_is_valid(document) -> None:
    validate_reginfo(build_reginfo(document))


def test_full_state_then_partial_state_for_all_nine_contact_events():
    aor = Aor()
    aor(lambda a: a.register(register("r1", 1, (C1, 600), (C2, 600)), NODE, T0))
    held = seen_by(aor.live(T0), peer=False)
    first = full_state(ALICE, held, 0, T0)
    assert first.state == "full" and first.version == 0
    assert sorted(contacts(first)) == [(C1, "active", "registered", 600),
                                       (C2, "active", "registered", 600)]
    body_is_valid(first)
    version, documents = 0, {}
    steps = [
        (lambda a: a.register(register("r1", 2, (C1, 900)), NODE, T0 + 10),
         [(C1, "active", "refreshed", 900)]),
        (lambda a: a.shorten(C2, 30, NODE, "admin", T0 + 20), [(C2, "active", "shortened", 30)]),
        (lambda a: a.create_contact(ContactUpdate(C3, 300), "admin-1", NODE, "admin", T0 + 30),
         [(C3, "active", "created", 300)]),
        (lambda a: a.deactivate(C3, NODE, "admin", T0 + 40), [(C3, "terminated", "deactivated", 0)]),
        (lambda a: a.expire(NODE, T0 + 60), [(C2, "terminated", "expired", 0)]),
        (lambda a: a.register(register("r2", 1, (C2, 600)), NODE, T0 + 61),
         [(C2, "active", "registered", 600)]),
        (lambda a: a.probation(C2, 120, NODE, "admin", T0 + 62), [(C2, "terminated", "probation", 0)]),
        (lambda a: a.register(register("r3", 1, (C3, 600)), NODE, T0 + 63),
         [(C3, "active", "registered", 600)]),
        (lambda a: a.reject(C3, NODE, "admin", T0 + 64), [(C3, "terminated", "rejected", 0)]),
        (lambda a: a.register(register("r1", 3, (C1, 0)), NODE, T0 + 65),
         [(C1, "terminated", "unregistered", 0)]),
    ]
    for command, expected in steps:
        events = aor(command)
        now = events[-1].timestamp.timestamp()
        shown = fold(held, events)
        version += 1
        document = partial_state(ALICE, held, shown, version, now)
        assert (document.state, document.version) == ("partial", version)
        assert contacts(document) == expected, command
        body_is_valid(document)
        documents[expected[0][2]] = document
    [registration] = document.registrations
    assert registration.state == "terminated" and held == {}
    assert documents["expired"].registrations[0].state == "active"  # C1 was still there
    [probation] = documents["probation"].registrations[0].contacts
    assert probation.retry_after == 120
    assert all(c.retry_after is None for c in documents["rejected"].registrations[0].contacts)


def test_a_terminated_contact_is_reported_once_then_forgotten():
    aor = Aor()
    aor(lambda a: a.register(register("r1", 1, (C1, 600), (C2, 600)), NODE, T0))
    held = seen_by(aor.live(T0), peer=False)
    events = aor(lambda a: a.register(register("r1", 2, (C1, 0)), NODE, T0 + 5))
    shown = fold(held, events)
    assert [(event, binding.contact) for event, binding, _ in shown.ended] == [
        ("unregistered", C1)]
    assert {binding.contact for binding, _ in held.values()} == {C2}
    events = aor(lambda a: a.register(register("r1", 3, (C2, 600)), NODE, T0 + 6))
    document = partial_state(ALICE, held, fold(held, events), 2, T0 + 6)
    assert contacts(document) == [(C2, "active", "refreshed", 600)]
    assert full_state(ALICE, held, 3, T0 + 7).registrations[0].contacts[0].id == contact_id(
        ALICE, next(iter(held)))


def test_a_sync_peer_sees_only_this_nodes_own_bindings():
    aor = Aor()
    aor(lambda a: a.register(register("r1", 1, (C1, 600)), NODE, T0))
    told = Binding(C2, T0 + 600, "n1", 1, T0, subscription="sub-1")
    aor(lambda a: a.apply_notified([NotifiedChange("registered", told)], NODE, "NOTIFY", T0))
    everyone = seen_by(aor.live(T0), peer=False)
    peer = seen_by(aor.live(T0), peer=True)
    assert {b.contact for b, _ in everyone.values()} == {C1, C2}
    assert {b.contact for b, _ in peer.values()} == {C1}
    refreshed = Binding(C2, T0 + 900, "n1", 2, T0, subscription="sub-1")
    events = aor(lambda a: a.apply_notified([NotifiedChange("refreshed", refreshed)], NODE,
                                            "NOTIFY", T0 + 10))
    assert not fold(peer, events, peer=True)  # nothing to tell the peer
    assert fold(everyone, events).changed  # the others hear of it
    events = aor(lambda a: a.register(register("r1", 2, (C1, 900)), NODE, T0 + 11))
    shown = fold(peer, events, peer=True)
    assert [b.contact for b in shown.changed.values()] == [C1]
    events = aor(lambda a: a.expire(NODE, T0 + 2000))
    assert [e[0] for e in fold(peer, events, peer=True).ended] == ["expired"]
