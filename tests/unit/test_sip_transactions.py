"""Non-INVITE transactions (RFC 3261 17.1.2, 17.2.2) as short stories on a fake clock."""

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from sip_gateway.errors import MalformedMessage
from sip_gateway.sip import (
    ClientKey,
    ClientTransactionLayer,
    Disposition,
    Headers,
    ResponseDisposition,
    Retransmit,
    ServerTransactionLayer,
    SipRequest,
    SipResponse,
    Terminated,
    TimedOut,
    TimerValues,
    TransactionMisuse,
    TransportFailed,
)
from sip_gateway.sip.client_transaction import ClientTransaction
from sip_gateway.sip.server_transaction import (
    SERVER_MACHINE,
    BranchKey,
    LegacyKey,
    server_key,
)

T0 = 1_800_000_000.0  # the fake clock's start; every `now` is T0 + seconds


def request(method="SUBSCRIBE", *, branch="z9hG4bK-sub-1", cseq=1, via_host="192.0.2.10",
            via_port=5060, uri="sip:alice@example.com", to_tag=None, call_id="call-1"):
    branch_param = "" if branch is None else f";branch={branch}"
    to = "<sip:alice@example.com>" + ("" if to_tag is None else f";tag={to_tag}")
    return SipRequest(method, uri, headers=Headers([
        ("Via", f"SIP/2.0/UDP {via_host}:{via_port}{branch_param}"),
        ("From", "<sip:watcher@example.com>;tag=from-1"),
        ("To", to),
        ("Call-ID", call_id),
        ("CSeq", f"{cseq} {method}"),
        ("Max-Forwards", "70"),
    ]))


def response(to, status, reason="OK", **extra):
    """A response to `to` with its Via, From, To, Call-ID and CSeq (RFC 3261 8.2.6.2)."""
    headers = Headers((name, to.headers.get(name) or "")
                      for name in ("Via", "From", "To", "Call-ID", "CSeq"))
    for name, value in extra.items():
        headers.add(name.replace("_", "-"), value)
    return SipResponse(status, reason, headers=headers)


# -- server transactions (17.2.2) ---------------------------------------------------------

def test_a_retransmission_after_the_final_response_gets_the_same_bytes_again():
    layer = ServerTransactionLayer()
    subscribe = request()

    first = layer.receive(subscribe, T0, reliable=False)
    sent = layer.respond(first.key, response(subscribe, 200), T0 + 0.1)
    again = layer.receive(subscribe, T0 + 0.6, reliable=False)

    assert first.disposition is Disposition.NEW
    assert sent == response(subscribe, 200).serialize()
    assert (again.disposition, again.key, again.resend) == (Disposition.ANSWERED, first.key, sent)


def test_a_retransmission_before_any_response_is_absorbed():
    layer = ServerTransactionLayer()
    layer.receive(request(), T0, reliable=False)

    again = layer.receive(request(), T0 + 0.5, reliable=False)

    assert (again.disposition, again.resend) == (Disposition.ABSORBED, b"")
    assert len(layer) == 1


def test_in_proceeding_a_retransmission_gets_the_last_provisional_response():
    layer = ServerTransactionLayer()
    subscribe = request()
    layer.receive(subscribe, T0, reliable=False)
    layer.respond(subscribe, response(subscribe, 100, "Trying"), T0)
    progress = response(subscribe, 183, "Progress")
    layer.respond(subscribe, progress, T0 + 0.2)

    again = layer.receive(subscribe, T0 + 0.5, reliable=False)

    assert (again.disposition, again.resend) == (Disposition.ANSWERED, progress.serialize())
    assert layer.next_deadline() is None  # no timer before the final response


def test_timer_j_forgets_the_transaction_64_t1_after_the_final_response_on_udp():
    layer = ServerTransactionLayer()
    key = layer.receive(request(), T0, reliable=False).key
    layer.respond(key, response(request(), 200), T0 + 1)

    assert layer.next_deadline() == T0 + 33
    assert layer.expire(T0 + 32.9) == []
    assert layer.receive(request(), T0 + 32.9, reliable=False).disposition is Disposition.ANSWERED
    assert layer.expire(T0 + 33) == [key]
    assert (len(layer), layer.next_deadline()) == (0, None)
    assert layer.receive(request(), T0 + 34, reliable=False).disposition is Disposition.NEW


