"""The subscription keeper (RFC 6665 4.1, RFC 3680 3) over a fake store and outbound, fake clock."""

from __future__ import annotations

import asyncio

from domain.resource_subscription import DialogState
from sip_gateway.client.outbound import Hop
from sip_gateway.sip import CSeq, NameAddr, SipRequest, parse_message
from sip_gateway.client.subscription_keeper import SubscriptionKeeper, WantedSubscription
from tests.unit.sip_fakes import T0, FakeClock, FakeOutbound
from tests.unit.sip_fakes import answer as fake_answer
BOB = "sip:bob@example.com"
SUBSCRIBER = "sip:reginfo@127.0.0.1:5070"
PROXY = "sip:127.0.0.1:5080"
PROXY_HOP = Hop(("127.0.0.1", 5080))
NOTIFIER = "sip:presence@192.0.2.9:5090"
NOTIFIER_TAG = "nt-1"


class FakeStore:
    """The SubscriberStore port: `changed` hands out what the test queued, once."""

    def __init__(self) -> None:
        self.queued: list[WantedSubscription] = []
        self.calls: list[tuple] = []

    def want(self, *wanted: WantedSubscription) -> None:
        self.queued += wanted

    async def changed(self):
        queued, self.queued = self.queued, []
        return queued

    async def established(self, resource, dialog):
        self.calls.append(("established", resource, dialog))

    async def failed(self, resource, reason, dialog_lost):
        self.calls.append(("failed", resource, reason, dialog_lost))

    async def closed(self, resource, reason):
        self.calls.append(("closed", resource, reason))

    def named(self, name: str) -> list[tuple]:
        return [call for call in self.calls if call[0] == name]


def answer(status: int, reason: str = "OK", *, to_tag: str | None = NOTIFIER_TAG,
           contact: str | None = f"<{NOTIFIER}>", **headers: str):
    """A scripted answer from the notifier: its tag and Contact unless told otherwise."""
    return fake_answer(status, reason, to_tag=to_tag, contact=contact, **headers)


def ok(expires: int = 600, **options):
    return answer(200, Expires=str(expires), **options)


def notify_for(subscribe: SipRequest, state: str = "active;expires=600", *,
               call_id: str | None = None, from_tag: str = NOTIFIER_TAG,
               to_tag: str | None = None) -> SipRequest:
    """The notifier's NOTIFY in the dialog the SUBSCRIBE created."""
    local_tag = NameAddr.parse(subscribe.headers.get("From")).tag
    raw = (
        f"NOTIFY {SUBSCRIBER} SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 192.0.2.9:5090;branch=z9hG4bK-notify\r\n"
        f"From: <{BOB}>;tag={from_tag}\r\n"
        f"To: <{SUBSCRIBER}>;tag={local_tag if to_tag is None else to_tag}\r\n"
        f"Call-ID: {subscribe.headers.get('Call-ID') if call_id is None else call_id}\r\n"
        "CSeq: 1 NOTIFY\r\n"
        f"Contact: <{NOTIFIER}>\r\n"
        "Event: reg\r\n"
        f"Subscription-State: {state}\r\n"
        "Content-Length: 0\r\n\r\n"
    )
    request = parse_message(raw.encode())
    assert isinstance(request, SipRequest)
    return request


