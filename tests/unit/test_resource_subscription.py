"""The ResourceSubscription aggregate (RFC 6665 4.1, RFC 3680 3) as short stories, no IO."""

from __future__ import annotations

import pytest
from eventsourcing.application import Application
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.errors import DomainError, InvalidRequest
from domain.resource_subscription import (
    ACTIVE,
    CLOSED,
    REQUEST_TOPICS,
    REQUESTED,
    RESOURCE_SUBSCRIPTION_TOPICS,
    WAITING,
    WITHDRAWN,
    DialogState,
    ResourceSubscription,
    SubscriptionClosed,
    SubscriptionEstablished,
    SubscriptionFailed,
    SubscriptionRenewed,
    SubscriptionRequested,
    SubscriptionWithdrawn,
    resource_subscription_id,
)
from sip_gateway.server.notify_modes import notify_dialog_id as dialog_id
from sip_gateway.sip import SipRequest, parse_message

T0 = 1_800_000_000.0
BOB = "sip:bob@example.com"
NODE = "node-a"
DIALOG = DialogState(call_id="c0ffee@127.0.0.1", local_tag="ours-1", remote_tag="theirs-1",
                     remote_target="sip:presence@127.0.0.1:5080",
                     route_set=("<sip:proxy.example.com;lr>",), cseq=1, expires_at=T0 + 600)


def requested(expires: int = 600, origin: str = "cli") -> ResourceSubscription:
    return ResourceSubscription.request(BOB, expires, origin, NODE, T0)


def topics(subscription: ResourceSubscription) -> list[str]:
    return [type(event).TOPIC for event in subscription.collect_events()]


def snapshot(subscription: ResourceSubscription) -> tuple:
    return (subscription.id, subscription.version, subscription.resource, subscription.expires,
            subscription.state, subscription.dialog, subscription.failures,
            subscription.last_error, subscription.wanted)


def replay(events) -> ResourceSubscription:
    aggregate = None
    for event in events:
        aggregate = event.mutate(aggregate)
    assert aggregate is not None
    return aggregate


# -- requesting --------------------------------------------------------------------------

def test_a_request_starts_the_aggregate_under_an_id_fixed_by_the_resource():
    subscription = requested(600, "config")
    assert subscription.id == resource_subscription_id(BOB)
    assert resource_subscription_id(BOB) != resource_subscription_id("sip:carol@example.com")
    assert (subscription.resource, subscription.expires, subscription.state) == (BOB, 600, REQUESTED)
    assert (subscription.dialog, subscription.failures, subscription.last_error) == (None, 0, None)
    assert subscription.wanted
    [event] = subscription.collect_events()
    assert isinstance(event, SubscriptionRequested)
    assert (event.resource, event.expires, event.origin, event.node) == (BOB, 600, "config", NODE)
    assert event.timestamp.timestamp() == T0


def test_renew_with_the_same_expires_while_wanted_records_nothing():
    subscription = requested(600)
    subscription.collect_events()
    assert subscription.renew(600, "cli", NODE, T0 + 1) is False
    assert subscription.collect_events() == []
    subscription.establish(DIALOG, NODE, T0 + 2)
    subscription.collect_events()
    assert subscription.renew(600, "register", NODE, T0 + 3) is False
    assert subscription.collect_events() == []
    assert subscription.state == ACTIVE


def test_renew_with_another_expires_records_it_and_keeps_the_dialog():
    subscription = requested(600)
    subscription.establish(DIALOG, NODE, T0 + 1)
    subscription.collect_events()
    assert subscription.renew(3600, "cli", NODE, T0 + 2) is True
    [event] = subscription.collect_events()
    assert isinstance(event, SubscriptionRenewed)
    assert (event.expires, event.origin) == (3600, "cli")
    assert (subscription.expires, subscription.state, subscription.dialog) == (3600, ACTIVE, DIALOG)


@pytest.mark.parametrize("end", ["withdraw", "close"])
def test_renew_after_withdraw_or_close_starts_afresh(end):
    subscription = requested(600)
    subscription.establish(DIALOG, NODE, T0 + 1)
    subscription.fail("timeout", False, NODE, T0 + 2)
    if end == "withdraw":
        assert subscription.withdraw("cli", NODE, T0 + 3)
        assert subscription.state == WITHDRAWN
    else:
        subscription.close("489: no reg package", NODE, T0 + 3)
        assert subscription.state == CLOSED
    assert not subscription.wanted
    subscription.collect_events()

    assert subscription.renew(600, "cli", NODE, T0 + 4) is True  # same expires: not wanted now
    assert topics(subscription) == [SubscriptionRenewed.TOPIC]
    assert (subscription.state, subscription.dialog, subscription.failures,
            subscription.last_error) == (REQUESTED, None, 0, None)
    assert subscription.wanted


# -- what the keeper records ------------------------------------------------------------------

