"""Messages and documents of the publisher (RFC 3680 5.3-5.5, RFC 3903 4.1), in memory."""

from __future__ import annotations

from functools import partial

import pytest

from domain import AddressOfRecord, Binding, RegisterRequest, normalize_aor
from domain.address_of_record import EXPIRY_CAUSE, NotifiedChange
from domain.subscription import Subscription
from projections.publisher import Composer, group_messages, publishes
from sip_gateway.reginfo import build_reginfo, parse_reginfo, validate_reginfo
from tests.support import register

T0 = 1_800_000_000.0
NODE = "node-a"
ALICE = "sip:alice@example.com"
C1, C2, C3 = "sip:alice@10.0.0.1", "sip:alice@10.0.0.2", "sip:alice@10.0.0.3"


class Ledger:
    """AoR aggregates in memory and the events they recorded, in log order."""

    def __init__(self) -> None:
        self.aors: dict = {}
        self.log: list = []

    def run(self, command, now: float, cause: str = "REGISTER", aor: str = ALICE,
            node: str = NODE) -> list:
        identity = normalize_aor(aor)
        if identity.id not in self.aors:
            self.aors[identity.id] = AddressOfRecord.initialize(identity, "register", node,
                                                                cause, now)
        aggregate = self.aors[identity.id]
        command(aggregate)
        events = aggregate.collect_events()
        self.log.extend(events)
        return events

    def register(self, request: RegisterRequest, now: float, aor: str = ALICE,
                 node: str = NODE) -> list:
        return self.run(lambda a: a.register(request, node, now), now, request.cause, aor, node)

    def notify(self, changes: list[NotifiedChange], now: float, node: str = NODE) -> list:
        cause = "NOTIFY subscription=s1"
        return self.run(lambda a: a.apply_notified(changes, node, cause, now), now, cause,
                        node=node)

    def expire(self, now: float) -> list:
        return self.run(lambda a: a.expire(NODE, now), now, EXPIRY_CAUSE)

    def history(self, aor_id: str, upto: int) -> tuple[dict, list]:
        return {}, [e for e in self.log if str(e.originator_id) == aor_id
                    and e.originator_version <= upto]

    def composer(self, **options) -> Composer:
        render = partial(build_reginfo, kamailio_attributes=options.get("kamailio_compat", False))
        return Composer("example.com", self.history, render, **options)


def learned(uri: str, expires: float) -> Binding:
    return Binding(uri, expires, "n1", 1, T0, subscription="s1")


def contacts(body: bytes) -> list[tuple[str, str, str, int]]:
    validate_reginfo(body)
    [registration] = parse_reginfo(body).registrations
    return [(c.uri, c.state, c.event, c.expires) for c in registration.contacts]


def state(body: bytes) -> tuple[int, str]:
    document = parse_reginfo(body)
    return document.version, document.registrations[0].state


# Messages ----------------------------------------------------------------------------------

def test_a_register_that_expired_a_binding_first_is_one_message():
    ledger = Ledger()
    ledger.register(register("c1", 1, (C1, 60)), T0)
    events = ledger.register(register("c2", 1, (C2, 3600)), T0 + 100)
    assert [e.cause for e in events][:2] == [EXPIRY_CAUSE, EXPIRY_CAUSE]
    [message] = group_messages(events)
    assert message.cause == "REGISTER call-id=c2 cseq=1"
    assert (message.first_version, message.last_version) == (4, len(ledger.log))
    assert message.aor == ALICE and message.node == NODE and message.timestamp == T0 + 100


def test_two_registers_at_one_time_are_two_messages_and_a_bare_expiry_run_is_its_own():
    ledger = Ledger()
    first = ledger.register(register("c1", 1, (C1, 60)), T0)
    second = ledger.register(register("c2", 1, (C2, 3600)), T0)
    expiry = ledger.expire(T0 + 61)
    messages = group_messages(first + second + expiry)
    assert [len(m.events) for m in messages] == [len(first), len(second), len(expiry)]
    assert messages[2].cause == EXPIRY_CAUSE
    assert [type(e).__name__ for e in messages[2].events] == ["ContactExpired"]