def test_timer_j_is_zero_on_tcp_so_the_transaction_goes_at_once():
    layer = ServerTransactionLayer()
    key = layer.receive(request(), T0, reliable=True).key
    layer.respond(key, response(request(), 200), T0 + 1)

    assert layer.next_deadline() == T0 + 1
    assert layer.expire(T0 + 1) == [key]
    assert len(layer) == 0


def test_timer_values_can_be_changed():
    layer = ServerTransactionLayer(TimerValues(t1=1.0, t2=8.0))
    key = layer.receive(request(), T0, reliable=False).key
    layer.respond(key, response(request(), 404, "Not Found"), T0)

    assert layer.next_deadline() == T0 + 64


@pytest.mark.parametrize("other", [
    request(branch="z9hG4bK-sub-2"),
    request(via_host="192.0.2.11"),
    request(via_port=5070),
    request("NOTIFY"),  # same branch, another method: e.g. a CANCEL is its own transaction
])
def test_a_request_differing_in_branch_sent_by_or_method_is_new(other):
    layer = ServerTransactionLayer()
    layer.receive(request(), T0, reliable=False)

    assert layer.receive(other, T0 + 0.5, reliable=False).disposition is Disposition.NEW
    assert len(layer) == 2


def test_branches_are_tokens_compared_without_case():
    layer = ServerTransactionLayer()
    layer.receive(request(branch="z9hG4bK-ABC"), T0, reliable=False)

    again = layer.receive(request(branch="Z9HG4BK-abc"), T0 + 0.5, reliable=False)

    assert again.disposition is Disposition.ABSORBED


@pytest.mark.parametrize("branch", [None, "1234-rfc2543"])
def test_rfc2543_requests_match_on_the_fallback_key(branch):
    layer = ServerTransactionLayer()
    old = request(branch=branch)
    key = layer.receive(old, T0, reliable=False).key
    sent = layer.respond(key, response(old, 200), T0)

    again = layer.receive(request(branch=branch), T0 + 0.5, reliable=False)
    next_cseq = layer.receive(request(branch=branch, cseq=2), T0 + 1, reliable=False)
    other_dialog = layer.receive(request(branch=branch, to_tag="x"), T0 + 1, reliable=False)

    assert isinstance(key, LegacyKey)
    assert (again.disposition, again.resend) == (Disposition.ANSWERED, sent)
    assert next_cseq.disposition is other_dialog.disposition is Disposition.NEW


def test_the_magic_cookie_decides_the_key():
    assert server_key(request()) == BranchKey("z9hg4bk-sub-1", ("192.0.2.10", 5060), "SUBSCRIBE")
    assert isinstance(server_key(request(branch="z9hG4b-no")), LegacyKey)


def test_a_full_layer_refuses_new_requests_but_answers_retransmissions():
    layer = ServerTransactionLayer(max_transactions=2)
    layer.receive(request(branch="z9hG4bK-1"), T0, reliable=False)
    layer.receive(request(branch="z9hG4bK-2"), T0, reliable=False)

    refused = layer.receive(request(branch="z9hG4bK-3"), T0, reliable=False)
    again = layer.receive(request(branch="z9hG4bK-1"), T0 + 0.5, reliable=False)

    assert refused.disposition is Disposition.REFUSED
    assert refused.key not in layer
    assert again.disposition is Disposition.ABSORBED
    assert layer.respond(refused.key, response(request(), 503, "Service Unavailable"), T0) is None


def test_responses_after_the_final_one_are_discarded():
    layer = ServerTransactionLayer()
    key = layer.receive(request(), T0, reliable=False).key
    final = layer.respond(key, response(request(), 200), T0)

    assert layer.respond(key, response(request(), 500, "Server Error"), T0 + 1) is None
    assert layer.respond(key, response(request(), 180, "Ringing"), T0 + 1) is None
    assert layer.receive(request(), T0 + 2, reliable=False).resend == final


