"""The notifier's decisions, with the store and the wire faked (RFC 6665 4.2.2, RFC 3680 5).

A fake ledger pictures AoRs from a dict and records what the notifier records; a fake
sender keeps every NOTIFY and answers as told. Changes are built with the domain's fold,
as the feed builds them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest

from domain.binding import Binding
from domain.errors import IllegalTransition
from domain.watcher import WatcherDialog
from domain.watcher_document import AorChange, Shown
from sip_gateway.client.notifier import Notifier
from sip_gateway.client.watcher_notifier import Delivery

T0 = 1_800_000_000.0
ALICE = "sip:alice@example.com"
C1, C2 = "sip:alice@10.0.0.1", "sip:alice@10.0.0.2"


def binding(contact: str, cseq: int = 1, expires: float = 600) -> Binding:
    return Binding(contact, T0 + expires, "call-" + contact[-1], cseq, T0)


@dataclass
class Row:
    """A watcher as the store hands it over (the fields the notifier reads)."""

    dialog: WatcherDialog
    aor: str = ALICE
    state: str = "active"
    reason: str | None = None
    expires_at: float = T0 + 600
    peer: bool = False
    document_version: int | None = None
    cseq: int = 0
    final_due: bool = False


def dialog_id(tag: str) -> str:
    return WatcherDialog("sub-" + tag, "ours-" + tag, tag, "", "", (), "udp").dialog_id


W1 = dialog_id("w1")


def row(tag: str = "w1", **fields) -> Row:
    return Row(WatcherDialog("sub-" + tag, "ours-" + tag, tag, "sip:w@example.com",
                             "sip:w@10.0.0.9:5062", (), "udp"), **fields)


@dataclass
class Picture:
    aor_id: str
    version: int
    everyone: dict

    def held(self, peer: bool) -> dict:
        return self.everyone


@dataclass
class Ledger:
    version: int = 0
    bindings: dict = field(default_factory=dict)
    rows: list = field(default_factory=list)
    records: list = field(default_factory=list)
    ended: list = field(default_factory=list)
    pictures: int = 0
    refuse: bool = False

    async def picture(self, aor_id: str, watch: bool) -> Picture:
        self.pictures += 1
        await asyncio.sleep(0)
        return Picture(aor_id, self.version, {b.key: (b, "registered")
                                              for b in self.bindings.values()})

    async def release(self, aor_id: str) -> None:
        pass

    async def notified(self, dialog_id, version, cseq, full) -> None:
        if self.refuse:
            raise IllegalTransition("ended meanwhile")
        self.records.append((dialog_id, version, cseq, full))

    async def end(self, dialog_id, reason) -> None:
        self.ended.append((dialog_id, reason))

    async def current(self):
        return list(self.rows)


@dataclass
class Sender:
    answers: list = field(default_factory=list)
    sent: list = field(default_factory=list)

    async def send(self, dialog, transport, cseq, state, body, flow=None) -> Delivery:
        self.sent.append((cseq, str(state), body))
        await asyncio.sleep(0)
        return self.answers.pop(0) if self.answers else Delivery(True)


def build(document) -> bytes:
    return repr((document.version, document.state,
                 [(c.uri, c.state, c.event) for r in document.registrations
                  for c in r.contacts])).encode()


def notifier(ledger: Ledger, sender: Sender, now: float = T0) -> Notifier:
    made = Notifier(ledger, sender, lambda aor: "aor-" + aor, build, lambda: now)
    made.running = True
    return made


def change(first: int, last: int, *changed: Binding, ended=(), kept=()) -> AorChange:
    """Bindings `changed` (live), `ended`, and `kept` untouched in the picture after it."""
    shown = Shown({b.key: b for b in changed}, list(ended))
    picture = {b.key: (b, "registered") for b in (*kept, *changed)}
    return AorChange("aor-" + ALICE, first, last, shown, shown, picture, picture)


def bodies(sender: Sender) -> list:
    return [eval(body) for _, _, body in sender.sent]  # noqa: S307 (our own repr)


def test_a_new_watcher_gets_full_state_then_each_change_one_version_up():
    async def story():
        ledger, sender = Ledger(version=3, bindings={"a": binding(C1)}), Sender()
        n = notifier(ledger, sender)
        n.offer(row())
        await n.settled()
        n.changed([change(4, 4, binding(C2))])
        await n.settled()
        n.changed([change(5, 5, ended=[("unregistered", binding(C1), None)],
                          kept=[binding(C2)])])
        await n.settled()
        return ledger, sender
    ledger, sender = asyncio.run(story())
    assert [b[:2] for b in bodies(sender)] == [(0, "full"), (1, "partial"), (2, "partial")]
    assert bodies(sender)[1][2] == [(C2, "active", "registered")]
    assert [cseq for cseq, _, _ in sender.sent] == [1, 2, 3]
    assert ledger.records == [(W1, 0, 1, True),
                               (W1, 1, 2, False),
                               (W1, 2, 3, False)]
    assert sender.sent[0][1] == "active;expires=600"


def test_changes_up_to_the_pictured_version_are_not_told_again():
    async def story():
        ledger, sender = Ledger(version=5, bindings={"a": binding(C1)}), Sender()
        n = notifier(ledger, sender)
        n.offer(row())
        await n.settled()
        n.changed([change(4, 5, binding(C2))])  # already in the picture
        await n.settled()
        return sender
    assert [b[1] for b in bodies(asyncio.run(story()))] == ["full"]


def test_changes_arriving_while_a_notify_is_in_flight_are_merged_into_one():
    async def story():
        ledger, sender = Ledger(version=1), Sender()
        n = notifier(ledger, sender)
        n.offer(row())
        await n.settled()
        n.changed([change(2, 2, binding(C1))])
        n.changed([change(3, 3, binding(C2), kept=[binding(C1)])])
        await n.settled()
        return sender
    told = bodies(asyncio.run(story()))
    assert [b[:2] for b in told] == [(0, "full"), (1, "partial"), (2, "partial")] or \
        [b[:2] for b in told] == [(0, "full"), (1, "partial")]
    assert {uri for b in told[1:] for uri, _, _ in b[2]} == {C1, C2}


def test_a_change_that_skips_versions_gives_full_state():
    async def story():
        ledger, sender = Ledger(version=1), Sender()
        n = notifier(ledger, sender)
        n.offer(row())
        await n.settled()
        ledger.version, ledger.bindings = 4, {"b": binding(C2)}
        n.changed([change(4, 4, binding(C2))])  # 2 and 3 never came
        await n.settled()
        return ledger, sender
    ledger, sender = asyncio.run(story())
    assert [b[:2] for b in bodies(sender)] == [(0, "full"), (1, "full")]
    assert ledger.pictures == 2


def test_a_refresh_gets_full_state_and_a_fetch_one_final_notify():
    async def story():
        ledger, sender = Ledger(version=1, bindings={"a": binding(C1)}), Sender()
        n = notifier(ledger, sender)
        n.offer(row())
        await n.settled()
        n.offer(row(expires_at=T0 + 900))  # refreshed
        await n.settled()
        n.offer(row("w2", state="terminated", reason="timeout", final_due=True))  # a fetch
        await n.settled()
        return n, sender
    n, sender = asyncio.run(story())
    assert [(cseq, state) for cseq, state, _ in sender.sent] == [
        (1, "active;expires=600"), (2, "active;expires=900"), (1, "terminated;reason=timeout")]
    assert [b[:2] for b in bodies(sender)] == [(0, "full"), (1, "full"), (0, "full")]
    assert list(n.served) == [W1]


@pytest.mark.parametrize("answer", [Delivery(False, "481 Call/Transaction Does Not Exist"),
                                    Delivery(False, "no answer (timeout or transport error)")])
def test_a_failed_notify_ends_the_subscription_without_a_final_notify(answer):
    async def story():
        ledger, sender = Ledger(version=1), Sender([answer])
        n = notifier(ledger, sender)
        n.offer(row())
        await n.settled()
        n.changed([change(2, 2, binding(C1))])
        await n.settled()
        return n, ledger, sender
    n, ledger, sender = asyncio.run(story())
    assert len(sender.sent) == 1 and not n.served
    assert ledger.ended == [(W1, "failed")]


def test_a_lapsed_subscription_ends_with_timeout_and_a_final_notify():
    async def story():
        ledger, sender = Ledger(version=1), Sender()
        n = notifier(ledger, sender)
        n.offer(row(expires_at=T0 + 1))
        await n.settled()
        n.clock = lambda: T0 + 2
        await n._expire()
        await n.settled()
        return n, ledger, sender
    n, ledger, sender = asyncio.run(story())
    assert ledger.ended == [(W1, "timeout")]
    assert [state for _, state, _ in sender.sent] == ["active;expires=1",
                                                     "terminated;reason=timeout"]
    assert not n.served


def test_stop_ends_every_subscription_with_deactivated():
    async def story():
        ledger, sender = Ledger(version=1), Sender()
        n = notifier(ledger, sender)
        n.offer(row("w1"))
        n.offer(row("w2"))
        await n.settled()
        await n.stop(5)
        return ledger, sender
    ledger, sender = asyncio.run(story())
    assert sorted(reason for _, reason in ledger.ended) == ["deactivated", "deactivated"]
    assert [state for _, state, _ in sender.sent].count("terminated;reason=deactivated") == 2


def test_resumed_subscriptions_go_on_after_the_recorded_numbers():
    async def story():
        ledger, sender = Ledger(version=7, rows=[row(document_version=4, cseq=6)]), Sender()
        n = Notifier(ledger, sender, lambda aor: "aor-" + aor, build, lambda: T0)
        task = asyncio.create_task(n.run())
        await asyncio.sleep(0.05)
        await n.settled()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return ledger, sender
    ledger, sender = asyncio.run(story())
    assert ledger.records == [(W1, 5, 7, True)]


def test_a_subscription_ended_meanwhile_is_dropped_without_sending():
    async def story():
        ledger, sender = Ledger(version=1, refuse=True), Sender()
        n = notifier(ledger, sender)
        n.offer(row())
        await n.settled()
        return n, sender
    n, sender = asyncio.run(story())
    assert not sender.sent and not n.served


def test_shown_then_keeps_each_bindings_latest_report():
    a, b = binding(C1).key, binding(C2).key
    first = Shown({a: binding(C1), b: binding(C2)}, [])
    later = Shown({a: binding(C1, 2)}, [("unregistered", binding(C2), None)])
    merged = first.then(later)
    assert merged.changed == {a: binding(C1, 2)}
    assert [(event, x.contact) for event, x, _ in merged.ended] == [("unregistered", C2)]
    again = merged.then(Shown({b: binding(C2, 3)}, []))
    assert set(again.changed) == {a, b} and again.ended == []
