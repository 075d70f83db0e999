"""Per-source limits (`[security] max_rate`): token buckets on a fake clock, the bounded
table of sources, and the SIP core serving, refusing (503 with Retry-After, counted as
cause rate_limit) and dropping one source's flood while another source is served."""

from __future__ import annotations

import asyncio

from sip_gateway.server.core import SipCore
from sip_gateway.server.source_limits import SourceLimits, Verdict
from sip_gateway.sip import ServerTransactionLayer, SipResponse, parse_message
from sip_gateway.transport import Arrival
from tests.unit.test_sip_core import REGISTER, EchoHandler

S, R, D = Verdict.SERVE, Verdict.REFUSE, Verdict.DROP


def test_a_burst_then_the_rate_then_refusals_then_silence():
    limits = SourceLimits(rate=10, burst=3)
    assert [limits.check("192.0.2.1", 0.0) for _ in range(8)] == [S, S, S, R, R, R, D, D]
    assert limits.check("192.0.2.1", 0.1) is S  # one token a tenth of a second
    assert limits.check("192.0.2.1", 0.1) is R
    assert limits.check("192.0.2.1", 0.1) is D


def test_buckets_fill_up_to_the_burst_and_no_more():
    limits = SourceLimits(rate=10, burst=3)
    for _ in range(6):
        limits.check("192.0.2.1", 0.0)
    assert [limits.check("192.0.2.1", 100.0) for _ in range(7)] == [S, S, S, R, R, R, D]


def test_each_source_has_its_own_buckets_and_exempt_ones_none():
    limits = SourceLimits(rate=1, burst=1, exempt=lambda source: source.startswith("10."))
    assert [limits.check("192.0.2.1", 0.0) for _ in range(3)] == [S, R, D]
    assert limits.check("192.0.2.2", 0.0) is S
    assert all(limits.check("10.0.0.1", 0.0) is S for _ in range(1000))
    assert len(limits) == 2


def test_the_table_is_bounded_and_forgets_the_source_seen_longest_ago():
    limits = SourceLimits(rate=1, burst=1, capacity=3)
    limits.check("192.0.2.1", 0.0)
    for index in range(2, 200):  # spoofed addresses
        limits.check(f"198.51.100.{index}", 0.0)
    assert len(limits) == 3
    assert limits.check("192.0.2.1", 0.0) is S  # forgotten: full buckets again


def core_with_limits(rate: float) -> SipCore:
    return SipCore(EchoHandler(), ServerTransactionLayer(), lambda: 0.0,
                   limits=SourceLimits(rate, 2 * rate, exempt=lambda s: s == "127.0.0.1"))


def test_the_core_serves_refuses_and_drops_a_flood_and_serves_the_others():
    core = core_with_limits(rate=2)
    answers: dict[str, list[int]] = {"192.0.2.1": [], "192.0.2.2": [], "127.0.0.1": []}

    async def flood() -> None:
        sent = 0
        for number in range(20):
            for source in ("192.0.2.1", "192.0.2.1", "192.0.2.1") + (
                    ("192.0.2.2",) if number < 4 else ()) + ("127.0.0.1",):
                sent += 1
                data = REGISTER.replace(b"core-1", f"flood-{sent}".encode())
                core.receive_datagram(data, Arrival((source, 5070), "udp", ("127.0.0.1", 5060)),
                                      lambda wire, _, s=source: answers[s].append(
                                          parse_message(wire).status))
        await asyncio.gather(*core.tasks)

    asyncio.run(flood())
    assert sorted(answers["192.0.2.1"]) == [200] * 4 + [503] * 4  # the rest: dropped
    assert answers["192.0.2.2"] == [200] * 4
    assert answers["127.0.0.1"] == [200] * 20  # trusted: not counted
    assert core.tallies.unavailable.counts == {("rate_limit",): 4}
    assert core.tallies.dropped.counts == {("rate_limit",): 60 - 8}


def test_a_refusal_says_when_to_come_back_and_responses_are_never_counted():
    core = core_with_limits(rate=0.001)  # a burst of one: the next request is refused
    sent: list[bytes] = []
    arrival = Arrival(("192.0.2.1", 5070), "udp", ("127.0.0.1", 5060))

    async def two() -> None:
        for number in (1, 2):
            core.receive_datagram(REGISTER.replace(b"core-1", b"core-%d" % number), arrival,
                                  lambda wire, _: sent.append(wire))
        for _ in range(5):  # a response to one of our requests: not a request of its source
            core.receive_datagram(b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n", arrival,
                                  lambda wire, _: sent.append(wire))
        await asyncio.gather(*core.tasks)

    asyncio.run(two())
    [refused] = [r for r in map(parse_message, sent) if r.status != 200]
    assert isinstance(refused, SipResponse) and refused.status == 503
    assert refused.headers.get("Retry-After") == "1"
    assert "requests a second from 192.0.2.1" in refused.headers.get("Warning")
    assert len(sent) == 2 and not core.tallies.dropped.counts
