"""The subscriber side of a reg subscription (RFC 6665 4.1) as short stories on a fake clock."""

import math
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sip_gateway.server.notify_modes import notify_dialog_id as dialog_id
from sip_gateway.sip import CSeq, Event, NameAddr, SipRequest, SubscriptionState, Via, parse_message
from sip_gateway.client.subscriber import (
    IN_FLIGHT,
    SUBSCRIBER_MACHINE,
    TERMINATED,
    SUBSCRIBE_BACKOFF,
    SubscriberDialog,
    build_subscribe,
    refresh_lead,
)

T0 = 1_800_000_000.0  # the fake clock's start; every `now` is T0 + seconds
RESOURCE = "sip:dora@example.com"
SERVER = "sip:reginfo@127.0.0.1:5070"  # server_address
NOTIFIER = "<sip:127.0.0.1:5080>"  # the presence server's Contact in the capture
STATES = {state for state, _ in SUBSCRIBER_MACHINE} | set(SUBSCRIBER_MACHINE.values())
NOTIFY_0005 = (Path(__file__).resolve().parents[1] / "fixtures" / "kamailio-5.6" / "messages"
               / "C-reginfo-subscribe" / "0005-presence-to-registrar-NOTIFY.sip")

# What Kamailio 5.6 pua_reginfo sent (capture C, 0002): the headers we send too.
KAMAILIO_SUBSCRIBE = (
    b"SUBSCRIBE sip:dora@example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK285c.36ef1c80000000000000000000000000.0\r\n"
    b"To: <sip:dora@example.com>\r\n"
    b"From: <sip:reginfo@127.0.0.1:5070>;tag=17e38db12cb64994c952f0bfdfeab491-721eeab2\r\n"
    b"CSeq: 10 SUBSCRIBE\r\n"
    b"Call-ID: 702fb55f561e4a97-6802@127.0.0.1\r\n"
    b"Content-Length: 0\r\n"
    b"User-Agent: kamailio-lab-registrar\r\n"
    b"Max-Forwards: 70\r\n"
    b"Event: reg\r\n"
    b"Contact: <sip:reginfo@127.0.0.1:5070>\r\n"
    b"Expires: 310\r\n"
    b"\r\n"
)


class FakeRandom:
    """Counting bytes for Call-IDs and tags; a settable fraction for the jitter."""

    def __init__(self, jitter=0.5):
        self.count, self.jitter = 0, jitter

    def bytes(self, size):
        self.count += 1
        return self.count.to_bytes(size, "big")

    def uniform(self):
        return self.jitter


def subscriber(expires=3761, jitter=0.5, **options):
    fake = FakeRandom(jitter)
    return SubscriberDialog(RESOURCE, SERVER, expires, random_bytes=fake.bytes,
                            uniform=fake.uniform, **options)


def notify(dialog, plan, state, *, now, from_tag="nt-1", contact=NOTIFIER, call_id=None,
           to_tag=None):
    return dialog.on_notify(
        call_id=plan.call_id if call_id is None else call_id, from_tag=from_tag,
        to_tag=plan.local_tag if to_tag is None else to_tag,
        subscription_state=SubscriptionState.parse(state), contact=contact, now=now)


def established(granted=600, **options):
    """Initial SUBSCRIBE at T0, 200 with `granted` at T0+0.1, first NOTIFY at T0+0.2."""
    dialog = subscriber(**options)
    plan = dialog.next_request(T0)
    dialog.on_response(200, to_tag="nt-1", contact=NOTIFIER, expires=granted, now=T0 + 0.1)
    assert notify(dialog, plan, f"active;expires={granted}", now=T0 + 0.2)
    return dialog, plan


def build(plan, **options):
    return build_subscribe(plan, via_host="127.0.0.1", via_port=5070, branch="z9hG4bK-sub-1",
                           contact=SERVER, **options)


def wire(plan, **options):
    """The built request, serialized and parsed back."""
    request = build(plan, **options)
    parsed = parse_message(request.serialize())
    assert isinstance(parsed, SipRequest) and parsed == request
    return parsed


# -- the happy path ------------------------------------------------------------------------

