"""What the gateway counts for the metrics: tallies and histograms, their sums across
processes, and which request outcomes the handler and the core count."""

from __future__ import annotations

import asyncio

from sip_gateway.errors import ServiceUnavailable
from sip_gateway.server.core import SipCore, method_label
from sip_gateway.server.handlers import GatewayPolicy, RequestHandler
from sip_gateway.server.notify_modes import notify_mode
from sip_gateway.server.peers import TrustedPeers
from sip_gateway.server.registrar import RegistrarPolicy
from sip_gateway.sip import ServerTransactionLayer, SipResponse, parse_message
from sip_gateway.tallies import Histogram, RequestTallies, Tally
from sip_gateway.transport import Arrival
from tests.unit.test_sip_core import REGISTER


def test_a_tally_counts_by_label_values_and_absorbs_another():
    tally = Tally()
    tally.add("REGISTER", "200")
    tally.add("REGISTER", "200")
    tally.add("NOTIFY", "400")
    other = Tally()
    other.add("REGISTER", "200", amount=5)
    tally.absorb(other.snapshot())
    assert tally.counts == {("REGISTER", "200"): 7, ("NOTIFY", "400"): 1}
    assert tally.total() == 8


def test_a_histogram_gives_cumulative_buckets_and_the_sum():
    histogram = Histogram((0.01, 0.1, 1.0))
    for seconds in (0.005, 0.01, 0.05, 0.5, 7.0):
        histogram.observe(seconds, "REGISTER")
    [(labels, buckets, total)] = list(histogram.cumulative())
    assert labels == ("REGISTER",)
    assert buckets == [("0.01", 2), ("0.1", 3), ("1.0", 4), ("+Inf", 5)]  # le: at or below
    assert abs(total - 7.565) < 1e-9


def test_request_tallies_travel_as_snapshots_and_add_up():
    worker, serve = RequestTallies(), RequestTallies()
    worker.answered.add("REGISTER", "200")
    worker.latency.observe(0.002, "REGISTER")
    serve.answered.add("REGISTER", "200")
    serve.absorb(worker.snapshot())
    assert serve.answered.counts == {("REGISTER", "200"): 2}
    assert [b for _, b, _ in serve.latency.cumulative()][0][-1] == ("+Inf", 1)


def test_methods_outside_rfc_3261_share_one_label():
    assert method_label("REGISTER") == "REGISTER"
    assert method_label("X" * 200) == "other"  # a peer cannot grow the metrics


class RefusingPort:
    """A registration port whose store is overloaded."""

    async def register(self, aor, request):
        raise ServiceUnavailable("5000 commands waiting", retry_after=2, cause="overload")


POLICY = GatewayPolicy(RegistrarPolicy(("example.com",), 60, 3600, 3600),
                       TrustedPeers(["127.0.0.0/8"]), notify_mode("rfc"))
ARRIVAL = Arrival(("127.0.0.1", 5070), "udp", ("127.0.0.1", 5060))


def answered(core: SipCore, data: bytes, drain: bool = False) -> SipResponse:
    sent: list[bytes] = []

    async def serve() -> None:
        if drain:
            await core.drain()
        core.receive_datagram(data, ARRIVAL, lambda wire, _: sent.append(wire))
        await asyncio.gather(*core.tasks)

    asyncio.run(serve())
    return parse_message(sent[0])


def test_each_answer_is_counted_with_its_503_cause():
    handler = RequestHandler(RefusingPort(), POLICY, lambda: 0.0)
    core = SipCore(handler, ServerTransactionLayer(), lambda: 0.0, tallies=handler.tallies)
    assert answered(core, REGISTER).status == 503
    assert answered(core, REGISTER.replace(b"core-1", b"core-2"), drain=True).status == 503
    tallies = handler.tallies
    assert tallies.answered.counts == {("REGISTER", "503"): 2}
    assert tallies.unavailable.counts == {("overload",): 1, ("shutting_down",): 1}
    assert sum(sum(s[:-1]) for s in tallies.latency.series.values()) == 1  # handled once


def test_a_refused_notify_is_counted_by_reason():
    handler = RequestHandler(RefusingPort(), POLICY, lambda: 0.0)
    core = SipCore(handler, ServerTransactionLayer(), lambda: 0.0, tallies=handler.tallies)
    notify = (REGISTER.replace(b"REGISTER", b"NOTIFY").replace(b"Content-Length: 0",
                                                               b"Event: presence\r\n"
                                                               b"Content-Length: 0"))
    assert answered(core, notify).status == 489
    assert handler.tallies.notify_refused.counts == {("bad_event",): 1}
    assert handler.tallies.answered.counts == {("NOTIFY", "489"): 1}
