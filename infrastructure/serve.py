"""`serve`: the gateway, the group-commit executor and the projections as one service.

Wiring: transports -> SipCore -> RequestHandler -> ExecutorPort -> GroupCommitExecutor ->
store. After every commit the usrloc projection catches up (on the store thread, at most
every `projection_interval`); the sweeper records `expired` for lapsed bindings every
second; server transactions are expired on their timers. SIGTERM/SIGINT stop the
listeners, let in-flight requests finish, flush the executor and the view, then exit.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from uuid import UUID

from domain import Binding, RegisterRequest
from domain.notify_rfc import NotifyResult
from domain.reginfo import ReginfoDocument
from infrastructure.bootstrap import Service
from infrastructure.commands import ApplyNotify, ExpireDue, NotifyContext, Register
from infrastructure.executor import GroupCommitExecutor
from sip_gateway.handlers import GatewayPolicy, RequestHandler
from sip_gateway.peers import TrustedPeers
from sip_gateway.registrar import RegistrarPolicy
from sip_gateway.server import SipCore
from sip_gateway.sip import ServerTransactionLayer
from sip_gateway.transports import TcpLimits, start_listeners

log = logging.getLogger("pua_reginfo.serve")
SWEEP_INTERVAL = 1.0
TIMER_INTERVAL = 0.5


class ExecutorPort:
    """The application as the gateway sees it: every change through the group commit."""

    def __init__(self, service: Service, executor: GroupCommitExecutor):
        self.service, self.executor = service, executor

    async def register(self, aor: str, request: RegisterRequest | None) -> list[Binding]:
        limit = self.service.settings.registrar.max_contacts or None
        return await self.executor.submit(Register(aor, request, limit))

    async def notify(self, document: ReginfoDocument | None, mode: str, subscription_id: str,
                     ended_reason: str | None, require_subscription: bool) -> NotifyResult:
        context = NotifyContext(mode, subscription_id, ended_reason)
        return await self.executor.submit(ApplyNotify(document, context, require_subscription))


class Gateway:
    """A running `serve`: start it, then `run_until_stopped()`."""

    def __init__(self, service: Service):
        self.service = service
        settings = service.settings
        self.executor = GroupCommitExecutor(service.app, service.clock,
                                            default_expires=settings.registrar.default_expires)
        policy = GatewayPolicy(
            registrar=RegistrarPolicy.from_settings(settings),
            trusted=TrustedPeers(settings.security.trusted),
            notify_mode=settings.notify.mode,
            notify_reply_code=settings.notify.reply_code,
            accept_unsolicited_notify=settings.notify.accept_unsolicited_notify,
        )
        handler = RequestHandler(ExecutorPort(service, self.executor), policy, service.clock.now)
        self.core = SipCore(handler, ServerTransactionLayer(), time.monotonic)
        self.closers: list = []
        self.tasks: list[asyncio.Task] = []
        self.stopped = asyncio.Event()
        self._dirty = asyncio.Event()

    async def start(self) -> None:
        self.executor.start()
        self.executor.on_commit(self._dirty.set)
        listen = self.service.settings.listen
        limits = TcpLimits(idle_timeout=listen.tcp_idle_timeout,
                           header_timeout=listen.tcp_header_timeout,
                           max_connections=listen.tcp_max_connections)
        self.closers, self.tcp = await start_listeners(self.core, list(listen.udp),
                                                       list(listen.tcp), limits)
        loop = asyncio.get_running_loop()
        for name, job in (("projector", self._project), ("sweeper", self._sweep),
                          ("timers", self._timers)):
            self.tasks.append(loop.create_task(job(), name=name))
        log.info("serving (node %s, store %s)", self.service.settings.node.id,
                 self.service.settings.store.url)

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopped.set)

    async def run_until_stopped(self) -> None:
        await self.stopped.wait()
        await self.stop()

    async def stop(self) -> None:
        log.info("stopping: draining in-flight requests")
        for closer in self.closers:
            closer.close()
        await self.core.drain()
        for task in list(self.tcp.connections):
            task.cancel()
        await self.executor.stop()
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
            except Exception:
                log.exception("usrloc projection failed; retrying")
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
            except Exception:
                log.exception("sweeper failed; retrying")

    async def _timers(self) -> None:
        while True:
            await asyncio.sleep(TIMER_INTERVAL)
            self.core.expire_transactions()


async def serve(service: Service) -> None:
    gateway = Gateway(service)
    await gateway.start()
    gateway.install_signal_handlers()
    await gateway.run_until_stopped()