def test_initial_subscribe_then_200_then_an_in_dialog_refresh_before_expiry():
    dialog = subscriber()
    assert (dialog.state, dialog.next_deadline()) == ("idle", -math.inf)

    plan = dialog.next_request(T0)
    assert (plan.kind, plan.cseq, plan.expires, plan.request_uri) == ("initial", 1, 3761, RESOURCE)
    assert plan.remote_tag is None and plan is dialog.in_flight
    assert (dialog.state, dialog.next_request(T0 + 1), dialog.next_deadline()) == (
        "subscribing", None, None)

    dialog.on_response(200, to_tag="nt-1", contact=NOTIFIER, expires=600, now=T0 + 0.1)
    assert notify(dialog, plan, "active;expires=600", now=T0 + 0.2)
    assert (dialog.state, dialog.expires_at, dialog.failures) == ("active", T0 + 600.2, 0)
    assert dialog.dialog_id == f"{plan.call_id};local={plan.local_tag};remote=nt-1"
    assert dialog.next_deadline() == pytest.approx(T0 + 540.2)  # 10 % of 600 s before expiry
    assert dialog.next_request(T0 + 540) is None

    refresh = dialog.next_request(T0 + 540.2)
    assert (refresh.kind, refresh.cseq, refresh.call_id, refresh.local_tag, refresh.remote_tag) == (
        "refresh", 2, plan.call_id, plan.local_tag, "nt-1")
    assert (refresh.request_uri, refresh.expires, dialog.state) == (
        "sip:127.0.0.1:5080", 3761, "refreshing")
    request = wire(refresh)
    assert request.uri == "sip:127.0.0.1:5080"
    assert NameAddr.parse(request.headers.get("To")).tag == "nt-1"
    assert CSeq.parse(request.headers.get("CSeq")) == CSeq(2, "SUBSCRIBE")

    dialog.on_response(200, to_tag="nt-1", expires=600, now=T0 + 540.3)
    assert (dialog.state, dialog.expires_at) == ("active", T0 + 1140.3)


@pytest.mark.parametrize("lifetime, lead", [(3761, 376.1), (600, 60), (30, 5), (8, 4), (0, 0)])
def test_the_refresh_goes_10_percent_or_5_s_before_expiry_but_not_before_half_way(lifetime, lead):
    assert refresh_lead(lifetime) == pytest.approx(lead)


def test_a_notify_before_the_2xx_establishes_the_dialog():
    dialog = subscriber()
    plan = dialog.next_request(T0)

    assert notify(dialog, plan, "active;expires=300", now=T0 + 0.05)
    assert (dialog.state, dialog.remote_target, dialog.notifier_state) == (
        "subscribing", "sip:127.0.0.1:5080", "active")
    assert dialog.dialog_id == f"{plan.call_id};local={plan.local_tag};remote=nt-1"
    assert not notify(dialog, plan, "active", now=T0 + 0.06, from_tag="other-fork")

    dialog.on_response(200, to_tag="nt-1", expires=310, now=T0 + 0.1)
    assert (dialog.state, dialog.expires_at) == ("active", T0 + 310.1)  # the 2xx is authoritative
    assert dialog.next_request(T0 + 32.1) is None  # Timer N was stopped by the NOTIFY


def test_a_notify_of_another_dialog_is_not_ours():
    dialog = subscriber()
    assert not dialog.on_notify(call_id="x", from_tag="a", to_tag="b", now=T0,
                                subscription_state=SubscriptionState("active"))
    dialog, plan = established()
    assert not notify(dialog, plan, "active", now=T0 + 1, call_id="another-call")
    assert not notify(dialog, plan, "active", now=T0 + 1, to_tag="another-local-tag")
    assert not notify(dialog, plan, "active", now=T0 + 1, from_tag="another-notifier")
    assert not notify(dialog, plan, "terminated", now=T0 + 1, from_tag="nt-1;bad")
    assert notify(dialog, plan, "active", now=T0 + 1)


