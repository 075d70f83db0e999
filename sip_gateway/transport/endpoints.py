"""Every socket of the gateway, built before what uses them and started with their sink.

`Transports` is built first (nothing bound yet): the outbound side is given it as its
`ClientTransport` (send a datagram, write on a connection, the Via sent-by of each
transport), and the SIP core is built on top of that. `start(sink)` then binds the
listeners and makes every socket, including the TCP connections we open for our own
requests, deliver to the sink. Requests over UDP leave from the first UDP listener, so
their answers come back to it (RFC 3261 18.1.1); over TCP they leave on a connection
whose Via names our first TCP listener. A wildcard listener's sent-by is the address the
kernel would use toward `toward` (the outbound proxy). Shutdown goes in steps, because
the UDP socket must outlive the last PUBLISH answer: `stop_listening` (no new TCP
connections), `close_connections` (the TCP peers), `close_links` (the connections we
opened), `close_datagrams`.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import os
import socket
from collections.abc import Sequence

from sip_gateway.transport.delivery import Address, MessageSink
from sip_gateway.transport.listeners import TcpLimits, TcpServer, UdpProtocol, address_text, parse_listen
from sip_gateway.transport.reuseport import bind_shared, steer
from sip_gateway.transport.stream_links import StreamLinks

log = logging.getLogger("pua_reginfo.transport")
SHARED_BIND_WAIT = 2.0  # seconds serve waits for its UDP address when it runs workers


class Transports:
    """UDP and TCP listeners and our outbound TCP connections, all feeding one sink."""

    def __init__(self, udp: Sequence[str], tcp: Sequence[str], limits: TcpLimits | None = None,
                 toward: Address | None = None, udp_buffer: int | None = None,
                 udp_workers: int = 0) -> None:
        self.udp_listen = [parse_listen(text) for text in udp]
        self.udp_buffer, self.udp_workers = udp_buffer, udp_workers
        self.tcp_listen = [parse_listen(text) for text in tcp]
        self.limits, self.toward = limits or TcpLimits(), toward
        self.udp_local: Address | None = None  # sent-by of our requests over UDP
        self.tcp_local: Address | None = None  # ... over TCP
        self.connections: TcpServer | None = None
        self.links: StreamLinks | None = None
        self._datagrams: list[asyncio.DatagramTransport] = []
        self._servers: list[asyncio.Server] = []

    async def start(self, sink: MessageSink) -> None:
        """Bind every listener; from now on everything received goes to `sink`. TCP
        first: a datagram is answered as soon as its socket is bound, and whoever got an
        answer over UDP may connect over TCP at once."""
        self.connections = TcpServer(sink, self.limits)
        for host, port in self.tcp_listen:
            try:
                server = await asyncio.start_server(self.connections.handle, host, port)
            except OSError as error:
                raise _on(error, "tcp", host, port) from None
            self._servers.append(server)
            for sock in server.sockets:
                log.info("listening tcp %s", address_text(sock.getsockname()))
        for host, port in self.udp_listen:
            try:
                transport = await open_datagrams(sink, host, port, self.udp_buffer,
                                                 first=True, workers=self.udp_workers)
            except OSError as error:
                raise _on(error, "udp", host, port) from None
            self._datagrams.append(transport)
            log.info("listening udp %s", address_text(transport.get_extra_info("sockname")))
        self.links = StreamLinks(sink)
        if self._datagrams:
            self.udp_local = self._sent_by(self._datagrams[0].get_extra_info("sockname"))
        if self._servers:
            self.tcp_local = self._sent_by(self._servers[0].sockets[0].getsockname())

    def udp_addresses(self) -> list[Address]:
        """The addresses the UDP listeners are bound to (a port 0 resolved)."""
        return [tuple(t.get_extra_info("sockname")[:2]) for t in self._datagrams]

    # ClientTransport ---------------------------------------------------------------------

    def sent_by(self, transport: str) -> Address | None:
        return self.tcp_local if transport == "tcp" else self.udp_local

    def send_datagram(self, data: bytes, address: Address) -> None:
        if not self._datagrams or self._datagrams[0].is_closing():
            raise OSError("the UDP socket is closed")
        self._datagrams[0].sendto(data, address)

    async def send_stream(self, data: bytes, address: Address) -> None:
        """On the connection `address` opened to us if it is still open (a watcher's
        NOTIFYs go back on its SUBSCRIBE's connection), else on ours, opened on demand."""
        if self.links is None:
            raise OSError("the transports are not started")
        if self.connections is not None and await self.connections.write_to(address, data):
            return
        await self.links.send(data, address)

    def connected(self, address: Address) -> bool:
        """Whether a TCP connection with `address` is open (either side opened it)."""
        return ((self.connections is not None and address in self.connections.peers)
                or (self.links is not None and address in self.links))

    # Shutdown, step by step ----------------------------------------------------------------

    def stop_listening(self) -> None:
        for server in self._servers:
            server.close()

    async def close_connections(self) -> None:
        if self.connections is not None:
            await self.connections.close()

    async def close_links(self) -> None:
        if self.links is not None:
            await self.links.close()

    def close_datagrams(self) -> None:
        for transport in self._datagrams:
            transport.close()

    def _sent_by(self, sockname) -> Address:
        return reachable_host(sockname[0], self.toward), sockname[1]


async def open_datagrams(sink: MessageSink, host: str, port: int, buffer: int | None, *,
                         first: bool = True, workers: int = 0) -> asyncio.DatagramTransport:
    """A UDP listener on (host, port) feeding `sink`. With UDP workers the socket joins
    the address's reuseport group: serve's (`first`) creates it and steers it (see
    reuseport.py), each worker's joins it."""
    loop = asyncio.get_running_loop()
    if workers or not first:
        sock = await _bind_shared(host, port, first)
        if first:
            steer(sock, workers)
        transport, _ = await loop.create_datagram_endpoint(
            lambda: UdpProtocol(sink, (host, port)), sock=sock)
    else:  # bound here, so that a failure keeps its errno (uvloop's message drops it)
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                             socket.SOCK_DGRAM)
        try:
            sock.bind((host, port))
        except OSError:
            sock.close()
            raise
        transport, _ = await loop.create_datagram_endpoint(
            lambda: UdpProtocol(sink, (host, port)), sock=sock)
    if buffer:
        grow_receive_buffer(transport.get_extra_info("socket"), buffer)
    return transport


