"""Outbound client transactions (RFC 3261 17.1) over a fake transport and a fake clock."""

from __future__ import annotations

import asyncio
import socket

import pytest

from sip_gateway.client.outbound import Hop, Outbound, next_hop
from sip_gateway.sip import SipRequest, SipResponse, TimerValues, parse_message
from tests.unit.sip_fakes import FakeClock

T0 = 1_000.0
PROXY = ("127.0.0.1", 5080)
HOP = Hop(PROXY)
LOCAL = ("127.0.0.1", 5070)


class FakeSend:
    """Records every datagram; raises the errors it is given, one per call."""

    def __init__(self, *errors: OSError | None) -> None:
        self.sent: list[tuple[bytes, tuple[str, int]]] = []
        self.errors = list(errors)

    def __call__(self, data: bytes, address: tuple[str, int]) -> None:
        error = self.errors.pop(0) if self.errors else None
        if error is not None:
            raise error
        self.sent.append((data, address))


class FakeTransport:
    """The ClientTransport port: datagrams to a FakeSend, stream writes to FakeStreams; a
    transport without its listener address cannot be used."""

    def __init__(self, send=None, local=None, streams=None, stream_local=None) -> None:
        self.send, self.local, self.streams, self.stream_local = send, local, streams, stream_local

    def sent_by(self, transport: str):
        return self.stream_local if transport == "tcp" else self.local

    def send_datagram(self, data: bytes, address: tuple[str, int]) -> None:
        self.send(data, address)

    async def send_stream(self, data: bytes, address: tuple[str, int]) -> None:
        await self.streams.send(data, address)


def publish(branch: str = "z9hG4bK-out-1", cseq: int = 1) -> SipRequest:
    raw = (
        "PUBLISH sip:alice@example.com SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:5070;branch={branch};rport\r\n"
        "Max-Forwards: 70\r\n"
        "To: <sip:alice@example.com>\r\n"
        "From: <sip:alice@example.com>;tag=f1\r\n"
        "Call-ID: out-call-1\r\n"
        f"CSeq: {cseq} PUBLISH\r\n"
        "Event: reg\r\n"
        "Expires: 600\r\n"
        "Content-Length: 0\r\n\r\n"
    )
    request = parse_message(raw.encode())
    assert isinstance(request, SipRequest)
    return request


def response_to(request: SipRequest, status: int, reason: str = "OK", *,
                branch: str | None = None, method: str | None = None) -> SipResponse:
    via = request.headers.get("Via")
    if branch is not None:
        via = via.replace(via.split("branch=")[1].split(";")[0], branch)
    cseq = request.headers.get("CSeq")
    if method is not None:
        cseq = f"{cseq.split()[0]} {method}"
    raw = (
        f"SIP/2.0 {status} {reason}\r\n"
        f"Via: {via}\r\n"
        f"To: {request.headers.get('To')};tag=t1\r\n"
        f"From: {request.headers.get('From')}\r\n"
        f"Call-ID: {request.headers.get('Call-ID')}\r\n"
        f"CSeq: {cseq}\r\n"
        "SIP-ETag: e1\r\n"
        "Content-Length: 0\r\n\r\n"
    )
    response = parse_message(raw.encode())
    assert isinstance(response, SipResponse)
    return response


def fire_timers(outbound: Outbound) -> None:
    """What one pass of run_timers does at the fake clock's time."""
    outbound._settle(outbound.layer.on_timer(outbound.clock()))


async def started(outbound: Outbound, request: SipRequest) -> asyncio.Task:
    task = asyncio.get_running_loop().create_task(outbound.request(request, HOP))
    await asyncio.sleep(0)  # let it send
    return task


def make(send: FakeSend | None = None, clock: FakeClock | None = None) -> Outbound:
    return Outbound(FakeTransport(send or FakeSend(), LOCAL), clock=clock or FakeClock(T0))


# -- responses -------------------------------------------------------------------------------