def test_the_dialog_id_is_the_one_a_notify_in_the_dialog_has():
    dialog, plan = established()
    raw = NOTIFY_0005.read_bytes().decode()
    raw = raw.replace("702fb55f561e4a97-6802@127.0.0.1", plan.call_id)
    raw = raw.replace("17e38db12cb64994c952f0bfdfeab491-721eeab2", plan.local_tag)
    raw = raw.replace("48b5b8952e8d0bca6256941910840e90-ce65c866", "nt-1")
    message = parse_message(raw.encode())

    assert dialog_id(message) == dialog.dialog_id
    assert dialog.on_notify(
        call_id=message.headers.get("Call-ID"), now=T0 + 2,
        from_tag=NameAddr.parse(message.headers.get("From")).tag,
        to_tag=NameAddr.parse(message.headers.get("To")).tag,
        subscription_state=SubscriptionState.parse(message.headers.get("Subscription-State")),
        contact=message.headers.get("Contact"))
    assert dialog.expires_at == T0 + 2 + 310


def test_a_2xx_without_a_notify_within_timer_n_is_a_failed_attempt():
    dialog = subscriber()
    plan = dialog.next_request(T0)
    dialog.on_response(200, to_tag="nt-1", expires=600, now=T0 + 0.1)
    assert dialog.next_deadline() == T0 + 32  # 64*T1 after the SUBSCRIBE went out

    assert dialog.next_request(T0 + 32) is None
    assert (dialog.state, dialog.failures, dialog.dialog_id) == ("waiting", 1, None)
    assert dialog.next_deadline() == T0 + 32 + 1.0  # half of the 2 s ceiling
    assert dialog.next_request(T0 + 33).call_id != plan.call_id


# -- failures ------------------------------------------------------------------------------

def test_423_retries_at_once_with_min_expires_on_the_same_call_id():
    dialog = subscriber()
    first = dialog.next_request(T0)
    dialog.on_response(423, min_expires=4000, now=T0 + 0.1)

    assert (dialog.state, dialog.next_deadline(), dialog.failures) == ("waiting", T0 + 0.1, 0)
    again = dialog.next_request(T0 + 0.1)
    assert (again.kind, again.expires, again.call_id, again.local_tag, again.cseq) == (
        "initial", 4000, first.call_id, first.local_tag, 2)
    assert wire(again).headers.get("Expires") == "4000"


def test_423_to_a_refresh_retries_the_refresh_at_once_with_min_expires():
    dialog, plan = established()
    dialog.next_request(T0 + 540.2)
    dialog.on_response(423, min_expires=7200, now=T0 + 540.3)

    again = dialog.next_request(T0 + 540.3)
    assert (again.kind, again.expires, again.cseq, again.remote_tag) == ("refresh", 7200, 3, "nt-1")


def test_423_without_a_larger_min_expires_backs_off():
    dialog = subscriber()
    dialog.next_request(T0)
    dialog.on_response(423, min_expires=100, now=T0 + 1)
    assert (dialog.state, dialog.failures, dialog.next_deadline()) == ("waiting", 1, T0 + 2)


def test_481_to_a_refresh_starts_a_new_subscription_with_a_new_call_id():
    dialog, plan = established()
    dialog.next_request(T0 + 540.2)
    dialog.on_response(481, now=T0 + 540.3)

    assert (dialog.state, dialog.dialog_id, dialog.next_deadline()) == (
        "waiting", None, T0 + 540.3)
    fresh = dialog.next_request(T0 + 540.3)
    assert (fresh.kind, fresh.cseq, fresh.remote_tag, fresh.request_uri) == (
        "initial", 1, None, RESOURCE)
    assert fresh.call_id != plan.call_id and fresh.local_tag != plan.local_tag
    assert not notify(dialog, plan, "active", now=T0 + 541)  # the old dialog is gone


@pytest.mark.parametrize("established_first", [False, True])
def test_489_terminates_without_retry(established_first):
    if established_first:
        dialog, _ = established()
        dialog.next_request(T0 + 540.2)
    else:
        dialog = subscriber()
        dialog.next_request(T0)
    dialog.on_response(489, now=T0 + 600)

    assert (dialog.state, dialog.next_deadline(), dialog.in_flight) == ("terminated", None, None)
    assert dialog.next_request(T0 + 10**6) is None
    assert "489" in dialog.last_error


