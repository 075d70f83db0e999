"""The asyncio shell: UDP and TCP listeners feeding the MessageSink (RFC 3261 18).

UDP: each datagram is one message. TCP: a StreamFramer per connection (Content-Length
framing, bounded buffers); a CRLFCRLF ping is answered with CRLF (RFC 5626 3.5.1); a
connection that sends nothing for `idle_timeout`, or has not completed a message
`header_timeout` seconds after it began (slowloris), is closed; a framing error too.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from dataclasses import dataclass

from sip_gateway.errors import PeerError
from sip_gateway.sip import PONG, KeepAlive, StreamFramer
from sip_gateway.transport.delivery import Arrival, MessageSink, read_frames

log = logging.getLogger("pua_reginfo.transport")


def parse_listen(text: str) -> tuple[str, int]:
    """`127.0.0.1:5060`, `[::1]:5060` or `host:port` into (host, port)."""
    text = text.strip()
    if text.startswith("["):
        host, _, port = text[1:].partition("]:")
    else:
        host, _, port = text.rpartition(":")
    if not host or not (port.isascii() and port.isdigit()) or not 0 <= int(port) < 65536:
        raise ValueError(f"bad listen address {text!r} (host:port or [v6]:port)")
    ipaddress.ip_address(host)
    return host, int(port)


class UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, sink: MessageSink, local: tuple[str, int]):
        self.sink, self.local = sink, local
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.local = transport.get_extra_info("sockname")[:2]

    def datagram_received(self, data: bytes, addr) -> None:
        if not data.strip(b"\r\n\x00"):
            return  # keep-alive noise
        arrival = Arrival((addr[0], addr[1]), "udp", self.local)
        self.sink.receive_datagram(data, arrival, self._send)

    def _send(self, data: bytes, destination: tuple[str, int]) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(data, destination)

    def error_received(self, exc: Exception) -> None:
        log.warning("udp send failed: %s", exc)


@dataclass
class TcpLimits:
    idle_timeout: float = 300.0
    header_timeout: float = 10.0
    max_connections: int = 1024


class TcpServer:
    def __init__(self, sink: MessageSink, limits: TcpLimits | None = None):
        self.sink = sink
        self.limits = limits or TcpLimits()
        self.connections: dict[asyncio.Task, asyncio.StreamWriter] = {}
        self.peers: dict[tuple[str, int], asyncio.StreamWriter] = {}  # open, by peer address

    async def close(self, grace: float = 2.0) -> None:
        """Close every connection and let its handler end by itself (a cancelled handler
        task makes asyncio's stream protocol log a traceback); cancel only a straggler."""
        handlers = dict(self.connections)
        for writer in handlers.values():
            writer.close()
        if not handlers:
            return
        _, late = await asyncio.wait(list(handlers), timeout=grace)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late, timeout=grace)

    async def write_to(self, peer: tuple[str, int], data: bytes) -> bool:
        """Write `data` on the open connection from `peer`; False when there is none."""
        writer = self.peers.get(peer)
        if writer is None or writer.is_closing():
            return False
        writer.write(data)
        try:
            await writer.drain()
        except (ConnectionError, OSError) as error:
            raise OSError(f"connection from {peer[0]}:{peer[1]} lost: {error}") from None
        return True

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self.connections) >= self.limits.max_connections:
            writer.close()
            return
        peername, sockname = writer.get_extra_info("peername"), writer.get_extra_info("sockname")
        if not peername or not sockname:  # reset by the peer before we got to it (uvloop)
            writer.close()
            return
        task = asyncio.current_task()
        self.connections[task] = writer
        peer, local = peername[:2], sockname[:2]
        self.peers[(peer[0], peer[1])] = writer
        arrival = Arrival((peer[0], peer[1]), "tcp", (local[0], local[1]))
        framer = StreamFramer()

        def send(data: bytes, _destination) -> None:
            if not writer.is_closing():
                writer.write(data)

        loop = asyncio.get_running_loop()
        partial_since: float | None = None  # when the half-sent message began
        try:
            while self.sink.accepting:
                if framer.buffered:
                    partial_since = partial_since if partial_since is not None else loop.time()
                    timeout = self.limits.header_timeout - (loop.time() - partial_since)
                else:
                    partial_since, timeout = None, self.limits.idle_timeout
                if timeout <= 0:
                    log.info("closing tcp:%s:%s: message not completed in %s s", peer[0], peer[1],
                             self.limits.header_timeout)
                    break
                try:
                    events = await read_frames(reader, framer, timeout)
                except asyncio.TimeoutError:
                    break
                except PeerError as error:
                    if framer.failed_bytes:
                        self.sink.answer_unparsable(framer.failed_bytes, error, arrival, send)
                        await writer.drain()
                    log.info("closing tcp:%s:%s: %s", peer[0], peer[1], error)
                    break
                if events is None:
                    break
                if events:
                    partial_since = None  # a message completed; a new one may have begun
                for event in events:
                    if isinstance(event, KeepAlive):
                        if event.ping:
                            send(PONG, peer)
                        continue
                    self.sink.receive_message(event, arrival, send, reliable=True)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        except asyncio.CancelledError:
            pass  # shutdown: end like a closed connection (see close())
        finally:
            self.connections.pop(task, None)
            if self.peers.get((peer[0], peer[1])) is writer:
                del self.peers[(peer[0], peer[1])]
            writer.close()
            try:
                await writer.wait_closed()
            except (ConnectionError, OSError, asyncio.CancelledError):
                pass


def address_text(sockname) -> str:
    host, port = sockname[0], sockname[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
