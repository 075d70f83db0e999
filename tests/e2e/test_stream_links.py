"""Outbound requests over real TCP connections on loopback (StreamLinks + Outbound).

A small asyncio server stands in for the next hop: it frames what it reads, answers
each request 200 on the same connection, and can close the connection, send a request
of its own on it, or ping (CRLFCRLF, answered by a CRLF pong). Every server and connection is closed by the test.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from sip_gateway.client.outbound import Hop, Outbound
from sip_gateway.sip import SipRequest, SipResponse, StreamFramer, parse_message
from sip_gateway.transport.stream_links import StreamLinks

HOST = "127.0.0.1"


def publish(port: int) -> SipRequest:
    raw = (f"PUBLISH sip:alice@example.com SIP/2.0\r\n"
           f"Via: SIP/2.0/TCP {HOST}:{port};branch=z9hG4bK{uuid.uuid4().hex};rport\r\n"
           "Max-Forwards: 70\r\nTo: <sip:alice@example.com>\r\n"
           "From: <sip:alice@example.com>;tag=f1\r\n"
           f"Call-ID: {uuid.uuid4().hex}\r\nCSeq: 1 PUBLISH\r\nEvent: reg\r\n"
           "Expires: 600\r\nContent-Length: 0\r\n\r\n")
    request = parse_message(raw.encode())
    assert isinstance(request, SipRequest)
    return request


def ok(request: SipRequest) -> bytes:
    headers = request.headers
    return (f"SIP/2.0 200 OK\r\nVia: {headers.get('Via')}\r\nFrom: {headers.get('From')}\r\n"
            f"To: {headers.get('To')};tag=srv\r\nCall-ID: {headers.get('Call-ID')}\r\n"
            f"CSeq: {headers.get('CSeq')}\r\nSIP-ETag: e1\r\nContent-Length: 0\r\n\r\n").encode()


NOTIFY = (f"NOTIFY sip:reginfo@{HOST} SIP/2.0\r\nVia: SIP/2.0/TCP {HOST}:1;branch=z9hG4bKsrv1\r\n"
          "Max-Forwards: 70\r\nFrom: <sip:n@example.com>;tag=n1\r\nTo: <sip:r@example.com>;tag=r1\r\n"
          "Call-ID: srv-notify\r\nCSeq: 1 NOTIFY\r\nEvent: reg\r\n"
          "Subscription-State: active\r\nContent-Length: 0\r\n\r\n").encode()


class NextHop:
    """The far end: answers requests 200; `close_after` answers, then closes."""

    def __init__(self, close_after: int | None = None) -> None:
        self.close_after = close_after
        self.connections = 0
        self.requests: list[SipRequest] = []
        self.responses: list[SipResponse] = []
        self.raw = b""  # everything received, to see a pong the framer holds back
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> NextHop:
        self.server = await asyncio.start_server(self._handle, HOST, 0)
        return self

    @property
    def address(self) -> tuple[str, int]:
        return self.server.sockets[0].getsockname()[:2]

    async def stop(self) -> None:
        for writer in self.writers:
            writer.close()
        self.server.close()
        await self.server.wait_closed()

    async def _handle(self, reader, writer) -> None:
        self.connections += 1
        self.writers.append(writer)
        framer, answered = StreamFramer(), 0
        try:
            while data := await reader.read(65536):
                self.raw += data
                for event in framer.feed(data):
                    if isinstance(event, SipResponse):
                        self.responses.append(event)
                    elif isinstance(event, SipRequest):
                        self.requests.append(event)
                        writer.write(ok(event))
                        answered += 1
                await writer.drain()
                if self.close_after is not None and answered >= self.close_after:
                    break
        finally:
            writer.close()


class Near:
    """Our side: StreamLinks + Outbound, the links delivering to this sink, which records
    what they hand up and answers requests on the connection they came on."""

    accepting = True

    def __init__(self) -> None:
        self.lost: list[tuple[str, int]] = []
        self.requests: list[SipRequest] = []
        self.streams = StreamLinks(self)
        self.outbound = Outbound(self)

    # ClientTransport
    def sent_by(self, transport: str):
        return (HOST, 5999) if transport == "tcp" else None

    def send_datagram(self, data: bytes, address) -> None:
        raise OSError("no UDP here")

    async def send_stream(self, data: bytes, address) -> None:
        await self.streams.send(data, address)

    # MessageSink
    def receive_message(self, message, arrival, send, *, reliable: bool) -> None:
        if isinstance(message, SipResponse):
            self.outbound.on_response(message)
        else:
            self.requests.append(message)
            send(ok(message), arrival.source)

    def connection_lost(self, address) -> None:
        self.lost.append(address)
        self.outbound.on_lost(address)


async def until(condition, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


def test_requests_share_one_connection_and_get_their_answers_on_it():
    async def story():
        far, near = await NextHop().start(), Near()
        try:
            hop = Hop(far.address, "tcp")
            answers = await asyncio.gather(*(near.outbound.request(publish(5999), hop)
                                             for _ in range(5)))
            return [a.status for a in answers], far.connections
        finally:
            await near.streams.close()
            await far.stop()

    statuses, connections = asyncio.run(story())
    assert statuses == [200] * 5 and connections == 1


def test_a_connection_closed_by_the_peer_is_reopened_for_the_next_request():
    async def story():
        far, near = await NextHop(close_after=1).start(), Near()
        try:
            hop = Hop(far.address, "tcp")
            first = await near.outbound.request(publish(5999), hop)
            await until(lambda: near.lost)  # the peer closed it after answering
            second = await near.outbound.request(publish(5999), hop)
            return first.status, second.status, far.connections, near.lost
        finally:
            await near.streams.close()
            await far.stop()

    first, second, connections, lost = asyncio.run(story())
    assert (first, second, connections) == (200, 200, 2)
    assert len(lost) >= 1


def test_a_request_from_the_peer_on_our_connection_is_served_and_a_ping_answered():
    async def story():
        far, near = await NextHop().start(), Near()
        try:
            await near.outbound.request(publish(5999), Hop(far.address, "tcp"))
            far.writers[0].write(NOTIFY + b"\r\n\r\n")
            await until(lambda: far.responses and far.raw.endswith(b"\r\n\r\n\r\n"))
            return near.requests, far.responses
        finally:
            await near.streams.close()
            await far.stop()

    requests, responses = asyncio.run(story())
    assert [r.method for r in requests] == ["NOTIFY"]
    assert [(r.status, r.headers.get("Call-ID")) for r in responses] == [(200, "srv-notify")]


def test_a_refused_connection_fails_the_request_at_once():
    async def story():
        far = await NextHop().start()
        address = far.address
        await far.stop()  # nothing listens there any more
        near = Near()
        try:
            async with asyncio.timeout(5):
                return await near.outbound.request(publish(5999), Hop(address, "tcp"))
        finally:
            await near.streams.close()

    assert asyncio.run(story()) is None


def test_after_close_nothing_is_sent():
    async def story():
        far, near = await NextHop().start(), Near()
        try:
            await near.streams.close()
            with pytest.raises(OSError, match="closed"):
                await near.streams.send(b"x", far.address)
            return far.connections
        finally:
            await far.stop()

    assert asyncio.run(story()) == 0