def test_timeouts_back_off_exponentially_to_600_s():
    dialog = subscriber(jitter=0.999)
    now, delays = T0, []
    for _ in range(12):
        assert dialog.next_request(now) is not None
        dialog.on_timeout(now + 32)  # Timer F: 64*T1 after sending
        delays.append(dialog.next_deadline() - (now + 32))
        now = dialog.next_deadline()
    ceilings = [2, 4, 8, 16, 32, 64, 128, 256, 512, 600, 600, 600]
    assert delays == pytest.approx([0.999 * c for c in ceilings])
    assert (dialog.failures, dialog.last_error) == (12, "timeout")

    dialog.next_request(now)
    dialog.on_response(200, to_tag="nt-1", expires=600, now=now + 1)
    assert (dialog.failures, dialog.state) == (0, "active")


@settings(max_examples=100, deadline=None)
@given(failures=st.integers(1, 40), jitter=st.floats(0, 1, exclude_max=True))
def test_the_back_off_has_full_jitter_within_its_ceiling(failures, jitter):
    dialog = subscriber(jitter=jitter)
    for _ in range(failures):
        now = max(dialog.next_deadline(), T0)
        dialog.next_request(now)
        dialog.on_response(503, now=now)
    delay = dialog.next_deadline() - now  # full jitter: uniform below the ceiling
    assert 0 <= delay <= min(600, 2 * 2 ** (failures - 1))
    assert delay == pytest.approx(jitter * SUBSCRIBE_BACKOFF.ceiling(failures), abs=1e-6)


@pytest.mark.parametrize("status", [408, 500, 503, 603, 404, 302])
def test_retry_after_is_honoured(status):
    dialog = subscriber()
    dialog.next_request(T0)
    dialog.on_response(status, retry_after=120, now=T0 + 1)
    assert (dialog.state, dialog.next_deadline(), dialog.last_error) == (
        "waiting", T0 + 121, f"{status} response")


def test_a_failed_refresh_keeps_the_dialog_until_it_expires_and_retries_in_it():
    dialog, plan = established()
    dialog.next_request(T0 + 540.2)
    dialog.on_response(503, retry_after=10, now=T0 + 540.3)

    assert (dialog.state, dialog.next_deadline(), dialog.failures) == ("active", T0 + 550.3, 1)
    assert notify(dialog, plan, "active", now=T0 + 545)  # still valid (RFC 6665 4.1.2.2)
    again = dialog.next_request(T0 + 550.3)
    assert (again.kind, again.cseq, again.call_id) == ("refresh", 3, plan.call_id)

    dialog.on_timeout(now=T0 + 582.3)
    dialog.next_request(dialog.next_deadline())
    dialog.on_timeout(now=T0 + 599)
    assert dialog.next_deadline() == T0 + 600.2  # the expiry comes before the back-off ends
    assert dialog.next_request(T0 + 600.2) is None
    assert (dialog.state, dialog.dialog_id) == ("waiting", None)
    fresh = dialog.next_request(dialog.next_deadline())
    assert (fresh.kind, fresh.cseq) == ("initial", 1) and fresh.call_id != plan.call_id


def test_responses_without_a_request_in_flight_and_provisional_ones_change_nothing():
    dialog, _ = established()
    dialog.on_response(500, now=T0 + 1)
    dialog.on_timeout(T0 + 1)
    dialog.next_request(T0 + 540.2)
    dialog.on_response(180, now=T0 + 540.3)
    assert (dialog.state, dialog.failures) == ("refreshing", 0)


# -- Subscription-State (RFC 6665 4.1.3) ---------------------------------------------------

@pytest.mark.parametrize("state, delay", [
    ("terminated;reason=deactivated", 0),
    ("terminated;reason=timeout", 0),
    ("terminated;reason=probation;retry-after=30", 30),
    ("terminated;reason=giveup;retry-after=60", 60),
    ("terminated;reason=probation", 1.0),  # back-off: half of the 2 s ceiling
    ("terminated;reason=giveup", 1.0),
    ("terminated", 1.0),
    ("terminated;reason=something-new", 1.0),
    ("active;expires=0", 1.0),
])
def test_a_terminated_notify_resubscribes_in_a_new_dialog(state, delay):
    dialog, plan = established()
    assert notify(dialog, plan, state, now=T0 + 100)

    assert (dialog.state, dialog.dialog_id, dialog.next_deadline()) == (
        "waiting", None, T0 + 100 + delay)
    fresh = dialog.next_request(T0 + 100 + delay)
    assert fresh.kind == "initial" and fresh.call_id != plan.call_id


