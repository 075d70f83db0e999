"""TCP connections we open toward a next hop, for the requests we originate (RFC 3261 18.1.1).

One connection per destination address, opened on the first request and reused for
every later one. Everything read on it goes to the `MessageSink` like what the listeners
read: responses (RFC 3261 18.2.2) and requests the peer sends us on it (a NOTIFY, when
the notifier reuses the connection), each with a `send` that answers on the same
connection. The bytes are framed by the same StreamFramer as the listeners'; a CRLFCRLF
ping gets its CRLF pong (RFC 5626 3.5.1). When a connection fails or the peer closes it,
the sink's `connection_lost` hears the address, so the transactions waiting on it end at
once instead of at Timer F; the next request opens a new connection. A connection idle
for `idle_timeout` seconds is closed.
"""

from __future__ import annotations

import asyncio
import logging

from sip_gateway.errors import PeerError
from sip_gateway.sip import PONG, KeepAlive, StreamFramer
from sip_gateway.transport.delivery import Address, Arrival, MessageSink, read_frames

log = logging.getLogger("pua_reginfo.outbound")
CONNECT_TIMEOUT = 5.0  # seconds a TCP connect may take before the request counts as failed
IDLE_TIMEOUT = 300.0


class _Link:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.reading: asyncio.Task | None = None
        # read once: uvloop answers None once the connection is gone
        sockname = writer.get_extra_info("sockname")
        self.local: Address = tuple(sockname[:2]) if sockname else ("0.0.0.0", 0)

    def send(self, data: bytes, _destination: Address | None = None) -> None:
        if not self.writer.is_closing():
            self.writer.write(data)


class StreamLinks:
    """Client TCP connections, one per destination, with their read loops."""

    def __init__(self, sink: MessageSink, *, connect_timeout: float = CONNECT_TIMEOUT,
                 idle_timeout: float = IDLE_TIMEOUT) -> None:
        self.sink = sink
        self.connect_timeout, self.idle_timeout = connect_timeout, idle_timeout
        self._links: dict[Address, _Link] = {}
        self._connecting: dict[Address, asyncio.Lock] = {}
        self._closed = False

    def __contains__(self, destination: Address) -> bool:
        return destination in self._links

    async def send(self, data: bytes, destination: Address) -> None:
        """Write `data` on the connection to `destination`, opening it first if needed;
        OSError (refused, unreachable, connect timeout, closed) when it cannot be sent."""
        link = await self._link(destination)
        link.send(data)
        try:
            await link.writer.drain()
        except (ConnectionError, OSError) as error:
            self._drop(destination, link)
            raise OSError(f"connection to {destination[0]}:{destination[1]} lost: {error}") \
                from None

    async def close(self) -> None:
        """Close every connection (at shutdown) and wait for the read loops to end."""
        self._closed = True
        links = list(self._links.values())
        self._links.clear()
        for link in links:
            link.writer.close()
        readers = [link.reading for link in links if link.reading is not None]
        if readers:
            await asyncio.gather(*readers, return_exceptions=True)

    # -- internals ---------------------------------------------------------------------

    async def _link(self, destination: Address) -> _Link:
        if self._closed:
            raise OSError("outbound connections are closed")
        link = self._links.get(destination)
        if link is not None and not link.writer.is_closing():
            return link
        lock = self._connecting.setdefault(destination, asyncio.Lock())
        async with lock:  # concurrent requests share one connect
            link = self._links.get(destination)
            if link is not None and not link.writer.is_closing():
                return link
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(destination[0], destination[1]),
                    self.connect_timeout)
            except asyncio.TimeoutError:
                raise OSError(f"connect to {destination[0]}:{destination[1]} timed out") \
                    from None
            link = _Link(reader, writer)
            self._links[destination] = link
            link.reading = asyncio.get_running_loop().create_task(
                self._read(destination, link), name=f"tcp-link-{destination[0]}:{destination[1]}")
            log.info("tcp connection to %s:%s open (from %s:%s)", *destination, *link.local)
            return link

    async def _read(self, destination: Address, link: _Link) -> None:
        framer = StreamFramer()
        reason = "closed by the peer"
        try:
            while True:
                try:
                    events = await read_frames(link.reader, framer, self.idle_timeout)
                except asyncio.TimeoutError:
                    reason = f"idle for {self.idle_timeout:g} s"
                    break
                except PeerError as error:
                    reason = f"unreadable stream: {error}"
                    break
                if events is None:
                    break
                for event in events:
                    self._dispatch(event, destination, link)
                await link.writer.drain()
        except (ConnectionError, OSError) as error:
            reason = str(error) or type(error).__name__
        finally:
            self._drop(destination, link)
            if not self._closed:
                log.info("tcp connection to %s:%s ended: %s", *destination, reason)

    def _dispatch(self, event, destination: Address, link: _Link) -> None:
        if isinstance(event, KeepAlive):
            if event.ping:
                link.send(PONG)
        else:
            self.sink.receive_message(event, Arrival(destination, "tcp", link.local), link.send,
                                      reliable=True)

    def _drop(self, destination: Address, link: _Link) -> None:
        link.writer.close()
        if self._links.get(destination) is link:
            del self._links[destination]
            self.sink.connection_lost(destination)