def test_establish_records_the_dialog_and_makes_it_active():
    subscription = requested()
    subscription.collect_events()
    subscription.establish(DIALOG, NODE, T0 + 1)
    [event] = subscription.collect_events()
    assert isinstance(event, SubscriptionEstablished)
    assert (event.call_id, event.local_tag, event.remote_tag, event.remote_target, event.cseq,
            event.expires_at) == ("c0ffee@127.0.0.1", "ours-1", "theirs-1",
                                  "sip:presence@127.0.0.1:5080", 1, T0 + 600)
    assert event.route_set == ["<sip:proxy.example.com;lr>"]
    assert (subscription.state, subscription.dialog) == (ACTIVE, DIALOG)
    assert isinstance(subscription.dialog.route_set, tuple)


def test_establish_is_ignored_once_not_wanted():
    subscription = requested()
    subscription.withdraw("cli", NODE, T0 + 1)
    subscription.collect_events()
    subscription.establish(DIALOG, NODE, T0 + 2)
    assert subscription.collect_events() == []
    assert (subscription.state, subscription.dialog) == (WITHDRAWN, None)


def test_a_failure_without_a_dialog_waits_and_counts():
    subscription = requested()
    subscription.collect_events()
    subscription.fail("503 response", False, NODE, T0 + 1)
    subscription.fail("timeout", False, NODE, T0 + 2)
    assert topics(subscription) == [SubscriptionFailed.TOPIC] * 2
    assert (subscription.state, subscription.failures, subscription.last_error) == (
        WAITING, 2, "timeout")
    assert subscription.wanted


def test_a_failed_refresh_keeps_the_dialog_and_the_active_state():
    subscription = requested()
    subscription.establish(DIALOG, NODE, T0 + 1)
    subscription.fail("500 response", False, NODE, T0 + 2)
    assert (subscription.state, subscription.dialog, subscription.failures) == (ACTIVE, DIALOG, 1)


def test_a_lost_dialog_is_cleared_and_the_subscription_waits():
    subscription = requested()
    subscription.establish(DIALOG, NODE, T0 + 1)
    subscription.collect_events()
    subscription.fail("481 in the dialog", True, NODE, T0 + 2)
    [event] = subscription.collect_events()
    assert (event.reason, event.dialog_lost) == ("481 in the dialog", True)
    assert (subscription.state, subscription.dialog, subscription.last_error) == (
        WAITING, None, "481 in the dialog")


def test_establish_resets_the_failure_counter_and_the_last_error():
    subscription = requested()
    for n in range(3):
        subscription.fail(f"timeout {n}", False, NODE, T0 + n)
    assert subscription.failures == 3
    subscription.establish(DIALOG, NODE, T0 + 10)
    assert (subscription.state, subscription.failures, subscription.last_error) == (ACTIVE, 0, None)


def test_a_failure_while_withdrawn_counts_but_keeps_it_withdrawn():
    subscription = requested()
    subscription.establish(DIALOG, NODE, T0 + 1)
    subscription.withdraw("cli", NODE, T0 + 2)
    subscription.fail("timeout", False, NODE, T0 + 3)
    assert (subscription.state, subscription.failures, subscription.dialog) == (WITHDRAWN, 1, DIALOG)


def test_withdraw_records_once_and_only_while_wanted():
    subscription = requested()
    subscription.collect_events()
    assert subscription.withdraw("cli", NODE, T0 + 1) is True
    [event] = subscription.collect_events()
    assert isinstance(event, SubscriptionWithdrawn) and event.origin == "cli"
    assert subscription.withdraw("cli", NODE, T0 + 2) is False
    assert subscription.collect_events() == []
    assert (subscription.state, subscription.wanted) == (WITHDRAWN, False)


def test_close_ends_it_for_good_and_drops_the_dialog():
    subscription = requested()
    subscription.establish(DIALOG, NODE, T0 + 1)
    subscription.collect_events()
    subscription.close("terminated;reason=rejected", NODE, T0 + 2)
    [event] = subscription.collect_events()
    assert isinstance(event, SubscriptionClosed)
    assert (subscription.state, subscription.dialog, subscription.last_error) == (
        CLOSED, None, "terminated;reason=rejected")
    subscription.close("again", NODE, T0 + 3)
    subscription.fail("late timeout", False, NODE, T0 + 4)
    assert subscription.withdraw("cli", NODE, T0 + 5) is False
    assert subscription.collect_events() == []
    assert (subscription.failures, subscription.last_error) == (0, "terminated;reason=rejected")


def test_closing_a_withdrawn_subscription_completes_the_withdrawal():
    subscription = requested()
    subscription.establish(DIALOG, NODE, T0 + 1)
    subscription.withdraw("cli", NODE, T0 + 2)
    subscription.close("unsubscribed", NODE, T0 + 3)
    assert (subscription.state, subscription.dialog, subscription.wanted) == (CLOSED, None, False)


# -- invalid requests ----------------------------------------------------------------------

@pytest.mark.parametrize("expires", [0, -1, 2**32, 1.5, "600", True, None])
def test_an_invalid_expires_is_refused(expires):
    with pytest.raises(InvalidRequest, match="expires"):
        ResourceSubscription.request(BOB, expires, "cli", NODE, T0)
    subscription = requested()
    with pytest.raises(InvalidRequest):
        subscription.renew(expires, "cli", NODE, T0 + 1)