@pytest.mark.parametrize("reason", ["rejected", "noresource", "invariant"])
def test_a_terminated_notify_that_forbids_retrying_terminates(reason):
    dialog, plan = established()
    assert notify(dialog, plan, f"terminated;reason={reason}", now=T0 + 100)

    assert (dialog.state, dialog.next_deadline()) == ("terminated", None)
    assert dialog.last_error == f"terminated;reason={reason}"
    assert notify(dialog, plan, f"terminated;reason={reason}", now=T0 + 101)  # a retransmission


def test_active_and_pending_update_the_expiry_and_the_refresh():
    dialog, plan = established()
    assert notify(dialog, plan, "pending;expires=100", now=T0 + 10)
    assert (dialog.state, dialog.notifier_state) == ("active", "pending")
    assert dialog.expires_at == T0 + 110
    assert dialog.next_deadline() == T0 + 100
    assert notify(dialog, plan, "active;expires=3600", now=T0 + 20)
    assert (dialog.notifier_state, dialog.next_deadline()) == ("active", T0 + 20 + 3240)


def test_a_notify_ending_the_dialog_during_a_refresh_waits_for_its_answer():
    dialog, plan = established()
    refresh = dialog.next_request(T0 + 540.2)
    assert notify(dialog, plan, "terminated;reason=probation;retry-after=20", now=T0 + 540.25)

    assert (dialog.state, dialog.in_flight, dialog.next_deadline()) == ("draining", refresh, None)
    assert dialog.next_request(T0 + 600) is None
    dialog.on_response(481, now=T0 + 540.3)
    assert (dialog.state, dialog.next_deadline()) == ("waiting", T0 + 560.25)
    dialog.next_request(T0 + 560.25)
    dialog.on_response(200, to_tag="nt-2", expires=600, now=T0 + 560.3)
    assert dialog.state == "active"


ANSWERS = [(200, {"to_tag": "nt-1", "expires": 600}), (423, {"min_expires": 9000}),
           (481, {}), (503, {"retry_after": 5}), (None, {})]  # None: a timeout


@pytest.mark.parametrize("status, details", ANSWERS)
def test_whatever_answers_a_subscribe_of_an_ended_dialog_the_retry_time_stands(status, details):
    dialog = subscriber()
    dialog.next_request(T0)
    plan = dialog.in_flight
    assert notify(dialog, plan, "terminated;reason=giveup;retry-after=30", now=T0 + 0.05)
    assert dialog.state == "draining"

    if status is None:
        dialog.on_timeout(T0 + 32)
    else:
        dialog.on_response(status, now=T0 + 0.1, **details)
    retry_at = T0 + 32 if status is None else T0 + 30.05  # the timeout came after it
    assert (dialog.state, dialog.dialog_id, dialog.next_deadline()) == ("waiting", None, retry_at)


def test_489_to_a_subscribe_of_an_ended_dialog_terminates():
    dialog, plan = established()
    dialog.next_request(T0 + 540.2)
    notify(dialog, plan, "terminated;reason=deactivated", now=T0 + 540.25)
    dialog.on_response(489, now=T0 + 540.3)
    assert dialog.state == "terminated"


@pytest.mark.parametrize("status, details", [*ANSWERS, (489, {})])
def test_any_answer_to_the_unsubscribe_terminates(status, details):
    dialog, plan = established()
    dialog.unsubscribe(T0 + 1)
    dialog.next_request(T0 + 1)
    assert notify(dialog, plan, "active;expires=600", now=T0 + 1.05)  # crossed it
    assert (dialog.state, dialog.expires_at) == ("unsubscribing", T0 + 600.2)

    if status is None:
        dialog.on_timeout(T0 + 33)
    else:
        dialog.on_response(status, now=T0 + 1.1, **details)
    assert (dialog.state, dialog.next_deadline(), dialog.in_flight) == ("terminated", None, None)


@pytest.mark.parametrize("state", ["terminated;reason=timeout", "terminated;reason=rejected"])
def test_the_final_notify_before_the_unsubscribe_is_answered_terminates(state):
    dialog, plan = established()
    dialog.unsubscribe(T0 + 1)
    dialog.next_request(T0 + 1)
    assert notify(dialog, plan, state, now=T0 + 1.05)
    dialog.on_response(200, to_tag="nt-1", expires=0, now=T0 + 1.1)
    assert (dialog.state, dialog.last_error) == ("terminated", None)