def test_the_request_goes_out_and_resolves_with_its_final_response():
    send = FakeSend()
    request = publish()

    async def story():
        outbound = make(send)
        task = await started(outbound, request)
        assert send.sent == [(request.serialize(), PROXY)]
        assert not task.done()
        outbound.on_response(response_to(request, 200))
        response = await task
        assert outbound._waiting == {}
        return response

    response = asyncio.run(story())
    assert (response.status, response.headers.get("SIP-ETag")) == (200, "e1")


def test_an_error_response_is_final_too():
    request = publish()

    async def story():
        outbound = make()
        task = await started(outbound, request)
        outbound.on_response(response_to(request, 412, "Conditional Request Failed"))
        return await task

    assert asyncio.run(story()).status == 412


def test_provisional_responses_do_not_resolve_the_request():
    request = publish()

    async def story():
        outbound = make()
        task = await started(outbound, request)
        outbound.on_response(response_to(request, 100, "Trying"))
        outbound.on_response(response_to(request, 183, "Session Progress"))
        await asyncio.sleep(0)
        assert not task.done()
        outbound.on_response(response_to(request, 202, "Accepted"))
        return await task

    assert asyncio.run(story()).status == 202


def test_a_stray_response_is_ignored():
    request = publish()

    async def story():
        outbound = make()
        outbound.on_response(response_to(request, 200))  # nothing in flight: dropped
        task = await started(outbound, request)
        outbound.on_response(response_to(request, 200, branch="z9hG4bK-someone-else"))
        outbound.on_response(response_to(request, 200, method="SUBSCRIBE"))
        await asyncio.sleep(0)
        assert not task.done()
        outbound.on_response(response_to(request, 200))
        return await task

    assert asyncio.run(story()).status == 200


def test_concurrent_requests_each_get_their_own_response():
    first, second = publish("z9hG4bK-a", 1), publish("z9hG4bK-b", 2)

    async def story():
        outbound = make()
        a = await started(outbound, first)
        b = await started(outbound, second)
        outbound.on_response(response_to(second, 200))
        outbound.on_response(response_to(first, 500, "Server Error"))
        return await a, await b

    a, b = asyncio.run(story())
    assert (a.status, a.headers.get("CSeq"), b.status, b.headers.get("CSeq")) == (
        500, "1 PUBLISH", 200, "2 PUBLISH")


# -- timers ------------------------------------------------------------------------------------

def test_timer_e_retransmits_at_doubling_intervals_until_the_response():
    send, clock = FakeSend(), FakeClock(T0)
    request = publish()

    async def story():
        outbound = make(send, clock)
        task = await started(outbound, request)
        clock.now = T0 + 0.4
        fire_timers(outbound)
        assert len(send.sent) == 1
        clock.now = T0 + 0.5  # T1
        fire_timers(outbound)
        assert len(send.sent) == 2
        clock.now = T0 + 1.4
        fire_timers(outbound)
        assert len(send.sent) == 2
        clock.now = T0 + 1.5  # then 2*T1
        fire_timers(outbound)
        assert len(send.sent) == 3
        outbound.on_response(response_to(request, 200))
        response = await task
        clock.now = T0 + 20  # E stopped with the final response
        fire_timers(outbound)
        assert len(send.sent) == 3
        return response

    assert asyncio.run(story()).status == 200
    assert {data for data, _ in send.sent} == {request.serialize()}
    assert {address for _, address in send.sent} == {PROXY}


def test_timer_f_resolves_the_request_with_none():
    clock = FakeClock(T0)
    request = publish()

    async def story():
        outbound = make(clock=clock)
        task = await started(outbound, request)
        clock.now = T0 + 31.9
        fire_timers(outbound)
        await asyncio.sleep(0)
        assert not task.done()
        clock.now = T0 + 32  # 64*T1
        fire_timers(outbound)
        result = await task
        outbound.on_response(response_to(request, 200))  # too late: a stray now
        return result, outbound

    result, outbound = asyncio.run(story())
    assert result is None
    assert len(outbound.layer) == 0 and outbound._waiting == {}


