"""Target: a reginfo body in a NOTIFY, read by both NOTIFY modes
(sip_gateway/server/notify_modes.py) and applied by both appliers (domain/notify_rfc.py,
domain/notify_kamailio.py) to in-memory aggregates.

Property: reading raises nothing but a PeerError, applying nothing but a DomainError,
and a refused document changes nothing; the events recorded replay to the aggregates'
state; the result is one of reginfo_handle_notify's codes, and the answer the gateway
sends for it (200, or 400 with the reason) parses again. The AoRs of the captured NOTIFYs start with a local binding, so that merges,
removals and the routing data they must keep are reached.
"""

from __future__ import annotations

from domain import DomainError, normalize_aor
from domain.subscription import Subscription
from sip_gateway.errors import PeerError
from sip_gateway.server.notify_modes import Applying, KamailioMode, RfcMode
from sip_gateway.server.responses import make_response, warning
from sip_gateway.sip import parse_message

from scripts.fuzz import seeds
from scripts.fuzz.aggregates import NODE, T0, Aors
from scripts.fuzz.checks import refusal, reparsed

NAME = "notify"
MODES = (RfcMode(accept_unsolicited=True), KamailioMode())
REGISTERED = ("sip:alice@example.com", "sip:bob@example.com")
HEAD = ("NOTIFY sip:reginfo@127.0.0.1:5060 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK-fuzz\r\n"
        "From: <sip:presence@example.com>;tag=notifier\r\n"
        "To: <sip:reginfo@127.0.0.1:5060>;tag=ours\r\n"
        "Call-ID: fuzz@127.0.0.1\r\nCSeq: 7 NOTIFY\r\nEvent: reg\r\n"
        "Subscription-State: active;expires=3600\r\n"
        "Content-Type: application/reginfo+xml\r\nContent-Length: {length}\r\n\r\n")
seed_inputs = seeds.reginfo_bodies


def check(data: bytes) -> None:
    try:
        request = parse_message(HEAD.format(length=len(data)).encode() + data)
    except PeerError:
        return  # a body above the size cap
    for mode in MODES:
        try:
            intake = mode.read(request)
        except PeerError as error:
            refusal(request, error)
            continue
        aors = Aors(*REGISTERED)
        subscription = Subscription.observe("fuzz", NODE, T0 - 60)
        subscription.collect_events()
        applying = Applying(
            subscription_id="fuzz", subscription=lambda: subscription, identify=normalize_aor,
            load=aors.load, node=NODE, now=T0, default_expires=3600, cseq=intake.cseq,
            ended_reason=intake.ended_reason)
        try:
            result = mode.apply(intake.document, applying)
        except DomainError as error:
            assert aors.unchanged() and not subscription.pending_events, \
                f"refused ({error}) but changed"
            refusal(request, error)
            continue
        assert result.code in (1, 2, -1), result
        assert aors.replayed(), "the events do not replay to the aggregates' state"
        if result.code == -1:
            reparsed(make_response(request, 400, headers=[("Warning", warning(result.reason or ""))]))
        else:
            reparsed(make_response(request, 200))