def test_notifies_during_a_refresh_update_it_or_end_it():
    dialog, plan = established()
    dialog.next_request(T0 + 540.2)
    assert notify(dialog, plan, "active;expires=100", now=T0 + 540.25)
    assert (dialog.state, dialog.expires_at) == ("refreshing", T0 + 640.25)
    assert notify(dialog, plan, "terminated;reason=noresource", now=T0 + 540.26)
    assert (dialog.state, dialog.in_flight) == ("terminated", None)


def test_a_rejecting_notify_before_the_2xx_terminates_and_the_2xx_is_ignored():
    dialog = subscriber()
    plan = dialog.next_request(T0)
    assert notify(dialog, plan, "terminated;reason=rejected", now=T0 + 0.05)
    dialog.on_response(200, to_tag="nt-1", expires=600, now=T0 + 0.1)
    assert (dialog.state, dialog.in_flight, dialog.next_deadline()) == ("terminated", None, None)


# -- local wishes --------------------------------------------------------------------------

def test_want_full_state_refreshes_in_the_dialog_at_once():
    dialog, plan = established()
    dialog.want_full_state(T0 + 50)

    assert dialog.next_deadline() == T0 + 50
    refresh = dialog.next_request(T0 + 50)
    assert (refresh.kind, refresh.cseq, refresh.call_id, refresh.remote_tag) == (
        "refresh", 2, plan.call_id, "nt-1")
    dialog.on_response(200, to_tag="nt-1", expires=600, now=T0 + 50.1)
    assert dialog.next_deadline() == pytest.approx(T0 + 590.1)  # asked once, sent once


def test_want_full_state_during_the_initial_subscribe_refreshes_after_its_2xx():
    dialog = subscriber()
    plan = dialog.next_request(T0)
    dialog.want_full_state(T0 + 0.01)
    dialog.on_response(200, to_tag="nt-1", expires=600, now=T0 + 0.1)
    assert dialog.next_request(T0 + 0.1).kind == "refresh"


def test_unsubscribe_sends_expires_0_in_the_dialog_and_the_final_notify_is_still_ours():
    dialog, plan = established()
    dialog.unsubscribe(T0 + 100)

    bye = dialog.next_request(T0 + 100)
    assert (bye.kind, bye.expires, bye.cseq, bye.remote_tag) == ("unsubscribe", 0, 2, "nt-1")
    assert wire(bye).headers.get("Expires") == "0"
    dialog.on_response(200, to_tag="nt-1", expires=0, now=T0 + 100.1)
    assert (dialog.state, dialog.next_deadline()) == ("terminated", None)
    assert notify(dialog, plan, "terminated;reason=timeout", now=T0 + 100.2)
    assert dialog.state == "terminated"


def test_unsubscribe_without_a_dialog_ends_at_once_and_during_a_subscribe_after_it():
    idle = subscriber()
    idle.unsubscribe(T0)
    assert (idle.state, idle.next_request(T0)) == ("terminated", None)

    dialog = subscriber()
    dialog.next_request(T0)
    dialog.unsubscribe(T0 + 0.01)
    dialog.on_response(200, to_tag="nt-1", expires=600, now=T0 + 0.1)
    assert dialog.next_request(T0 + 0.1).kind == "unsubscribe"

    failed = subscriber()
    failed.next_request(T0)
    failed.unsubscribe(T0 + 0.01)
    failed.on_timeout(T0 + 32)
    assert failed.state == "terminated"


def test_a_start_time_staggers_the_initial_subscribe():
    dialog = subscriber(start_at=T0 + 7)
    assert (dialog.next_deadline(), dialog.next_request(T0)) == (T0 + 7, None)
    assert dialog.next_request(T0 + 7).kind == "initial"


# -- the request on the wire ---------------------------------------------------------------

