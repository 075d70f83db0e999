"""`serve`: the lifecycle of a gateway built by the composition root (bootstrap).

Start: the executor, the publisher's first catch-up, the transports (every socket then
delivers to the SIP core), the UDP workers if `[listen] udp_workers` asks for them
(infrastructure/udp_workers.py; serve waits until they serve), and the background jobs: after every commit the usrloc and
publisher projections catch up (on the store thread, at most every 5 ms); the sweeper
records `expired` for each binding when its lifetime ends (infrastructure/sweeper.py);
every second the view reads what other processes committed; server transactions expire on their
timers; the PUBLISH client and, while this node holds the store's keeper lock, the
subscription keeper and the notifier run (the notifier's feed hands each commit's changes
of watched AoRs to it, and the store watch what other processes committed); with `[store]
retain_days`, a prune of the history older than that runs RETENTION_DELAY after the start
and every RETENTION_INTERVAL after, on a thread of its own (the store thread keeps
committing meanwhile), on one node at a time (the store's prune lock: a node that finds
it taken skips its turn). Stop (SIGTERM/SIGINT): no new TCP connections, a prune running
stops after its batch, in-flight requests finish (503 from then on), every watcher gets
its final NOTIFY (terminated;reason=deactivated), the UDP workers finish theirs and exit,
TCP peers are closed, SUBSCRIBEs in flight settle, the executor and the PUBLISH outbox
drain (the UDP socket stays open for their answers), then every socket closes and the
view catches up a last time.
Once started, what startup built (modules, settings, parsers, the store's connections) is
frozen out of the garbage collector's sight: a full collection then walks only what serving
creates, which shortened the longest collections from 160-190 ms to 90 ms at 500
REGISTER/s with publishing, and the 99th percentile REGISTER-to-PUBLISH lag with them.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from infrastructure import systemd_notify
from infrastructure.commands import RequestSubscription
from infrastructure.executor import STORE_DOWN, GroupCommitExecutor, StoreUnavailable
from infrastructure.metrics import CONTENT_TYPE, exposition, store_figures
from infrastructure.operator_endpoint import TEXT, Answer, OperatorEndpoint
from infrastructure.readiness import ViewLag, not_ready
from infrastructure.settings import SettingsError
from infrastructure.store import StoreUrl
from infrastructure.store_locks import KEEPER, store_lock
from infrastructure.credentials import Credentials
from infrastructure.sweeper import Sweeper
from infrastructure.udp_workers import UdpWorkers
from projections.notifier.feed import NotifierFeed
from sip_gateway.client.notifier import Notifier
from sip_gateway.client.outbound import Outbound
from sip_gateway.client.publisher_client import PublisherClient
from sip_gateway.client.subscription_keeper import SubscriptionKeeper
from sip_gateway.server.core import SipCore
from sip_gateway.transport import Arrival, Transports
from sip_gateway.transport.listeners import parse_listen

if TYPE_CHECKING:
    from infrastructure.bootstrap import Service

log = logging.getLogger("pua_reginfo.serve")
STORE_WATCH_INTERVAL = 1.0  # seconds between two reads of what other processes committed
TIMER_INTERVAL = 0.5
PROJECTION_PAUSE = 0.005  # seconds between two catch-ups of the projections
LEAD_INTERVAL = 2.0  # seconds between checks of the subscription keeper lock
SETTLE_TIMEOUT = 5.0  # seconds to drain the PUBLISH outbox and the SUBSCRIBEs in flight at shutdown
FIGURES_TIMEOUT = 2.0  # seconds a scrape waits for the store's figures
RETENTION_DELAY = 60.0  # seconds from the start to the first prune of `retain_days`
RETENTION_INTERVAL = 3600.0  # seconds between two prunes
WORKER_ARRIVAL = Arrival(("", 0), "udp", ("", 0))  # responses: their source is not used


@dataclass
class Gateway:
    """A running `serve`, as the composition root wired it: start, then
    `run_until_stopped()`."""

    service: Service
    executor: GroupCommitExecutor
    transports: Transports
    core: SipCore
    outbound: Outbound
    publisher: PublisherClient | None = None
    keeper: SubscriptionKeeper | None = None
    workers: UdpWorkers | None = None
    notifier: Notifier | None = None
    feed: NotifierFeed | None = None
    lag: ViewLag = field(default_factory=ViewLag)  # of the usrloc view, for readiness
    endpoint: OperatorEndpoint | None = None  # /metrics and /health, with [metrics] listen
    credentials: Credentials | None = None  # [auth]: kept fresh while serving
    leading: bool = False  # this node holds the keeper lock
    monotonic: Callable[[], float] = time.monotonic
    loop: asyncio.AbstractEventLoop | None = None  # serve's, once started
    stopped: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task] = field(default_factory=list)
    _dirty: asyncio.Event = field(default_factory=asyncio.Event)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _serving: bool = False  # start() has finished

    @property
    def store_thread(self) -> ThreadPoolExecutor:
        return self.executor.store_thread

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        await self._open_endpoint()  # first: a port taken stops serve before anything runs
        self.executor.start()
        if self.publisher is not None:
            # Before any request: a first start publishes from here on, not the history.
            await self._in_store(self.service.catch_up_publisher)
        self.executor.on_commit(self._dirty.set)
        await self.transports.start(self.core)
        if self.workers is not None:
            await self.workers.start(self.transports.udp_addresses(), self._worker_response)
        sweeper = Sweeper(self.service, self.executor.submit, self._in_store, _report)
        jobs = [("projector", self._project), ("store-watch", self._watch_store),
                ("sweeper", sweeper.run), ("timers", self._timers),
                ("client-timers", self.outbound.run_timers)]
        if self.publisher is not None:
            jobs.append(("publisher", self.publisher.run))
        if self.keeper is not None:
            await self._standing_subscriptions()
        if self.keeper is not None or self.notifier is not None:
            jobs.append(("leader", self._lead))
        if self.service.settings.store.retain_days:
            jobs.append(("retention", self._retain))
        if self.credentials is not None:
            jobs.append(("credentials", self.credentials.keep_fresh))
        loop = asyncio.get_running_loop()
        for name, job in jobs:
            self.tasks.append(loop.create_task(job(), name=name))
        self._serving = True
        gc.collect()
        gc.freeze()
        log.info("serving (node %s, store %s)", self.service.settings.node.id,
                 self.service.settings.store.url)
        systemd_notify.ready()

    async def run(self) -> None:
        """Start, serve until SIGTERM or SIGINT, stop."""
        await self.start()
        self.install_signal_handlers()
        await self.run_until_stopped()

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopped.set)

    async def run_until_stopped(self) -> None:
        await self.stopped.wait()
        await self.stop()

    async def stop(self) -> None:
        log.info("stopping: draining in-flight requests")
        systemd_notify.stopping()
        self._stopping.set()  # a prune running stops after its batch
        self.transports.stop_listening()  # no new TCP connections
        await self.core.drain()  # from here on a request gets 503; the UDP socket stays
        # open until the last PUBLISH, SUBSCRIBE and NOTIFY had their answers
        if self.notifier is not None and self.notifier.running:
            await self.notifier.stop(SETTLE_TIMEOUT)  # watchers: terminated;reason=deactivated
        if self.workers is not None:
            await self.workers.stop()  # they answer what they have in flight, and exit
        await self.transports.close_connections()
        for task in self.tasks:
            if task.get_name() == "leader":
                task.cancel()
        if self.keeper is not None:
            await self.keeper.settle(SETTLE_TIMEOUT)
        await self.executor.stop()
        if self.publisher is not None:
            await self._in_store(self.service.catch_up_publisher)
            await self.publisher.settle(SETTLE_TIMEOUT)
        await self.transports.close_links()
        self.transports.close_datagrams()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self._in_store(self.service.catch_up)
        self.store_thread.shutdown(wait=True)
        if self.endpoint is not None:
            await self.endpoint.stop()
        log.info("stopped")

    def _worker_response(self, data: bytes) -> None:
        """A response to one of our requests that the kernel gave a UDP worker."""
        self.core.receive_datagram(data, WORKER_ARRIVAL, self.transports.send_datagram)

    # Background jobs -------------------------------------------------------------------

    async def _in_store(self, job, *args):
        return await asyncio.get_running_loop().run_in_executor(self.store_thread, job, *args)

    async def _project(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            try:
                if await self._in_store(self._project_committed):
                    self.publisher.wake(documents=True)
            except Exception as error:
                _report("projections", error)
            await asyncio.sleep(PROJECTION_PAUSE)

    def _project_committed(self) -> int:
        """On the store thread: the projections follow what the executor committed, and
        the notifier's feed hands the changes of watched AoRs on; how many documents were
        composed."""
        recordings = self.executor.take_recordings()
        composed = self.service.project(recordings, self.publisher is not None)
        if self.feed is not None:
            self._hand_on(self.feed.follow([(r.notification.id, r.domain_event)
                                            for r in recordings]))
        return composed

    def _follow_others(self) -> None:
        """On the store thread: what other processes committed, to the notifier."""
        if self.feed is not None:
            self._hand_on(self.feed.catch_up())

    def _hand_on(self, changes) -> None:
        if changes:
            self.loop.call_soon_threadsafe(self.notifier.changed, changes)

    async def _watch_store(self) -> None:
        """Every second: the view follows what other processes committed (and the
        notifier's feed with it), and the view's lag is measured."""
        while True:
            await asyncio.sleep(STORE_WATCH_INTERVAL)
            try:
                try:
                    await self._read_store()
                finally:
                    await self._measure_lag()
                await self._in_store(self._follow_others)
            except Exception as error:
                _report("store watch", error)

    async def _read_store(self) -> None:
        """The view follows what other processes committed. A store that cannot be read
        is reported to the executor (so that a node without traffic stops saying it is
        ready), and one read again after an outage too."""
        try:
            await self._in_store(self.service.catch_up)
        except STORE_DOWN as error:
            self.executor.store_down(str(error))
            raise
        self.executor.store_back()

    async def _measure_lag(self) -> None:
        """How far the usrloc view is behind the store (readiness); nothing to say while
        the store cannot be read (that is reported on its own)."""
        try:
            head, position = await self._in_store(self.service.view_position)
        except STORE_DOWN:
            return
        self.lag.observe(position, head, self.monotonic())

    # The operator's endpoint ---------------------------------------------------------

    async def _open_endpoint(self) -> None:
        listen = self.service.settings.metrics.listen
        if listen is None:
            return
        host, port = parse_listen(listen)
        self.endpoint = OperatorEndpoint(host, port, {
            "/metrics": self._metrics, "/health/live": self._live, "/health/ready": self._ready})
        try:
            await self.endpoint.start()
        except OSError as error:
            raise SettingsError(f"[metrics] listen {listen}: cannot listen: "
                                f"{error.strerror or error}") from None
        log.info("metrics and health on http://%s/ (port %d)", listen, self.endpoint.port)

    def not_ready(self) -> str | None:
        if not self._serving:
            return "starting"
        return not_ready(self._stopping.is_set(), self.executor.unavailable,
                         self.lag.seconds(self.monotonic()),
                         self.service.settings.metrics.ready_max_lag)

    async def _live(self) -> Answer:
        return 200, TEXT, b"live\n"

    async def _ready(self) -> Answer:
        reason = self.not_ready()
        if reason is None:
            return 200, TEXT, b"ready\n"
        return 503, TEXT, f"not ready: {reason}\n".encode()

    async def _metrics(self) -> Answer:
        """Every family; those read from the store only while it answers in time (the
        in-memory ones are worth most while it does not)."""
        figures = None
        if self.executor.unavailable is None:
            try:
                figures = await asyncio.wait_for(self._in_store(
                    store_figures, self.service, self.publisher is not None), FIGURES_TIMEOUT)
            except Exception as error:
                log.debug("metrics without the store's figures: %s", error)
        return 200, CONTENT_TYPE, exposition(self, figures)

    async def _timers(self) -> None:
        while True:
            await asyncio.sleep(TIMER_INTERVAL)
            self.core.expire_transactions()

    async def _lead(self) -> None:
        """Run the subscription keeper and the notifier while this node holds the store's
        keeper lock (hot standby else): one node keeps the standing subscriptions and
        notifies the watchers."""
        lock = store_lock(StoreUrl.parse(self.service.settings.store.url), KEEPER)
        loop = asyncio.get_running_loop()
        running: list[asyncio.Task] = []
        try:
            while True:
                check = lock.held if running else lock.try_acquire
                held = await loop.run_in_executor(None, check)
                self.leading = held
                if held and not running:
                    log.info("leading on this node: standing subscriptions and watchers")
                    if self.keeper is not None:
                        running.append(loop.create_task(self.keeper.run(), name="keeper"))
                    if self.notifier is not None:
                        running.append(loop.create_task(self.notifier.run(), name="notifier"))
                elif not held and running:
                    log.warning("lost the keeper lock: standing by")
                    for task in running:
                        task.cancel()
                    await asyncio.gather(*running, return_exceptions=True)
                    running = []
                await asyncio.sleep(LEAD_INTERVAL)
        finally:
            self.leading = False
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            await loop.run_in_executor(None, lock.release)

    async def _retain(self) -> None:
        """Prune the history older than `[store] retain_days`, now and then."""
        loop = asyncio.get_running_loop()
        await asyncio.sleep(RETENTION_DELAY)
        while True:
            try:
                report = await loop.run_in_executor(None, self.service.retain,
                                                    self._stopping.is_set)
                if report is None:
                    log.info("retention: another process is pruning or rebuilding the store")
                else:
                    log.info("retention: %s", report.summary())
            except Exception as error:
                _report("retention", error)
            await asyncio.sleep(RETENTION_INTERVAL)

    async def _standing_subscriptions(self) -> None:
        """The `[[subscribe]]` entries, recorded as requests (a no-op when unchanged)."""
        for entry in self.service.settings.subscribe:
            await self.executor.submit(RequestSubscription(entry.uri, entry.expires, "config"))


def _report(job: str, error: Exception) -> None:
    """A background job failed and will run again: one line when the store is away (the
    executor reports the outage), the traceback when it is anything else."""
    if isinstance(error, (StoreUnavailable, *STORE_DOWN)):
        log.warning("%s waits for the event store: %s", job, error)
    else:
        log.error("%s failed; retrying", job, exc_info=error)