def test_a_transport_error_forgets_the_transaction():
    layer = ServerTransactionLayer()
    key = layer.receive(request(), T0, reliable=False).key
    layer.respond(key, response(request(), 200), T0)

    assert layer.transport_error(key) is True
    assert (len(layer), layer.next_deadline(), layer.expire(T0 + 100)) == (0, None, [])
    assert layer.transport_error(key) is False


def test_invite_and_ack_are_not_for_this_layer_and_a_request_needs_a_via():
    layer = ServerTransactionLayer()
    with pytest.raises(TransactionMisuse):
        layer.receive(request("INVITE"), T0, reliable=False)
    with pytest.raises(MalformedMessage, match="Via"):
        layer.receive(SipRequest("NOTIFY", "sip:a@b"), T0, reliable=False)


def test_the_server_table_is_figure_8():
    assert {(state, event) for state, event in SERVER_MACHINE} == {
        ("trying", "request"), ("trying", "provisional"), ("trying", "final"),
        ("trying", "transport_error"), ("proceeding", "request"),
        ("proceeding", "provisional"), ("proceeding", "final"),
        ("proceeding", "transport_error"), ("completed", "request"),
        ("completed", "timer_j"), ("completed", "transport_error"),
    }


# -- client transactions (17.1.2) ---------------------------------------------------------

def drive(layer, until):
    """Call on_timer at every deadline up to `until`, like the asyncio shell: (time, event)."""
    seen = []
    while (deadline := layer.next_deadline()) is not None and deadline <= until:
        seen += [(deadline - T0, event) for event in layer.on_timer(deadline)]
    return seen


def test_timer_e_doubles_up_to_t2_and_timer_f_times_out_at_32_s():
    layer = ClientTransactionLayer()
    notify = request("NOTIFY", branch="z9hG4bK-n1")
    wire = layer.start(notify, T0, reliable=False)
    key = ClientKey("z9hg4bk-n1", "NOTIFY")

    seen = drive(layer, T0 + 100)

    assert wire == notify.serialize()
    assert seen == [(t, Retransmit(key, wire)) for t in
                    (0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5)] + [
        (32.0, TimedOut(key)), (32.0, Terminated(key))]
    assert (len(layer), layer.next_deadline()) == (0, None)


def test_a_provisional_response_moves_to_proceeding_where_e_fires_every_t2():
    layer = ClientTransactionLayer()
    notify = request("NOTIFY", branch="z9hG4bK-n1")
    layer.start(notify, T0, reliable=False)
    drive(layer, T0 + 0.7)  # the first retransmission, at 0.5

    result = layer.receive_response(response(notify, 100, "Trying"), T0 + 0.7)

    assert result.disposition is ResponseDisposition.MATCHED
    assert layer.get(result.key).state == "proceeding"
    times = [t for t, event in drive(layer, T0 + 20) if isinstance(event, Retransmit)]
    assert times == [1.5, 5.5, 9.5, 13.5, 17.5]


def test_a_final_response_stops_retransmission_and_k_cleans_up_after_t4_on_udp():
    layer = ClientTransactionLayer()
    notify = request("NOTIFY", branch="z9hG4bK-n1")
    layer.start(notify, T0, reliable=False)
    drive(layer, T0 + 2)
    ok = response(notify, 200)

    first = layer.receive_response(ok, T0 + 2)
    again = layer.receive_response(ok, T0 + 3)

    assert (first.disposition, first.response) == (ResponseDisposition.MATCHED, ok)
    assert again.disposition is ResponseDisposition.ABSORBED
    assert layer.next_deadline() == T0 + 7
    assert drive(layer, T0 + 100) == [(7.0, Terminated(first.key))]


