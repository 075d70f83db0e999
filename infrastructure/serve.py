"""`serve`: the gateway, the group-commit executor and the projections as one service.

Wiring: transports -> SipCore -> RequestHandler -> ExecutorPort -> GroupCommitExecutor ->
store. After every commit the usrloc projection catches up (on the store thread, at most
every `projection_interval`); the sweeper records `expired` for lapsed bindings every
second; server transactions are expired on their timers. SIGTERM/SIGINT stop the
listeners taking requests (503 from then on), let in-flight requests finish, flush the
executor and the view, drain the PUBLISH outbox, close the sockets, then exit.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import signal
import socket
import time
from uuid import UUID

from domain import Binding, RegisterRequest
from domain.notify_rfc import NotifyResult
from domain.reginfo import ReginfoDocument
from infrastructure.application import StoreContended
from infrastructure.bootstrap import Service
from infrastructure.commands import (
    ApplyNotify,
    ExpireDue,
    NotifyContext,
    Register,
    RequestSubscription,
)
from infrastructure.executor import (STORE_DOWN, GroupCommitExecutor, StoreBusy,
                                     StoreUnavailable)
from infrastructure.store_locks import KEEPER, store_lock
from infrastructure.outbound_stores import PublicationsInStore, SubscriptionsInStore
from infrastructure.settings import SettingsError
from infrastructure.store import StoreUrl
from sip_gateway.errors import ServiceUnavailable
from sip_gateway.server.handlers import Arrival, GatewayPolicy, RequestHandler
from sip_gateway.client.outbound import Hop, Outbound, next_hop
from sip_gateway.client.publisher_client import PublisherClient
from sip_gateway.server.peers import TrustedPeers
from sip_gateway.server.registrar import RegistrarPolicy
from sip_gateway.server.core import SipCore
from sip_gateway.sip import ServerTransactionLayer
from sip_gateway.transport.stream_links import StreamLinks
from sip_gateway.client.subscriber import DEFAULT_EXPIRES
from sip_gateway.client.subscription_keeper import SubscriptionKeeper
from sip_gateway.transport.listeners import TcpLimits, start_listeners

log = logging.getLogger("pua_reginfo.serve")
SWEEP_INTERVAL = 1.0
TIMER_INTERVAL = 0.5
LEAD_INTERVAL = 2.0  # seconds between checks of the subscription keeper lock
STORE_RETRY_AFTER = 5  # seconds a UA is asked to wait while the event store is unreachable
BUSY_RETRY_AFTER = 1  # ... while too many requests wait for the store
SETTLE_TIMEOUT = 5.0  # seconds to drain the PUBLISH outbox and the SUBSCRIBEs in flight at shutdown


class ExecutorPort:
    """The application as the gateway sees it: every change through the group commit."""

    def __init__(self, service: Service, executor: GroupCommitExecutor,
                 subscribe_on_register: bool = False):
        self.service, self.executor = service, executor
        self.subscribe_on_register = subscribe_on_register
        self._subscribed: set[str] = set()

    async def register(self, aor: str, request: RegisterRequest | None) -> list[Binding]:
        limit = self.service.settings.registrar.max_contacts or None
        bindings = await self._submit(Register(aor, request, limit))
        if self.subscribe_on_register and bindings and request is not None:
            await self._subscribe(aor)
        return bindings

    async def _subscribe(self, aor: str) -> None:
        """subscribe_on_register: keep a reg subscription for every locally registered AoR."""
        if aor in self._subscribed:
            return
        try:
            await self.executor.submit(RequestSubscription(aor, DEFAULT_EXPIRES, "register"))
            self._subscribed.add(aor)
        except Exception as error:  # the REGISTER itself succeeded; retried on the next one
            log.warning("could not subscribe to %s: %s", aor, error)

    async def notify(self, document: ReginfoDocument | None, mode: str, subscription_id: str,
                     ended_reason: str | None, require_subscription: bool,
                     cseq: int | None = None) -> NotifyResult:
        context = NotifyContext(mode, subscription_id, ended_reason, cseq)
        return await self._submit(ApplyNotify(document, context, require_subscription))

    async def _submit(self, command):
        """Run a command; an unreachable store, or an AoR other nodes keep changing, is 503
        with Retry-After (RFC 3261 21.5.4), so the UA retries or fails over to another
        registrar."""
        try:
            return await self.executor.submit(command)
        except StoreUnavailable as error:
            retry_after = BUSY_RETRY_AFTER if isinstance(error, StoreBusy) else STORE_RETRY_AFTER
            raise ServiceUnavailable(str(error), retry_after=retry_after) from None
        except StoreContended as error:
            raise ServiceUnavailable(str(error), retry_after=error.retry_after) from None


class Gateway:
    """A running `serve`: start it, then `run_until_stopped()`."""

    def __init__(self, service: Service):
        self.service = service
        settings = service.settings
        self.executor = GroupCommitExecutor(service.app, service.clock,
                                            default_expires=settings.registrar.default_expires,
                                            store_timeout=settings.store.timeout,
                                            max_pending=settings.store.max_pending)
        policy = GatewayPolicy(
            registrar=RegistrarPolicy.from_settings(settings),
            trusted=TrustedPeers(settings.security.trusted),
            notify_mode=settings.notify.mode,
            notify_reply_code=settings.notify.reply_code,
            accept_unsolicited_notify=settings.notify.accept_unsolicited_notify,
        )
        reginfo = settings.reginfo
        self.outbound: Outbound | None = None
        self.publisher: PublisherClient | None = None
        self.keeper: SubscriptionKeeper | None = None
        self.proxy_hop = _proxy_hop(reginfo.outbound_proxy, settings.listen)
        self.streams: StreamLinks | None = None
        if reginfo.server_address:
            self.keeper = SubscriptionKeeper(
                SubscriptionsInStore(service.app, self.executor.submit, self._in_store),
                None, subscriber=reginfo.server_address, proxy=reginfo.outbound_proxy,
                proxy_hop=self.proxy_hop, clock=service.clock.now)
        port = ExecutorPort(service, self.executor,
                            reginfo.subscribe_on_register and self.keeper is not None)
        handler = RequestHandler(port, policy, service.clock.now, self.keeper)
        self.core = SipCore(handler, ServerTransactionLayer(), time.monotonic)
        self.closers: list = []
        self.tasks: list[asyncio.Task] = []
        self.stopped = asyncio.Event()
        self._dirty = asyncio.Event()

    async def start(self) -> None:
        self.executor.start()
        reginfo = self.service.settings.reginfo
        if reginfo.publish_reginfo and self.proxy_hop is not None:
            # Before any request: a first start publishes from here on, not the history.
            await self._in_store(self.service.catch_up_publisher)
        self.executor.on_commit(self._dirty.set)
        listen = self.service.settings.listen
        limits = TcpLimits(idle_timeout=listen.tcp_idle_timeout,
                           header_timeout=listen.tcp_header_timeout,
                           max_connections=listen.tcp_max_connections)
        self.closers, self.tcp = await start_listeners(self.core, list(listen.udp),
                                                       list(listen.tcp), limits)
        self._start_outbound()
        loop = asyncio.get_running_loop()
        jobs = [("projector", self._project), ("sweeper", self._sweep), ("timers", self._timers)]
        if self.outbound is not None:
            jobs.append(("client-timers", self.outbound.run_timers))
        if self.publisher is not None:
            jobs.append(("publisher", self.publisher.run))
        if self.keeper is not None:
            await self._standing_subscriptions()
            jobs.append(("subscription-keeper", self._keep_subscriptions))
        for name, job in jobs:
            self.tasks.append(loop.create_task(job(), name=name))
        log.info("serving (node %s, store %s)", self.service.settings.node.id,
                 self.service.settings.store.url)

    def _start_outbound(self) -> None:
        """PUBLISH and SUBSCRIBE leave from the first UDP socket we listen on (answers come
        back to it), or over TCP connections whose Via names our first TCP listener."""
        reginfo = self.service.settings.reginfo
        toward = self.proxy_hop.address if self.proxy_hop is not None else None
        send, local, stream_local = None, None, None
        udp = [c for c in self.closers if hasattr(c, "sendto")]  # the UDP transports
        if udp:
            transport = udp[0]
            sockname = transport.get_extra_info("sockname")[:2]
            local = (_reachable_host(sockname[0], toward), sockname[1])

            def send(data: bytes, address, transport=transport) -> None:
                if transport.is_closing():
                    raise OSError("the UDP socket is closed")
                transport.sendto(data, address)
        servers = [c for c in self.closers if getattr(c, "sockets", None)]  # TCP servers
        if servers:
            sockname = servers[0].sockets[0].getsockname()[:2]
            stream_local = (_reachable_host(sockname[0], toward), sockname[1])
        self.streams = StreamLinks(lambda response: self.outbound.on_response(response),
                                   self._request_on_link,
                                   lambda address: self.outbound.on_lost(address))
        self.outbound = Outbound(send, local, streams=self.streams, stream_local=stream_local)
        self.core.on_response = self.outbound.on_response
        if self.keeper is not None:
            self.keeper.outbound = self.outbound
        publisher = self.service.publisher
        if reginfo.publish_reginfo and self.proxy_hop is None:
            log.warning("publish_reginfo is on but [reginfo] outbound_proxy is not set: "
                        "nothing is published")
        elif reginfo.publish_reginfo and publisher is not None:
            store = PublicationsInStore(publisher.view, publisher.node, self._in_store,
                                        self.service.clock.now)
            self.publisher = PublisherClient(store, self.outbound, proxy=reginfo.outbound_proxy,
                                             proxy_hop=self.proxy_hop,
                                             clock=self.service.clock.now)

    def _request_on_link(self, request, peer, local, send) -> None:
        """A request on a connection we opened (a notifier reusing it): served like any."""
        self.core.receive_message(request, Arrival(peer, "tcp", local), send, reliable=True)

    async def _keep_subscriptions(self) -> None:
        """Run the keeper while this node holds the store's keeper lock (hot standby else)."""
        lock = store_lock(StoreUrl.parse(self.service.settings.store.url), KEEPER)
        loop = asyncio.get_running_loop()
        running: asyncio.Task | None = None
        try:
            while True:
                check = lock.held if running is not None else lock.try_acquire
                held = await loop.run_in_executor(None, check)
                if held and running is None:
                    log.info("keeping the standing subscriptions on this node")
                    running = loop.create_task(self.keeper.run(), name="keeper")
                elif not held and running is not None:
                    log.warning("lost the subscription keeper lock: standing by")
                    running.cancel()
                    running = None
                await asyncio.sleep(LEAD_INTERVAL)
        finally:
            if running is not None:
                running.cancel()
            await loop.run_in_executor(None, lock.release)

    async def _standing_subscriptions(self) -> None:
        """The `[[subscribe]]` entries, recorded as requests (a no-op when unchanged)."""
        for entry in self.service.settings.subscribe:
            await self.executor.submit(RequestSubscription(entry.uri, entry.expires, "config"))

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopped.set)

    async def run_until_stopped(self) -> None:
        await self.stopped.wait()
        await self.stop()

    async def stop(self) -> None:
        log.info("stopping: draining in-flight requests")
        udp = [closer for closer in self.closers if hasattr(closer, "sendto")]
        for closer in self.closers:
            if closer not in udp:
                closer.close()  # no new TCP connections
        await self.core.drain()  # from here on a request gets 503; the UDP sockets stay
        # open until the last PUBLISH and SUBSCRIBE had their answers, which arrive there
        await self.tcp.close()
        if self.keeper is not None:
            for task in self.tasks:
                if task.get_name() == "subscription-keeper":
                    task.cancel()
            await self.keeper.settle(SETTLE_TIMEOUT)
        await self.executor.stop()
        if self.publisher is not None:
            await self._in_store(self.service.catch_up_publisher)
            await self.publisher.settle(SETTLE_TIMEOUT)
        if self.streams is not None:
            await self.streams.close()
        for closer in udp:
            closer.close()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self._in_store(self.service.catch_up)
        self.executor.store_thread.shutdown(wait=True)
        log.info("stopped")

    async def _in_store(self, job, *args):
        return await asyncio.get_running_loop().run_in_executor(self.executor.store_thread, job, *args)

    async def _project(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            try:
                await self._in_store(self.service.catch_up)
            except Exception as error:
                _report("usrloc projection", error)
            if self.publisher is not None:
                try:
                    if await self._in_store(self.service.catch_up_publisher):
                        self.publisher.wake(documents=True)
                except Exception as error:
                    _report("publisher projection", error)
            await asyncio.sleep(0.05)

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_INTERVAL)
            try:
                await self._in_store(self.service.catch_up)
                now = self.service.clock.now()
                due = await self._in_store(self.service.view.due_aor_ids, now)
                if due:
                    count = await self.executor.submit(ExpireDue(tuple(UUID(d) for d in due)))
                    log.info("expired %d binding(s)", count)
            except Exception as error:
                _report("sweeper", error)

    async def _timers(self) -> None:
        while True:
            await asyncio.sleep(TIMER_INTERVAL)
            self.core.expire_transactions()


def _report(job: str, error: Exception) -> None:
    """A background job failed and will run again: one line when the store is away (the
    executor reports the outage), the traceback when it is anything else."""
    if isinstance(error, (StoreUnavailable, *STORE_DOWN)):
        log.warning("%s waits for the event store: %s", job, error)
    else:
        log.error("%s failed; retrying", job, exc_info=error)


def _proxy_hop(proxy: str | None, listen) -> Hop | None:
    """The outbound proxy's next hop; a TCP one needs a TCP listener for our Via."""
    if proxy is None:
        return None
    try:
        hop = next_hop(proxy)
    except ValueError as error:
        raise SettingsError(f"[reginfo] outbound_proxy: {error}") from None
    if not (listen.tcp if hop.transport == "tcp" else listen.udp):
        raise SettingsError(f"[reginfo] outbound_proxy {proxy} is reached over "
                            f"{hop.transport.upper()}: [listen] {hop.transport} needs an "
                            "address to send from and to take the answers")
    return hop


def _reachable_host(host: str, toward: tuple[str, int] | None) -> str:
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


async def serve(service: Service) -> None:
    gateway = Gateway(service)
    await gateway.start()
    gateway.install_signal_handlers()
    await gateway.run_until_stopped()