def test_the_initial_subscribe_has_the_headers_kamailio_sends_plus_accept_and_rport():
    dialog = subscriber(expires=310)
    request = wire(dialog.next_request(T0), route="sip:127.0.0.1:5080")
    kamailio = parse_message(KAMAILIO_SUBSCRIBE)

    assert (request.method, request.uri) == (kamailio.method, kamailio.uri)
    for name in ("To", "Max-Forwards", "Event", "Contact", "Expires"):
        assert request.headers.get(name) == kamailio.headers.get(name), name
    sent_from, their_from = (NameAddr.parse(m.headers.get("From")) for m in (request, kamailio))
    assert sent_from.uri == their_from.uri and re.fullmatch(r"[0-9a-f]{16}", sent_from.tag)
    assert re.fullmatch(r"[0-9a-f]{32}", request.headers.get("Call-ID"))
    assert CSeq.parse(request.headers.get("CSeq")) == CSeq(1, "SUBSCRIBE")
    via = Via.parse(request.headers.get("Via"))
    assert (via.transport, via.host, via.port, via.branch, via.has_rport) == (
        "UDP", "127.0.0.1", 5070, "z9hG4bK-sub-1", True)
    assert Event.parse(request.headers.get("Event")).is_package("reg")
    assert request.headers.get("Accept") == "application/reginfo+xml"
    assert request.headers.get_all("Route") == ["<sip:127.0.0.1:5080;lr>"]
    assert request.body == b""


def test_in_dialog_requests_use_the_route_set_not_the_outbound_proxy():
    dialog = subscriber()
    dialog.next_request(T0)
    dialog.on_response(200, to_tag="nt-1", contact="<sip:presence@10.0.0.9:5080;transport=tcp>",
                       expires=600, now=T0 + 0.1,
                       record_route=["<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>"])
    dialog.want_full_state(T0 + 1)
    request = wire(dialog.next_request(T0 + 1), route="sip:outbound.example.com",
                   transport="tcp")

    assert request.uri == "sip:presence@10.0.0.9:5080;transport=tcp"
    assert request.headers.get_all("Route") == ["<sip:p1.example.com;lr>",
                                                "<sip:p2.example.com;lr>"]
    assert Via.parse(request.headers.get("Via")).transport == "TCP"


@pytest.mark.parametrize("route, sent", [
    ("sip:proxy.example.com;lr", "<sip:proxy.example.com;lr>"),
    ("<sip:proxy.example.com;lr>", "<sip:proxy.example.com;lr>"),
    ("sip:[2001:db8::1]:5060", "<sip:[2001:db8::1]:5060;lr>"),
])
def test_the_outbound_proxy_becomes_a_loose_route(route, sent):
    request = wire(subscriber().next_request(T0), route=route)
    assert request.headers.get_all("Route") == [sent]


def test_an_ipv6_via_host_is_bracketed():
    request = build_subscribe(subscriber().next_request(T0), via_host="2001:db8::5",
                              via_port=5060, branch="z9hG4bK-6", contact="<sip:r@[2001:db8::5]>")
    assert Via.parse(parse_message(request.serialize()).headers.get("Via")).host == "[2001:db8::5]"


# -- the machine itself --------------------------------------------------------------------

def test_terminated_is_final_and_every_target_is_a_state():
    assert not any(source == TERMINATED for source, _ in SUBSCRIBER_MACHINE)
    assert set(SUBSCRIBER_MACHINE.values()) <= STATES
    assert IN_FLIGHT <= STATES


STATUSES = [100, 180, 200, 202, 302, 400, 403, 404, 408, 423, 481, 489, 500, 503, 603]
SUBSCRIPTION_STATES = [
    "active", "active;expires=0", "active;expires=5", "active;expires=600", "pending",
    "pending;expires=30", "terminated", "terminated;reason=deactivated",
    "terminated;reason=timeout", "terminated;reason=probation",
    "terminated;reason=probation;retry-after=20", "terminated;reason=giveup",
    "terminated;reason=giveup;retry-after=0", "terminated;reason=rejected",
    "terminated;reason=noresource", "terminated;reason=invariant", "terminated;reason=new",
    "someday;expires=9",
]
CONTACTS = st.one_of(st.none(), st.sampled_from(
    [NOTIFIER, "sip:10.0.0.1", "<sip:[::1]:5080;transport=tcp>", "*", "not a uri", ""]),
    st.text(max_size=20))
SECONDS = st.one_of(st.none(), st.integers(0, 5000), st.just(2**32 - 1))