async def _bind_shared(host: str, port: int, first: bool) -> socket.socket:
    """`bind_shared`, waiting up to SHARED_BIND_WAIT for the address to be free when it is
    serve's: the workers of a serve killed a moment ago (SIGKILL, then an immediate restart
    by a supervisor) hold it until they notice, a few milliseconds later."""
    deadline = asyncio.get_running_loop().time() + SHARED_BIND_WAIT
    while True:
        try:
            return bind_shared(host, port, first)
        except OSError as error:
            if (not first or error.errno != errno.EADDRINUSE
                    or asyncio.get_running_loop().time() >= deadline):
                raise
            await asyncio.sleep(0.05)


def grow_receive_buffer(sock, size: int) -> int:
    """Let the kernel queue `size` bytes of datagrams on `sock` (what arrives while the
    process is busy, e.g. in a long garbage collection or a slow commit, instead of being
    dropped and retransmitted by the peers 500 ms later); Linux caps the request at
    net.core.rmem_max. Returns the size granted (Linux reports twice what was set, the
    other half being its bookkeeping)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
    granted = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) // 2
    if granted < size:
        log.warning("udp receive buffer: %d bytes asked, %d granted (raise the sysctl "
                    "net.core.rmem_max to allow more)", size, granted)
    return granted


def reachable_host(host: str, toward: Address | None) -> str:
    """The address to put in Via: the listener's, or for a wildcard listener the one the
    kernel would use toward the next hop (RFC 3261 18.1.1: where responses must return)."""
    if not ipaddress.ip_address(host).is_unspecified:
        return host
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    target = toward or (("::1" if family == socket.AF_INET6 else "127.0.0.1"), 5060)
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(target)  # no packet is sent: this only picks the route
            return probe.getsockname()[0]
        except OSError:
            return "::1" if family == socket.AF_INET6 else "127.0.0.1"


def _on(error: OSError, transport: str, host: str, port: int) -> OSError:
    """A bind error that names the address it was about."""
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    reason = os.strerror(error.errno) if error.errno else str(error)  # uvloop's says less
    return OSError(error.errno, f"{transport} {where}: {reason}")