class Rig:
    """A keeper wired to the fakes; `step` runs one round and waits for what it started."""

    def __init__(self, *script) -> None:
        self.clock = FakeClock()
        self.store = FakeStore()
        self.outbound = FakeOutbound(*script)
        self.keeper = SubscriptionKeeper(self.store, self.outbound, subscriber=SUBSCRIBER,
                                         proxy=PROXY, proxy_hop=PROXY_HOP,
                                         clock=self.clock)

    async def settle(self) -> None:
        while running := [task for task in self.keeper._tasks if not task.done()]:
            await asyncio.gather(*running)

    async def step(self, n: int = 1) -> None:
        for _ in range(n):
            await self.keeper._round()
            await self.settle()

    async def claim(self, request: SipRequest) -> bool:
        claimed = self.keeper.claim(request)
        await self.settle()
        return claimed

    async def established(self, expires: int = 600) -> SipRequest:
        """Wanted -> initial SUBSCRIBE -> 200 -> first NOTIFY: the dialog stands."""
        self.store.want(WantedSubscription(BOB, expires, True, None))
        self.outbound.then(ok(expires))
        await self.step()
        subscribe = self.outbound.requests[-1]
        assert await self.claim(notify_for(subscribe, f"active;expires={expires}"))
        return subscribe

    @property
    def last(self) -> SipRequest:
        return self.outbound.requests[-1]


def tag(request: SipRequest, header: str) -> str | None:
    return NameAddr.parse(request.headers.get(header)).tag


def cseq(request: SipRequest) -> int:
    return CSeq.parse(request.headers.get("CSeq")).number


# -- the initial SUBSCRIBE -------------------------------------------------------------------

def test_a_wanted_subscription_gets_an_initial_subscribe_through_the_proxy():
    rig = Rig(ok(600))

    async def story():
        rig.store.want(WantedSubscription(BOB, 600, True, None))
        await rig.step(3)

    asyncio.run(story())
    [(subscribe, destination)] = rig.outbound.sent
    assert (subscribe.method, subscribe.uri, destination) == ("SUBSCRIBE", BOB, PROXY_HOP)
    headers = subscribe.headers
    assert (headers.get("Event"), headers.get("Accept"), headers.get("Expires")) == (
        "reg", "application/reginfo+xml", "600")
    assert headers.get("Route") == f"<{PROXY};lr>"
    assert str(NameAddr.parse(headers.get("From")).uri) == SUBSCRIBER and tag(subscribe, "From")
    assert str(NameAddr.parse(headers.get("Contact")).uri) == SUBSCRIBER
    assert str(NameAddr.parse(headers.get("To")).uri) == BOB and tag(subscribe, "To") is None
    assert cseq(subscribe) == 1 and headers.get("Call-ID")


def test_the_2xx_records_the_established_dialog():
    rig = Rig(ok(600, contact=f"<{NOTIFIER};transport=udp>"))

    async def story():
        rig.store.want(WantedSubscription(BOB, 600, True, None))
        rig.clock.now = T0 + 1
        await rig.step()

    asyncio.run(story())
    subscribe = rig.last
    [(_, resource, dialog)] = rig.store.named("established")
    assert resource == BOB
    assert dialog == DialogState(
        call_id=subscribe.headers.get("Call-ID"), local_tag=tag(subscribe, "From"),
        remote_tag=NOTIFIER_TAG, remote_target=f"{NOTIFIER};transport=udp", route_set=(),
        cseq=1, expires_at=T0 + 1 + 600)
    assert rig.store.named("failed") == [] and rig.store.named("closed") == []


def test_nothing_is_sent_for_a_subscription_that_is_not_wanted():
    rig = Rig()

    async def story():
        rig.store.want(WantedSubscription(BOB, 600, False, None))
        await rig.step(2)

    asyncio.run(story())
    assert rig.outbound.sent == [] and rig.store.calls == [] and rig.keeper.kept == {}


# -- NOTIFY claims ---------------------------------------------------------------------------

def test_claim_takes_the_notifies_of_its_dialog_only():
    rig = Rig()

    async def story():
        subscribe = await rig.established()
        assert await rig.claim(notify_for(subscribe, "active;expires=500"))
        assert not await rig.claim(notify_for(subscribe, call_id="foreign@192.0.2.9"))
        assert not await rig.claim(notify_for(subscribe, from_tag="another-notifier"))
        assert not await rig.claim(notify_for(subscribe, to_tag="not-our-tag"))
        return subscribe

    asyncio.run(story())
    assert len(rig.store.named("established")) == 1  # a NOTIFY does not change the dialog's id
    assert len(rig.outbound.sent) == 1