class RandomPeer:
    """Plays notifier, user and clock against one dialog, checking it after every step."""

    def __init__(self):
        self.random = FakeRandom(0.5)
        self.dialog = SubscriberDialog(RESOURCE, SERVER, random_bytes=self.random.bytes,
                                       uniform=self.random.uniform)
        self.now = T0
        self.sent = []
        self.poll()

    def wait(self, seconds):
        self.now += seconds

    def reach_the_deadline(self):
        deadline = self.dialog.next_deadline()
        if deadline is not None:
            self.now = max(self.now, deadline)

    def jitter(self, fraction):
        self.random.jitter = fraction

    def poll(self):
        busy = self.dialog.in_flight is not None
        plan = self.dialog.next_request(self.now)
        assert plan is None or not busy  # never two requests in flight
        if plan is not None:
            assert plan is self.dialog.in_flight
            self.sent.append(plan)
            request = wire(plan, route="sip:127.0.0.1:5080")
            assert request.headers.get("Expires") == str(plan.expires)
        if self.dialog.state != TERMINATED and self.dialog.in_flight is None:
            assert self.dialog.next_deadline() > self.now  # whatever was due has been done

    def respond(self, status, to_tag, contact, expires, min_expires, retry_after, record_route):
        self.dialog.on_response(status, to_tag=to_tag, contact=contact, expires=expires,
                                min_expires=min_expires, retry_after=retry_after,
                                record_route=record_route, now=self.now)

    def accept_and_notify(self, granted):
        self.respond(200, "nt-1", NOTIFIER, granted, None, None, [])
        self.notify(f"active;expires={granted}", "nt-1", None, False, 0)

    def time_out(self):
        self.dialog.on_timeout(self.now)

    def notify(self, state, from_tag, contact, foreign, age):
        plan = self.sent[-1 - min(age, len(self.sent) - 1)]
        call_id = "foreign-" + plan.call_id if foreign else plan.call_id
        ours = self.dialog.on_notify(call_id=call_id, from_tag=from_tag, to_tag=plan.local_tag,
                                     subscription_state=SubscriptionState.parse(state),
                                     contact=contact, now=self.now)
        assert not (foreign and ours)

    def want_full_state(self):
        self.dialog.want_full_state(self.now)

    def unsubscribe(self, really):
        if really:
            self.dialog.unsubscribe(self.now)

    def check(self):
        dialog = self.dialog
        assert dialog.state in STATES
        assert (dialog.in_flight is not None) == (dialog.state in IN_FLIGHT)
        deadline = dialog.next_deadline()
        assert dialog.state == TERMINATED or dialog.in_flight is not None or deadline is not None
        assert deadline is None or not math.isnan(deadline)
        if dialog.dialog_id is not None:
            assert dialog.dialog_id.count(";local=") == 1 and ";remote=" in dialog.dialog_id


def step(name, *arguments):
    return st.tuples(st.just(name), *arguments)


STEPS = st.one_of(
    step("wait", st.one_of(st.sampled_from([0, 0.1, 5, 32, 600]), st.floats(0, 5000))),
    step("reach_the_deadline"),
    step("poll"),
    step("poll"),
    step("jitter", st.floats(0, 1, exclude_max=True)),
    step("respond", st.sampled_from([200, 200, 423, 481, 489, *STATUSES]),
         st.sampled_from(["nt-1", "nt-1", None, "nt-2", "a b"]), CONTACTS, SECONDS, SECONDS,
         SECONDS, st.lists(st.sampled_from(["<sip:p1.example.com;lr>", "junk"]), max_size=2)),
    step("accept_and_notify", st.sampled_from([0, 3, 60, 600, 3761])),
    step("time_out"),
    step("notify", st.sampled_from(SUBSCRIPTION_STATES), st.sampled_from(["nt-1", "nt-2"]),
         CONTACTS, st.booleans(), st.sampled_from([0, 0, 1, 3])),
    step("want_full_state"),
    step("unsubscribe", st.integers(0, 19).map(lambda n: n == 13)),  # rare: it is final
)


@settings(max_examples=300, deadline=None)
@given(steps=st.lists(STEPS, min_size=40, max_size=150))
def test_random_traffic_never_raises_never_overlaps_and_never_goes_quiet(steps):
    peer = RandomPeer()
    peer.check()
    for name, *arguments in steps:
        getattr(peer, name)(*arguments)
        peer.check()