def test_run_timers_fires_timer_f_on_the_fake_clock():
    clock = FakeClock(T0)
    timers = TimerValues(t1=0.01, t2=0.04)

    async def story():
        outbound = Outbound(FakeTransport(FakeSend(), LOCAL), timers=timers, clock=clock)
        runner = asyncio.get_running_loop().create_task(outbound.run_timers())
        try:
            task = await started(outbound, publish())
            clock.now = T0 + 64 * 0.01
            async with asyncio.timeout(5):
                return await task
        finally:
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)

    assert asyncio.run(story()) is None


def test_a_send_error_resolves_the_request_with_none():
    send = FakeSend(OSError("network unreachable"))
    request = publish()

    async def story():
        outbound = make(send)
        result = await outbound.request(request, HOP)
        return result, outbound

    result, outbound = asyncio.run(story())
    assert result is None and send.sent == []
    assert len(outbound.layer) == 0 and outbound._waiting == {}


def test_a_failed_retransmission_keeps_the_request_waiting():
    send, clock = FakeSend(None, OSError("buffer full")), FakeClock(T0)
    request = publish()

    async def story():
        outbound = make(send, clock)
        task = await started(outbound, request)
        clock.now = T0 + 0.5
        fire_timers(outbound)  # the retransmission is lost, not the transaction
        await asyncio.sleep(0)
        assert not task.done()
        outbound.on_response(response_to(request, 200))
        return await task

    assert asyncio.run(story()).status == 200
    assert len(send.sent) == 1


def test_new_branches_carry_the_magic_cookie_and_differ():
    outbound = make()
    branches = {outbound.new_branch() for _ in range(20)}
    assert len(branches) == 20 and all(b.startswith("z9hG4bK") for b in branches)


# -- over TCP ----------------------------------------------------------------------------------

TCP_HOP = Hop(PROXY, "tcp")
STREAM_LOCAL = ("127.0.0.1", 5071)


class FakeStreams:
    """The StreamLinks port: every write recorded; raises the errors it is given."""

    def __init__(self, *errors: OSError | None) -> None:
        self.sent: list[tuple[bytes, tuple[str, int]]] = []
        self.errors = list(errors)

    async def send(self, data: bytes, destination: tuple[str, int]) -> None:
        error = self.errors.pop(0) if self.errors else None
        if error is not None:
            raise error
        self.sent.append((data, destination))


def make_tcp(streams: FakeStreams, clock: FakeClock, send: FakeSend | None = None) -> Outbound:
    return Outbound(FakeTransport(send, LOCAL if send else None, streams, STREAM_LOCAL),
                    clock=clock)


def test_over_tcp_the_request_is_written_once_and_never_retransmitted():
    streams, clock = FakeStreams(), FakeClock(T0)
    request = publish()

    async def story():
        outbound = make_tcp(streams, clock)
        task = asyncio.get_running_loop().create_task(outbound.request(request, TCP_HOP))
        await asyncio.sleep(0)
        for now in (T0 + 0.5, T0 + 1.5, T0 + 3.5, T0 + 20):  # Timer E would have fired
            clock.now = now
            fire_timers(outbound)
        assert not task.done()
        outbound.on_response(response_to(request, 200))
        return await task

    assert asyncio.run(story()).status == 200
    assert streams.sent == [(request.serialize(), PROXY)]


def test_over_tcp_timer_f_still_ends_an_unanswered_request():
    streams, clock = FakeStreams(), FakeClock(T0)

    async def story():
        outbound = make_tcp(streams, clock)
        task = asyncio.get_running_loop().create_task(outbound.request(publish(), TCP_HOP))
        await asyncio.sleep(0)
        clock.now = T0 + 32
        fire_timers(outbound)
        return await task

    assert asyncio.run(story()) is None


