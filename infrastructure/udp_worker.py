"""A UDP worker: a process of `serve` that takes requests on serve's UDP addresses.

`serve` starts it (infrastructure/udp_workers.py) with one end of a socketpair:

    python -m infrastructure.udp_worker --index N --link-fd FD --log-level L --event-loop E

It waits for the settings and the UDP addresses serve is bound to, joins each address's
reuseport group (sip_gateway/transport/reuseport.py), and serves: it parses each
request, keeps its server transaction (retransmissions are answered here), checks it
against the same policy as serve and answers it; what a request changes is decided and
committed by serve, over the link (infrastructure/remote_port.py), before the answer
leaves. A response that reaches a worker (our PUBLISH and SUBSCRIBE transactions live in
serve) is passed on to serve. SIGINT and SIGTERM are left to serve, which stops its
workers in order: on "stop" the worker answers what is in flight (503 from then on),
closes its sockets and exits; if serve goes away, the worker exits too.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import signal
import socket
import sys
import time

from infrastructure.authentication import digest_guard
from infrastructure.clock import SystemClock
from infrastructure.credentials import open_credentials
from infrastructure.event_loop import loop_factory
from infrastructure.gateway_policy import gateway_policy, source_limits
from infrastructure.log_setup import FORMATS, configure_logging
from infrastructure.process_link import Message, ProcessLink
from infrastructure.remote_port import ERROR, RESULT, RemotePort
from infrastructure.settings import Settings
from sip_gateway.server.core import SipCore
from sip_gateway.server.handlers import RequestHandler
from sip_gateway.sip import ServerTransactionLayer, SipResponse
from sip_gateway.transport import Address, open_datagrams

log = logging.getLogger("pua_reginfo.serve")
TIMER_INTERVAL = 0.5  # seconds between two expiries of the server transactions

# Messages from serve (the first item of each tuple), beside RESULT and ERROR.
SETTINGS, STOP = "settings", "stop"
# Messages to serve, beside CALL.
READY, RESPONSE, TALLIES = "ready", "response", "tallies"


class _ResponsesToServe:
    """The worker's client side: responses go to serve, where our client transactions are."""

    def __init__(self, link: ProcessLink) -> None:
        self.link = link

    def on_response(self, response: SipResponse) -> None:
        if not self.link.closed:
            self.link.send((RESPONSE, response.serialize()))

    def on_lost(self, address: Address) -> None:  # a UDP worker opens no connections
        pass


class UdpWorker:
    def __init__(self, index: int, sock: socket.socket) -> None:
        self.index, self.sock = index, sock
        self.port = RemotePort()
        self.link: ProcessLink | None = None
        self._configured: asyncio.Future | None = None
        self._stop = asyncio.Event()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self._configured = loop.create_future()
        self.link = await ProcessLink.open(self.sock, self._on_message, self._on_closed)
        self.port.attach(self.link)
        configured = await _first(self._configured, self._stop)
        if configured is None:
            return  # serve went away before it told us anything
        settings, addresses, secret = configured
        self.port.dialogs = settings.reginfo.server_address is not None
        credentials = open_credentials(settings) if secret is not None else None
        guard = digest_guard(settings, secret, credentials) if credentials is not None else None
        handler = RequestHandler(self.port, gateway_policy(settings), SystemClock().now,
                                 notifies=self.port, guard=guard,
                                 nonces=self.port if guard is not None else None)
        core = SipCore(handler, ServerTransactionLayer(), time.monotonic,
                       client=_ResponsesToServe(self.link), tallies=handler.tallies,
                       limits=source_limits(settings, share=settings.listen.udp_workers))
        datagrams = [await open_datagrams(core, host, port, settings.listen.udp_receive_buffer,
                                          first=False) for host, port in addresses]
        timers = loop.create_task(self._tick(core))
        fresh = loop.create_task(credentials.keep_fresh()) if credentials is not None else None
        gc.collect()
        gc.freeze()  # what startup built is out of the collector's sight (as in serve)
        self.link.send((READY, os.getpid()))
        log.info("ready (pid %d)", os.getpid())
        await self._stop.wait()
        if self.link.closed:
            self.port.close()  # serve is gone: what waits for it is answered 503
        await core.drain()
        for transport in datagrams:
            transport.close()
        timers.cancel()
        if fresh is not None:
            fresh.cancel()
        if not self.link.closed:
            self.link.send((TALLIES, core.tallies.snapshot()))  # the last word
        self.link.close()
        log.info("stopped")

    def _on_message(self, message: Message) -> None:
        kind = message[0]
        if kind == RESULT:
            self.port.on_result(message[1], message[2])
        elif kind == ERROR:
            self.port.on_error(*message[1:])
        elif kind == SETTINGS:
            if not self._configured.done():
                self._configured.set_result(tuple(message[1:4]))
        elif kind == STOP:
            self._stop.set()

    def _on_closed(self) -> None:
        self._stop.set()

    async def _tick(self, core: SipCore) -> None:
        """Expire server transactions; tell serve what was counted, when anything was."""
        told: dict = {}
        while True:
            await asyncio.sleep(TIMER_INTERVAL)
            core.expire_transactions()
            counted = core.tallies.snapshot()
            if counted != told and not self.link.closed:
                self.link.send((TALLIES, counted))
                told = counted


async def _first(future: asyncio.Future, stop: asyncio.Event) -> tuple[Settings, list,
                                                                       bytes | None] | None:
    """The settings, or None if the link closes first."""
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait([future, stopped], return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    return future.result() if future.done() else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infrastructure.udp_worker")
    parser.add_argument("--index", type=int, required=True)
    parser.add_argument("--link-fd", type=int, required=True)
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--log-format", default="text", choices=FORMATS)
    parser.add_argument("--event-loop", default="uvloop", choices=("uvloop", "asyncio"))
    options = parser.parse_args(argv)
    configure_logging(options.log_level, options.log_format, f"udp worker {options.index}")
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)  # serve stops its workers itself, in order
    sock = socket.socket(fileno=options.link_fd)
    with asyncio.Runner(loop_factory=loop_factory(options.event_loop)) as runner:
        runner.run(UdpWorker(options.index, sock).run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