def test_events_of_other_aggregates_are_ignored_and_notification_ids_are_kept():
    ledger = Ledger()
    events = ledger.register(register("c1", 1, (C1, 60)), T0)
    subscription = Subscription.observe("s1", NODE, T0).collect_events()
    mixed = subscription + events
    [message] = group_messages(mixed, list(range(10, 10 + len(mixed))))
    assert message.first_notification_id == 10 + len(subscription)
    assert message.last_notification_id == 9 + len(mixed)


def test_only_this_nodes_local_changes_are_published():
    ledger = Ledger()
    local = group_messages(ledger.register(register("c1", 1, (C1, 60)), T0))[0]
    assert publishes(local, NODE) and not publishes(local, "node-b")
    told = group_messages(ledger.notify([NotifiedChange("registered", learned(C2, T0 + 30))],
                                        T0 + 1))[0]
    assert not publishes(told, NODE)
    lapsed = group_messages(ledger.expire(T0 + 31))[0]
    assert [e.binding.contact for e in lapsed.events] == [C2]
    assert not publishes(lapsed, NODE)  # a NOTIFY-learned binding's expiry


def test_a_notify_that_first_expired_a_local_binding_is_published():
    ledger = Ledger()
    ledger.register(register("c1", 1, (C1, 60)), T0)
    events = ledger.notify([NotifiedChange("registered", learned(C2, T0 + 3600))], T0 + 61)
    [message] = group_messages(events)
    assert {e.origin for e in message.events} == {"expiry", "notify"}
    assert publishes(message, NODE)


# Documents ---------------------------------------------------------------------------------

def compose_all(composer: Composer, events: list, version: int = 0):
    return [composer.compose(m, version) if publishes(m, NODE) else composer.absorb(m)
            for m in group_messages(events)]


def test_the_register_story_gives_one_full_state_document_per_change():
    ledger, documents = Ledger(), []
    composer = ledger.composer()
    steps = [lambda: ledger.register(register("c1", 1, (C1, 3600)), T0),
             lambda: ledger.register(register("c1", 2, (C1, 3600)), T0 + 10),
             lambda: ledger.register(register("c2", 1, (C2, 1800)), T0 + 20),
             lambda: ledger.register(register("c1", 3, (C1, 0)), T0 + 30),
             lambda: ledger.register(RegisterRequest("c2", 2, wildcard=True), T0 + 40)]
    for version, step in enumerate(steps):
        [message] = group_messages(step())
        documents.append(composer.compose(message, version))
    assert [contacts(d.body) for d in documents] == [
        [(C1, "active", "registered", 3600)],
        [(C1, "active", "refreshed", 3600)],
        [(C1, "active", "refreshed", 3590), (C2, "active", "registered", 1800)],
        [(C2, "active", "registered", 1790), (C1, "terminated", "unregistered", 0)],
        [(C2, "terminated", "unregistered", 0)],
    ]
    assert [state(d.body) for d in documents] == [
        (0, "active"), (1, "active"), (2, "active"), (3, "active"), (4, "terminated")]
    assert [d.final for d in documents] == [False] * 4 + [True]
    assert [d.expires for d in documents[:4]] == [3600, 3600, 3590, 1790]
    assert documents[0].resource == ALICE and documents[0].node == NODE


def test_a_wildcard_over_three_bindings_is_one_final_document():
    ledger = Ledger()
    composer = ledger.composer()
    compose_all(composer, ledger.register(register("c1", 1, (C1, 60), (C2, 60), (C3, 60)), T0))
    [document] = compose_all(composer,
                             ledger.register(RegisterRequest("c1", 2, wildcard=True), T0 + 5))
    assert [c[1:] for c in contacts(document.body)] == [("terminated", "unregistered", 0)] * 3
    assert document.final and state(document.body)[1] == "terminated"