@pytest.mark.parametrize("origin", ["", "admin", "CLI", "notify"])
def test_an_unknown_origin_is_refused(origin):
    with pytest.raises(InvalidRequest, match="origin"):
        ResourceSubscription.request(BOB, 600, origin, NODE, T0)
    subscription = requested()
    subscription.collect_events()
    with pytest.raises(InvalidRequest):
        subscription.renew(900, origin, NODE, T0 + 1)
    assert subscription.collect_events() == []


def test_invalid_request_is_a_domain_error_answered_400():
    assert issubclass(InvalidRequest, DomainError) and InvalidRequest.sip_status == 400


@pytest.mark.parametrize("expires", [1, 3761, 2**32 - 1])
def test_the_expires_range_bounds_are_accepted(expires):
    assert requested(expires).expires == expires


# -- the dialog id links to the NOTIFY intake ------------------------------------------------

def test_dialog_id_is_the_one_a_notify_in_the_same_dialog_has():
    raw = (
        "NOTIFY sip:reginfo@127.0.0.1:5070 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bK-n1\r\n"
        "From: <sip:bob@example.com>;tag=theirs-1\r\n"
        "To: <sip:reginfo@127.0.0.1:5070>;tag=ours-1\r\n"
        "Call-ID: c0ffee@127.0.0.1\r\n"
        "CSeq: 1 NOTIFY\r\n"
        "Event: reg\r\n"
        "Subscription-State: active;expires=600\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()
    notify = parse_message(raw)
    assert isinstance(notify, SipRequest)
    assert DIALOG.dialog_id == dialog_id(notify) == "c0ffee@127.0.0.1;local=ours-1;remote=theirs-1"


# -- replay ----------------------------------------------------------------------------------

def story() -> ResourceSubscription:
    subscription = requested(600)
    subscription.fail("timeout", False, NODE, T0 + 1)
    subscription.establish(DIALOG, NODE, T0 + 2)
    subscription.fail("481 in the dialog", True, NODE, T0 + 3)
    subscription.renew(900, "config", NODE, T0 + 4)
    subscription.withdraw("cli", NODE, T0 + 5)
    subscription.renew(900, "cli", NODE, T0 + 6)
    subscription.establish(DIALOG, NODE, T0 + 7)
    return subscription


def test_replaying_the_events_gives_the_same_state():
    subscription = story()
    events = subscription.collect_events()
    assert len(events) == 8 and subscription.version == 8
    assert {type(event).TOPIC for event in events} <= set(RESOURCE_SUBSCRIPTION_TOPICS)
    assert snapshot(replay(events)) == snapshot(subscription)
    assert (subscription.state, subscription.expires, subscription.dialog) == (ACTIVE, 900, DIALOG)


def test_a_store_round_trip_gives_the_same_state():
    subscription = story()
    subscription.close("terminated;reason=rejected", NODE, T0 + 8)
    expected = snapshot(subscription)
    app = Application()  # in-memory (POPO) persistence: no IO
    try:
        app.save(subscription)
        loaded = app.repository.get(resource_subscription_id(BOB))
        assert loaded is not subscription
        assert snapshot(loaded) == expected
        assert (loaded.state, loaded.last_error, loaded.version) == (
            CLOSED, "terminated;reason=rejected", 9)
        stored = [type(e).TOPIC for e in app.repository.event_store.get(loaded.id)]
        assert [topic for topic in stored if topic in REQUEST_TOPICS] == [
            SubscriptionRequested.TOPIC, SubscriptionRenewed.TOPIC,
            SubscriptionWithdrawn.TOPIC, SubscriptionRenewed.TOPIC]
    finally:
        app.close()


COMMANDS = st.lists(st.one_of(
    st.tuples(st.just("renew"), st.sampled_from([600, 900]), st.sampled_from(["cli", "config"])),
    st.tuples(st.just("establish"), st.integers(1, 5)),
    st.tuples(st.just("fail"), st.booleans()),
    st.tuples(st.just("withdraw")),
    st.tuples(st.just("close")),
), max_size=25)


@settings(max_examples=150, deadline=None)
@given(COMMANDS)
def test_any_history_replays_to_the_same_state(commands):
    subscription = requested(600)
    for n, command in enumerate(commands, start=1):
        now = T0 + n
        if command[0] == "renew":
            subscription.renew(command[1], command[2], NODE, now)
        elif command[0] == "establish":
            subscription.establish(DialogState("c", "l", "r", None, (), command[1], now + 600),
                                   NODE, now)
        elif command[0] == "fail":
            subscription.fail("x", command[1], NODE, now)
        elif command[0] == "withdraw":
            subscription.withdraw("cli", NODE, now)
        else:
            subscription.close("y", NODE, now)
        assert subscription.wanted == (subscription.state in (REQUESTED, ACTIVE, WAITING))
        assert subscription.state != ACTIVE or subscription.dialog is not None
        assert subscription.state != CLOSED or subscription.dialog is None
    events = subscription.collect_events()
    assert snapshot(replay(events)) == snapshot(subscription)