def test_on_tcp_nothing_is_retransmitted_and_k_is_zero():
    layer = ClientTransactionLayer()
    notify = request("NOTIFY", branch="z9hG4bK-n1")
    layer.start(notify, T0, reliable=True)

    assert layer.next_deadline() == T0 + 32  # timer F only
    layer.receive_response(response(notify, 202, "Accepted"), T0 + 1)
    assert drive(layer, T0 + 1) == [(1.0, Terminated(ClientKey("z9hg4bk-n1", "NOTIFY")))]


def test_responses_match_on_branch_and_method_and_strays_match_nothing():
    layer = ClientTransactionLayer()
    notify = request("NOTIFY", branch="z9hG4bK-n1")
    layer.start(notify, T0, reliable=False)

    other_branch = layer.receive_response(response(request("NOTIFY", branch="z9hG4bK-x"), 200),
                                          T0)
    other_method = layer.receive_response(response(request("SUBSCRIBE", branch="z9hG4bK-n1"),
                                                   200), T0)
    no_via = layer.receive_response(SipResponse(200, "OK"), T0)
    ours = layer.receive_response(response(request("NOTIFY", branch="Z9HG4BK-N1"), 200), T0)

    assert other_branch.disposition is other_method.disposition is ResponseDisposition.STRAY
    assert (no_via.disposition, no_via.key) == (ResponseDisposition.STRAY, None)
    assert ours.disposition is ResponseDisposition.MATCHED


def test_branches_have_the_magic_cookie_and_injected_randomness():
    layer = ClientTransactionLayer(random_bytes=lambda n: bytes(range(n)))

    assert layer.new_branch() == "z9hG4bK000102030405060708090a0b0c0d0e0f"
    assert ClientTransactionLayer().new_branch() != ClientTransactionLayer().new_branch()


def test_client_misuse_is_a_typed_error():
    layer = ClientTransactionLayer()
    layer.start(request("NOTIFY"), T0, reliable=False)
    with pytest.raises(TransactionMisuse, match="still running"):
        layer.start(request("NOTIFY"), T0, reliable=False)
    with pytest.raises(TransactionMisuse, match="magic cookie"):
        layer.start(request("NOTIFY", branch="old-style"), T0, reliable=False)
    with pytest.raises(TransactionMisuse):
        layer.start(request("INVITE", branch="z9hG4bK-i"), T0, reliable=False)
    transaction = ClientTransaction(request("NOTIFY"), reliable=False)
    transaction.start(T0)
    with pytest.raises(TransactionMisuse, match="start not allowed"):
        transaction.start(T0)


def test_a_transport_error_ends_the_client_transaction():
    layer = ClientTransactionLayer()
    layer.start(request("NOTIFY"), T0, reliable=True)
    key = ClientKey("z9hg4bk-sub-1", "NOTIFY")

    assert layer.transport_error(key) == [TransportFailed(key), Terminated(key)]
    assert (len(layer), layer.next_deadline(), layer.transport_error(key)) == (0, None, [])


def test_timer_values_are_checked():
    with pytest.raises(ValueError):
        TimerValues(t1=5.0, t2=4.0)
    assert (TimerValues().f, TimerValues().k(False), TimerValues().j(True)) == (32.0, 5.0, 0.0)


# -- properties ---------------------------------------------------------------------------

POOL = [request(branch=f"z9hG4bK-p{i}") for i in range(4)] + [request(branch=None, cseq=9)]
STATUSES = [100, 180, 200, 202, 404, 500]