def test_a_register_that_expired_an_old_binding_reports_both_in_one_document():
    ledger = Ledger()
    composer = ledger.composer()
    compose_all(composer, ledger.register(register("c1", 1, (C1, 60)), T0))
    [document] = compose_all(composer, ledger.register(register("c2", 1, (C2, 600)), T0 + 90))
    assert contacts(document.body) == [(C2, "active", "registered", 600),
                                       (C1, "terminated", "expired", 0)]
    assert not document.final


def test_learned_bindings_stay_out_of_the_document():
    ledger = Ledger()
    composer = ledger.composer()
    compose_all(composer, ledger.notify([NotifiedChange("registered", learned(C2, T0 + 600))], T0))
    [document] = compose_all(composer, ledger.register(register("c1", 1, (C1, 60)), T0 + 1))
    assert contacts(document.body) == [(C1, "active", "registered", 60)]


def test_probation_carries_its_retry_after():
    ledger = Ledger()
    composer = ledger.composer()
    compose_all(composer, ledger.register(register("c1", 1, (C1, 60)), T0))
    events = ledger.run(lambda a: a.probation(C1, 30, NODE, "admin probation", T0 + 1), T0 + 1)
    [document] = compose_all(composer, events)
    [registration] = parse_reginfo(document.body).registrations
    assert (registration.contacts[0].event, registration.contacts[0].retry_after) == ("probation", 30)


def test_a_cold_composer_rebuilds_the_state_the_warm_one_holds():
    ledger = Ledger()
    warm = ledger.composer()
    compose_all(warm, ledger.register(register("c1", 1, (C1, 600)), T0))
    compose_all(warm, ledger.notify([NotifiedChange("registered", learned(C3, T0 + 900))], T0 + 5))
    compose_all(warm, ledger.register(register("c2", 1, (C2, 600)), T0 + 10))
    [message] = group_messages(ledger.register(register("c1", 2, (C1, 0)), T0 + 20))
    cold = ledger.composer()
    assert cold.compose(message, 3) == warm.compose(message, 3)


def test_a_stale_cache_entry_is_rebuilt_rather_than_trusted():
    ledger = Ledger()
    composer = ledger.composer()
    compose_all(composer, ledger.register(register("c1", 1, (C1, 600)), T0))
    ledger.register(register("c2", 1, (C2, 600)), T0 + 1)  # never shown to the composer
    [message] = group_messages(ledger.register(register("c3", 1, (C3, 600)), T0 + 2))
    assert [c[0] for c in contacts(composer.compose(message, 1).body)] == [C1, C2, C3]


def test_the_cache_is_bounded():
    ledger = Ledger()
    composer = ledger.composer(cache_size=2)
    for n in range(4):
        compose_all(composer, ledger.register(register("c", 1, (C1, 60)), T0, aor=f"sip:u{n}@h"))
    assert len(composer._cache) == 2


def test_kamailio_compat_reports_created_version_zero_and_usrloc_attributes():
    ledger = Ledger()
    composer = ledger.composer(kamailio_compat=True)
    request = register("c1", 1, (C1, 60), received="sip:192.0.2.1:5060",
                       path=("<sip:p1;lr>", "<sip:p2;lr>"))
    [document] = compose_all(composer, ledger.register(request, T0), version=7)
    parsed = parse_reginfo(document.body)
    [contact] = parsed.registrations[0].contacts
    assert parsed.version == 0 and document.version == 7
    assert (contact.event, contact.received, contact.path, contact.user_agent) == (
        "created", "sip:192.0.2.1:5060", "<sip:p1;lr>,<sip:p2;lr>", "")


@pytest.mark.parametrize("compat", [False, True])
def test_an_unpublished_message_still_moves_the_state_on(compat):
    ledger = Ledger()
    composer = ledger.composer(kamailio_compat=compat)
    for message in group_messages(ledger.register(register("c1", 1, (C1, 600)), T0)):
        composer.absorb(message)
    [document] = compose_all(composer, ledger.register(register("c2", 1, (C2, 600)), T0 + 1))
    [registration] = parse_reginfo(document.body).registrations
    assert [(c.uri, c.state) for c in registration.contacts] == [(C1, "active"), (C2, "active")]