def test_a_notify_that_overtakes_the_2xx_is_claimed_and_makes_the_dialog():
    rig = Rig()
    claims = []

    async def notify_first(request):
        claims.append(rig.keeper.claim(notify_for(request, from_tag="early-tag")))
        return ok(600, to_tag="early-tag")(request)

    rig.outbound.then(notify_first)

    async def story():
        rig.store.want(WantedSubscription(BOB, 600, True, None))
        await rig.step(2)

    asyncio.run(story())
    assert claims == [True]
    [(_, _, dialog)] = rig.store.named("established")
    assert (dialog.remote_tag, dialog.call_id) == ("early-tag", rig.last.headers.get("Call-ID"))
    assert len(rig.outbound.sent) == 1


# -- in-dialog SUBSCRIBEs ----------------------------------------------------------------------

def test_a_version_gap_asks_for_full_state_with_an_in_dialog_subscribe():
    rig = Rig()

    async def story():
        subscribe = await rig.established()
        rig.clock.now = T0 + 10
        rig.keeper.version_gap(notify_for(subscribe))
        rig.outbound.then(ok(600))
        await rig.step()
        return subscribe

    initial = asyncio.run(story())
    refresh = rig.last
    assert len(rig.outbound.sent) == 2
    assert refresh.uri == NOTIFIER  # the remote target, learnt from Contact
    assert refresh.headers.get("Route") is None
    assert (refresh.headers.get("Call-ID"), tag(refresh, "From"), tag(refresh, "To")) == (
        initial.headers.get("Call-ID"), tag(initial, "From"), NOTIFIER_TAG)
    assert cseq(refresh) == cseq(initial) + 1 == 2
    assert (refresh.headers.get("Event"), refresh.headers.get("Expires")) == ("reg", "600")
    dialogs = [call[2] for call in rig.store.named("established")]
    assert [d.cseq for d in dialogs] == [1, 2] and dialogs[-1].expires_at == T0 + 10 + 600


def test_a_version_gap_of_a_foreign_dialog_changes_nothing():
    rig = Rig()

    async def story():
        subscribe = await rig.established()
        rig.keeper.version_gap(notify_for(subscribe, call_id="foreign@192.0.2.9"))
        await rig.step(2)

    asyncio.run(story())
    assert len(rig.outbound.sent) == 1


def test_481_to_a_refresh_loses_the_dialog_and_subscribes_afresh(caplog):
    rig = Rig()

    async def story():
        initial = await rig.established(600)
        rig.clock.now = T0 + 540  # refresh due 10 % of 600 s before expiry
        rig.outbound.then(answer(481, "Call/Transaction Does Not Exist"), ok(600))
        await rig.step()
        assert cseq(rig.last) == 2 and tag(rig.last, "To") == NOTIFIER_TAG
        await rig.step()
        return initial

    initial = asyncio.run(story())
    assert len(rig.outbound.sent) == 3
    [failed] = rig.store.named("failed")
    assert failed[1] == BOB and failed[3] is True and "481" in failed[2]
    again = rig.last
    assert again.headers.get("Call-ID") != initial.headers.get("Call-ID")
    assert tag(again, "From") != tag(initial, "From")
    assert (again.uri, tag(again, "To"), cseq(again)) == (BOB, None, 1)
    assert again.headers.get("Route") == f"<{PROXY};lr>"
    assert rig.store.calls[-1][0] == "established"
    assert rig.store.calls[-1][2].call_id == again.headers.get("Call-ID")
    assert rig.keeper.outcomes.counts == {("200",): 2, ("481",): 1}
    failures = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(failures) == 1 and "-> 481" in failures[0]