class ServerLayerMachine(RuleBasedStateMachine):
    """Random requests, retransmissions, responses and time against a plain model."""

    LIMIT = 3

    def __init__(self):
        super().__init__()
        self.layer = ServerTransactionLayer(max_transactions=self.LIMIT)
        self.now = T0
        self.model = {}  # pool index -> {"last": bytes | None, "gone_at": float | None}
        self.serial = itertools.count()

    @rule(index=st.integers(0, len(POOL) - 1), reliable=st.booleans())
    def receive(self, index, reliable):
        result = self.layer.receive(POOL[index], self.now, reliable=reliable)
        known = self.model.get(index)
        if known is None and len(self.model) >= self.LIMIT:
            assert result.disposition is Disposition.REFUSED
        elif known is None:
            assert result.disposition is Disposition.NEW
            self.model[index] = {"last": None, "gone_at": None, "reliable": reliable}
        elif known["last"] is None:
            assert (result.disposition, result.resend) == (Disposition.ABSORBED, b"")
        else:
            assert (result.disposition, result.resend) == (Disposition.ANSWERED, known["last"])

    @rule(index=st.integers(0, len(POOL) - 1), status=st.sampled_from(STATUSES),
          by_key=st.booleans())
    def respond(self, index, status, by_key):
        answer = response(POOL[index], status, "Reason", X_Serial=str(next(self.serial)))
        target = server_key(POOL[index]) if by_key else POOL[index]
        sent = self.layer.respond(target, answer, self.now)
        known = self.model.get(index)
        if known is None or known["gone_at"] is not None:
            assert sent is None
            return
        assert sent == answer.serialize()
        known["last"] = sent
        if status >= 200:
            known["gone_at"] = self.now + self.layer.timers.j(known["reliable"])

    @rule(seconds=st.sampled_from([0.0, 0.5, 4.0, 16.0, 31.9, 32.0, 40.0]))
    def advance(self, seconds):
        self.now += seconds
        self.check_expire()

    def check_expire(self):
        removed = self.layer.expire(self.now)
        due = {index for index, known in self.model.items()
               if known["gone_at"] is not None and known["gone_at"] <= self.now}
        assert sorted(removed, key=repr) == sorted((server_key(POOL[i]) for i in due), key=repr)
        for index in due:
            del self.model[index]

    @invariant()
    def the_layer_holds_what_the_model_holds(self):
        assert len(self.layer) == len(self.model)
        pending = [known["gone_at"] for known in self.model.values()
                   if known["gone_at"] is not None]
        assert self.layer.next_deadline() == (min(pending) if pending else None)

    def teardown(self):
        self.now += 64 * self.layer.timers.t1
        self.check_expire()
        assert all(known["gone_at"] is None for known in self.model.values())


ServerLayerMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40,
                                                deadline=None)
TestServerLayer = ServerLayerMachine.TestCase


@settings(max_examples=200, deadline=None)
@given(reliable=st.booleans(), steps=st.lists(st.tuples(
    st.sampled_from([0.1, 0.5, 2.0, 4.0, 9.0]), st.sampled_from([None, 100, 180, 200, 486])),
    max_size=25))
def test_a_client_transaction_retransmits_only_before_its_final_response_and_always_ends(
        reliable, steps):
    layer = ClientTransactionLayer()
    notify = request("NOTIFY", branch="z9hG4bK-prop")
    layer.start(notify, T0, reliable=reliable)
    now, final_at, passed_up, sends, events = T0, None, [], [T0], []
    for seconds, status in steps:
        now += seconds
        events += drive(layer, now)
        if status is not None:
            result = layer.receive_response(response(notify, status), now)
            if result.disposition is ResponseDisposition.MATCHED:
                passed_up.append(status)
                if status >= 200:
                    final_at = now
    events += drive(layer, now + 64 * layer.timers.t1)
    sends += [T0 + t for t, event in events if isinstance(event, Retransmit)]

    assert [type(event) for _, event in events][-1] is Terminated
    assert len(layer) == 0
    assert [s for s in passed_up if s >= 200][:1] == [s for s in passed_up if s >= 200]
    if reliable:
        assert sends == [T0]
    gaps = [later - earlier for earlier, later in itertools.pairwise(sends)]
    assert all(layer.timers.t1 - 1e-9 <= gap <= layer.timers.t2 + 1e-9 for gap in gaps)
    if final_at is not None:
        assert all(sent <= final_at for sent in sends)
        assert not any(isinstance(event, TimedOut) for _, event in events)
    else:
        assert events[-2:] == [(32.0, TimedOut(events[-1][1].key)), events[-1]]