def test_a_lost_connection_ends_the_requests_waiting_on_it_at_once():
    streams, clock = FakeStreams(), FakeClock(T0)
    first, other = publish("z9hG4bK-tcp-1"), publish("z9hG4bK-tcp-2", cseq=2)

    async def story():
        outbound = make_tcp(streams, clock, FakeSend())
        loop = asyncio.get_running_loop()
        lost = loop.create_task(outbound.request(first, TCP_HOP))
        kept = loop.create_task(outbound.request(other, Hop(PROXY, "udp")))
        await asyncio.sleep(0)
        outbound.on_lost(PROXY)
        assert await lost is None
        assert not kept.done()  # the same address over UDP is another path
        outbound.on_response(response_to(other, 200))
        return await kept, outbound

    response, outbound = asyncio.run(story())
    assert response.status == 200 and outbound._waiting == {}


def test_a_connection_that_cannot_be_opened_resolves_the_request_with_none():
    streams = FakeStreams(OSError("connection refused"))

    async def story():
        outbound = make_tcp(streams, FakeClock(T0))
        return await outbound.request(publish(), TCP_HOP), outbound

    result, outbound = asyncio.run(story())
    assert result is None and len(outbound.layer) == 0 and outbound._waiting == {}


def test_a_transport_without_a_listener_is_not_used():
    async def story():
        outbound = Outbound(FakeTransport(FakeSend(), LOCAL), clock=FakeClock(T0))  # UDP only
        assert (outbound.reaches(HOP), outbound.reaches(TCP_HOP)) == (True, False)
        assert outbound.sent_by(HOP) == LOCAL
        with pytest.raises(ValueError, match="no tcp listener"):
            outbound.sent_by(TCP_HOP)
        return await outbound.request(publish(), TCP_HOP)

    assert asyncio.run(story()) is None


def test_sent_by_names_the_listener_of_the_transport():
    outbound = make_tcp(FakeStreams(), FakeClock(T0), FakeSend())
    assert (outbound.sent_by(HOP), outbound.sent_by(TCP_HOP)) == (LOCAL, STREAM_LOCAL)


# -- next hop ----------------------------------------------------------------------------------

def test_next_hop_is_the_host_and_port_of_the_uri():
    assert next_hop("sip:127.0.0.1:5080") == Hop(("127.0.0.1", 5080), "udp")
    assert next_hop(" <sip:127.0.0.1:5080;lr> ") == Hop(("127.0.0.1", 5080), "udp")
    assert next_hop("sip:proxy@127.0.0.1;transport=udp") == Hop(("127.0.0.1", 5060), "udp")


def test_next_hop_defaults_to_port_5060():
    assert next_hop("sip:127.0.0.1") == Hop(("127.0.0.1", 5060), "udp")


def test_next_hop_of_an_ipv6_uri():
    assert next_hop("sip:[::1]:5090").address[:2] == ("::1", 5090)


@pytest.mark.parametrize("uri", ["sip:127.0.0.1:5080;transport=tcp",
                                 "<sip:127.0.0.1:5080;lr;transport=TCP>"])
def test_next_hop_over_tcp(uri):
    assert next_hop(uri) == Hop(("127.0.0.1", 5080), "tcp")


@pytest.mark.parametrize("uri", ["sips:127.0.0.1:5061", "sip:127.0.0.1;transport=tls",
                                 "sip:127.0.0.1;transport=sctp", "sip:127.0.0.1;transport=ws"])
def test_next_hop_refuses_what_we_cannot_carry(uri):
    with pytest.raises(ValueError, match="only sip: over udp or tcp"):
        next_hop(uri)


@pytest.mark.parametrize("uri", ["tel:+15551234567", "tel:+1-555-123-4567;phone-context=x"])
def test_next_hop_refuses_a_tel_uri(uri):
    with pytest.raises(ValueError, match="not a SIP URI"):
        next_hop(uri)


def test_next_hop_reports_a_host_that_does_not_resolve(monkeypatch):
    def unresolvable(*args, **kwargs):
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", unresolvable)
    with pytest.raises(ValueError, match="cannot resolve 'proxy.invalid'"):
        next_hop("sip:proxy.invalid")