def test_terminated_deactivated_subscribes_again_at_once():
    rig = Rig()

    async def story():
        initial = await rig.established()
        assert await rig.claim(notify_for(initial, "terminated;reason=deactivated"))
        rig.outbound.then(ok(600))
        await rig.step()
        return initial

    initial = asyncio.run(story())
    assert len(rig.outbound.sent) == 2
    again = rig.last
    assert again.headers.get("Call-ID") != initial.headers.get("Call-ID")
    assert (tag(again, "To"), cseq(again), again.uri) == (None, 1, BOB)
    [failed] = rig.store.named("failed")
    assert failed == ("failed", BOB, "terminated;reason=deactivated", True)
    assert rig.store.named("closed") == []


def test_terminated_rejected_closes_the_subscription_for_good():
    rig = Rig()

    async def story():
        initial = await rig.established()
        assert await rig.claim(notify_for(initial, "terminated;reason=rejected"))
        rig.clock.now = T0 + 10_000
        await rig.step(3)
        # the final NOTIFY's retransmission still belongs to the (ended) dialog
        assert await rig.claim(notify_for(initial, "terminated;reason=rejected"))

    asyncio.run(story())
    assert len(rig.outbound.sent) == 1
    assert rig.store.named("closed") == [("closed", BOB, "terminated;reason=rejected")]
    assert rig.store.named("failed") == []


def test_a_withdrawn_subscription_sends_expires_0_in_the_dialog_then_closes():
    rig = Rig()

    async def story():
        initial = await rig.established()
        dialog = rig.store.named("established")[-1][2]
        rig.store.want(WantedSubscription(BOB, 600, False, dialog))
        rig.outbound.then(ok(0))
        rig.clock.now = T0 + 5
        await rig.step(3)
        return initial

    initial = asyncio.run(story())
    assert len(rig.outbound.sent) == 2
    unsubscribe = rig.last
    assert unsubscribe.headers.get("Expires") == "0"
    assert (unsubscribe.uri, unsubscribe.headers.get("Route")) == (NOTIFIER, None)
    assert (unsubscribe.headers.get("Call-ID"), tag(unsubscribe, "To"), cseq(unsubscribe)) == (
        initial.headers.get("Call-ID"), NOTIFIER_TAG, 2)
    assert rig.store.named("closed") == [("closed", BOB, "unsubscribed")]
    assert rig.store.named("failed") == []


def test_a_withdrawal_before_any_dialog_closes_without_a_request():
    rig = Rig(None)  # the initial SUBSCRIBE times out

    async def story():
        rig.store.want(WantedSubscription(BOB, 600, True, None))
        await rig.step()
        rig.store.want(WantedSubscription(BOB, 600, False, None))
        await rig.step(2)

    asyncio.run(story())
    assert len(rig.outbound.sent) == 1
    assert [call[0] for call in rig.store.calls] == ["failed", "closed"]
    assert rig.store.calls[0] == ("failed", BOB, "timeout", False)


# -- restart -----------------------------------------------------------------------------------

RECORDED = DialogState(call_id="c-recorded@127.0.0.1", local_tag="l-recorded",
                       remote_tag="r-recorded", remote_target=NOTIFIER, route_set=(), cseq=7,
                       expires_at=T0 + 300)


def test_a_recorded_valid_dialog_is_resumed_and_refreshed_in_it_at_once():
    rig = Rig(ok(600))

    async def story():
        rig.clock.now = T0 + 100
        rig.store.want(WantedSubscription(BOB, 600, True, RECORDED))
        await rig.step()
        # the notifier's NOTIFYs of the recorded dialog are ours again
        resumed = SipRequest("SUBSCRIBE", BOB)
        resumed.headers.add("From", f"<{SUBSCRIBER}>;tag=l-recorded")
        resumed.headers.add("Call-ID", RECORDED.call_id)
        assert await rig.claim(notify_for(resumed, from_tag="r-recorded"))
        assert not await rig.claim(notify_for(resumed, from_tag="someone-else"))

    asyncio.run(story())
    [(refresh, destination)] = rig.outbound.sent
    assert (refresh.headers.get("Call-ID"), tag(refresh, "From"), tag(refresh, "To")) == (
        RECORDED.call_id, "l-recorded", "r-recorded")
    assert (cseq(refresh), refresh.uri, refresh.headers.get("Route")) == (8, NOTIFIER, None)
    assert (refresh.headers.get("Expires"), destination) == ("600", PROXY_HOP)
    [(_, _, dialog)] = rig.store.named("established")
    assert (dialog.call_id, dialog.remote_tag, dialog.cseq, dialog.expires_at) == (
        RECORDED.call_id, "r-recorded", 8, T0 + 100 + 600)


def test_a_recorded_dialog_that_has_expired_is_replaced_by_a_new_one():
    rig = Rig(ok(600))

    async def story():
        rig.clock.now = RECORDED.expires_at + 1
        rig.store.want(WantedSubscription(BOB, 600, True, RECORDED))
        await rig.step()

    asyncio.run(story())
    [initial] = rig.outbound.requests
    assert initial.headers.get("Call-ID") != RECORDED.call_id
    assert (initial.uri, tag(initial, "To"), cseq(initial)) == (BOB, None, 1)
    assert initial.headers.get("Route") == f"<{PROXY};lr>"
    [(_, _, dialog)] = rig.store.named("established")
    assert dialog.call_id == initial.headers.get("Call-ID")


def test_489_ends_the_subscription():
    rig = Rig(answer(489, "Bad Event", to_tag=None))

    async def story():
        rig.store.want(WantedSubscription(BOB, 600, True, None))
        await rig.step(3)

    asyncio.run(story())
    assert len(rig.outbound.sent) == 1
    [closed] = rig.store.named("closed")
    assert closed[1] == BOB and "489" in closed[2]


# -- the store away --------------------------------------------------------------------------

def test_what_the_store_could_not_record_is_recorded_on_a_later_round():
    """The dialog is established while the store is away: nothing is marked recorded,
    and the next round records it (then nothing more)."""
    rig = Rig()
    real_established, outage = rig.store.established, [True]

    async def established(resource, dialog):
        if outage[0]:
            raise OSError("event store unavailable")
        await real_established(resource, dialog)

    rig.store.established = established

    async def story():
        await rig.established()
        assert rig.store.named("established") == []
        assert rig.keeper.kept[BOB].unsaved
        outage[0] = False
        await rig.step()
        await rig.step()

    asyncio.run(story())
    [(_, resource, dialog)] = rig.store.named("established")
    assert resource == BOB and dialog.call_id == rig.last.headers.get("Call-ID")
    assert not rig.keeper.kept[BOB].unsaved


def test_a_close_the_store_could_not_record_is_recorded_later():
    rig = Rig()
    real_closed, outage = rig.store.closed, [True]

    async def closed(resource, reason):
        if outage[0]:
            raise OSError("event store unavailable")
        await real_closed(resource, reason)

    rig.store.closed = closed

    async def story():
        subscribe = await rig.established()
        await rig.claim(notify_for(subscribe, "terminated;reason=rejected"))
        await rig.step()
        assert rig.store.named("closed") == []
        outage[0] = False
        rig.clock.now += 1.0  # the keeper tries again a second later
        await rig.step()
        await rig.step()

    asyncio.run(story())
    assert [call[1] for call in rig.store.named("closed")] == [BOB]


def test_an_unroutable_subscribe_records_why_it_was_not_sent():
    """Without an outbound proxy the resource itself must be routable; when it is not,
    the failure says so (status shows it) instead of a bare timeout."""
    rig = Rig()
    rig.keeper.proxy = rig.keeper.proxy_hop = None
    rig.store.want(WantedSubscription("sips:bob@example.com", 600, True, None))
    asyncio.run(rig.step())
    assert rig.outbound.sent == []
    [failed] = rig.store.named("failed")
    assert "not sent" in failed[2] and "only sip: over udp or tcp" in failed[2]
    assert "no [reginfo] outbound_proxy is set" in failed[2]
    assert rig.keeper.outcomes.counts == {("unsent",): 1}
