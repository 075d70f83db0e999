"""The composition root: settings in, a wired Service (the store side) and Gateway (the
network side) out, every object built once, in dependency order.

Opening a service creates the tables it needs (once per store, see infrastructure.schema)
and catches every projection up, so any command, run after a crash between an event
commit and a view update, first repairs the view. `build_gateway` wires `serve` from the
bottom up: the sockets (bound later, when the gateway starts), the outbound client
transactions over them, the PUBLISH client, the subscription keeper and the notifier over
those, the request handler over the executor, and the SIP core on top, which every socket delivers
to once started.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from eventsourcing.persistence import PersistenceError

import time

from infrastructure.aggregate_cache import AggregateCache
from infrastructure.application import Registrations
from infrastructure.clock import Clock, SystemClock
from infrastructure.commands import Command, ExpireDue
from infrastructure.executor import GroupCommitExecutor
from infrastructure.applied_once import AppliedOnce
from infrastructure.authentication import LocalNonces, digest_guard, new_secret
from infrastructure.credentials import open_credentials
from infrastructure.gateway_policy import gateway_policy, source_limits
from infrastructure.gateway_port import ExecutorPort
from infrastructure.horizon import HorizonTable
from infrastructure.outbound_stores import PublicationsInStore, SubscriptionsInStore
from infrastructure.retention import PruneReport, Retention
from infrastructure.schema import ensure_schema
from infrastructure.readiness import ViewLag, not_ready
from infrastructure.sqlite_durability import set_synchronous
from infrastructure.serve import Gateway
from infrastructure.settings import Settings, SettingsError
from infrastructure.store import StoreError, StoreUrl, probe
from infrastructure.store_locks import PRUNE, REBUILD, store_lock
from infrastructure.udp_workers import UdpWorkers
from infrastructure.watcher_ledger import WatchersInStore, WatchesOnExecutor
from domain.aor import normalize_aor
from projections import LocationView, UsrlocProjection, catch_up, position, rebuild_usrloc
from projections.catch_up import apply_committed
from projections.notifier import AorPictures, watched_history
from projections.notifier.feed import NotifierFeed
from projections.publisher import Composer, PublisherProjection, PublisherView, stored_history
from projections.subscriptions import SubscriptionsProjection, SubscriptionsView
from projections.watchers import WatchersProjection, WatchersView
from sip_gateway.client.outbound import Hop, Outbound, next_hop
from sip_gateway.client.publisher_client import PublisherClient
from sip_gateway.client.subscription_keeper import SubscriptionKeeper
from sip_gateway.client.notifier import Notifier
from sip_gateway.client.watcher_notifier import WatcherNotifier
from sip_gateway.reginfo import build_reginfo
from sip_gateway.server.core import SipCore
from sip_gateway.server.handlers import ClaimingApplier, RequestHandler
from sip_gateway.server.ports import RegistrationPort
from sip_gateway.sip import ServerTransactionLayer
from sip_gateway.transport import TcpLimits, Transports

log = logging.getLogger("pua_reginfo.serve")


SERVE_PRUNE_PACE = 1.0  # serve's own prune rests as long as it works: half a core at most


@contextmanager
def collection_paused() -> Iterator[None]:
    """No cyclic garbage collection meanwhile: a rebuild makes no cycles, but holds up to
    100,000 folded bindings that every collection would walk again (measured: 40 % of a
    rebuild's time went to collections triggered while its rows were fetched)."""
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


@dataclass
class Service:
    settings: Settings
    app: Registrations
    usrloc: UsrlocProjection
    publisher: PublisherProjection
    subscriptions: SubscriptionsProjection
    horizon: HorizonTable
    watchers: WatchersProjection
    clock: Clock = field(default_factory=SystemClock)

    @property
    def view(self) -> LocationView:
        return self.usrloc.view

    def run(self, command: Command) -> Any:
        """Decide and store one command now, then bring the usrloc view up to date."""
        result = self.app.run(command, self.clock.now())
        self.catch_up()
        return result

    def catch_up(self, progress: Callable[[int], None] | None = None) -> int:
        return catch_up(self.app, self.usrloc, progress=progress)

    def project(self, recordings: Sequence[Any], publishing: bool) -> int:
        """Bring the usrloc view (and, when `publishing`, this node's outbox) up to date
        with what this process just committed: applied as committed when nothing else
        came in between, read from the store otherwise. Returns the documents composed."""
        if not recordings:
            return 0
        committed = [(r.notification.id, r.domain_event) for r in recordings]
        apply_committed(self.app, self.usrloc, committed)
        return self.publisher.apply_committed(self.app, committed) if publishing else 0

    def view_position(self) -> tuple[int, int]:
        """(the store's head, the usrloc view's position): notification ids."""
        app = self.app
        return app.recorder.max_notification_id() or 0, self.view.max_tracking_id(app.name) or 0

    def catch_up_subscriptions(self) -> int:
        """Bring the view of the resource subscriptions the keeper keeps up to date."""
        return catch_up(self.app, self.subscriptions)

    def catch_up_watchers(self) -> int:
        """Bring the view of the watchers this service serves up to date."""
        return catch_up(self.app, self.watchers)

    def catch_up_publisher(self) -> int:
        """Compose the documents of this node's local changes into the PUBLISH outbox."""
        return self.publisher.catch_up(self.app)

    def rebuild(self, progress: Callable[[int], None] | None = None) -> int:
        """Build the usrloc view again from the whole event store, beside the live one,
        and swap it in; safe while any number of nodes keep the live view moving."""
        store = StoreUrl.parse(self.settings.store.url)
        lock, pruning = store_lock(store, REBUILD), store_lock(store, PRUNE)
        if not lock.try_acquire():
            raise StoreError("another rebuild of the usrloc view is running on this store")
        try:
            if not pruning.try_acquire():
                raise StoreError("a prune is running on this store; rebuild when it ends")
            try:
                with collection_paused():
                    return rebuild_usrloc(self.app, self.view, progress)
            finally:
                pruning.release()
        finally:
            lock.release()

    def prune(self, before: float, should_stop: Callable[[], bool] = lambda: False,
              busy_ok: bool = False, pace: float = 0.0) -> PruneReport | None:
        """Delete the AoR histories before `before` (Unix seconds; see
        infrastructure/retention.py). When another process prunes or rebuilds the store:
        None if `busy_ok` (serve's periodic prune), else StoreError."""
        lock = store_lock(StoreUrl.parse(self.settings.store.url), PRUNE)
        if not lock.try_acquire():
            if busy_ok:
                return None
            raise StoreError("a prune or a rebuild is running on this store; "
                             "prune when it ends")
        try:
            retention = Retention(self.app, self.horizon, self.publisher.view)
            return retention.prune(before, position(self.app, self.usrloc), self.clock.now(),
                                   should_stop, pace)
        finally:
            lock.release()

    def retain(self, should_stop: Callable[[], bool] = lambda: False) -> PruneReport | None:
        """`[store] retain_days`: prune the history older than that many days, unless
        another process is pruning or rebuilding the store (None then)."""
        days = self.settings.store.retain_days
        if not days:
            return None
        return self.prune(self.clock.now() - days * 86400, should_stop, busy_ok=True,
                          pace=SERVE_PRUNE_PACE)

    def expire_due(self) -> int:
        """Record `expired` for every binding whose lifetime has ended."""
        now = self.clock.now()
        self.catch_up()
        due = tuple(UUID(c) for c in self.view.due_aor_ids(now))
        total = self.app.run(ExpireDue(due), now)
        self.catch_up()
        return total

    def close(self) -> None:
        self.app.close()


def open_service(settings: Settings, clock: Clock | None = None, catch_up_views: bool = True,
                 must_exist: bool = False) -> Service:
    """`must_exist`: refuse a SQLite store that is not there yet (commands that only read)."""
    store = StoreUrl.parse(settings.store.url)
    probe(store, must_exist)
    try:
        app = Registrations({**store.env, "CREATE_TABLE": "false"}, settings.aor_policy,
                            settings.node.id)
        if store.kind == "sqlite":
            set_synchronous(app.factory.datastore, settings.store.sqlite_synchronous)
        view = LocationView(app.factory.datastore)
        outbox = PublisherView(app.factory.datastore)
        kept = SubscriptionsView(app.factory.datastore)
        served = WatchersView(app.factory.datastore)
        horizon = HorizonTable(app.factory.datastore)
        recorders = [app.recorder, *([app.snapshots.recorder] if app.snapshots else []),
                     view, outbox, kept, served, horizon]
        ensure_schema(store, app.factory.datastore, recorders)
        compat = settings.reginfo.kamailio_compat
        composer = Composer(settings.reginfo.default_domain, stored_history(app),
                            partial(build_reginfo, kamailio_attributes=compat),
                            kamailio_compat=compat)
        publisher = PublisherProjection(outbox, settings.node.id, app.name, composer)
        def load(aggregate_id, version):
            return app.repository.get(aggregate_id, version=version)

        subscriptions = SubscriptionsProjection(kept, load)
        service = Service(settings, app, UsrlocProjection(view), publisher, subscriptions,
                          horizon, WatchersProjection(served, load), clock or SystemClock())
        if catch_up_views:
            service.catch_up()
    except PersistenceError as error:
        raise StoreError(f"cannot open store {store.display}: {_reason(error)}") from None
    return service


def build_gateway(service: Service) -> Gateway:
    """Everything `serve` runs, wired from the sockets up; nothing is bound or started."""
    settings, clock = service.settings, service.clock.now
    reginfo, listen = settings.reginfo, settings.listen
    credentials = open_credentials(settings)  # first: unusable ones stop serve here
    hop = proxy_hop(reginfo.outbound_proxy, listen)
    cache = AggregateCache(settings.store.cache_size) if settings.store.cache_size else None
    executor = GroupCommitExecutor(service.app, service.clock, cache=cache,
                                   store_timeout=settings.store.timeout,
                                   max_pending=settings.store.max_pending)
    transports = Transports(listen.udp, listen.tcp,
                            TcpLimits(idle_timeout=listen.tcp_idle_timeout,
                                      header_timeout=listen.tcp_header_timeout,
                                      max_connections=listen.tcp_max_connections),
                            toward=hop.address if hop is not None else None,
                            udp_buffer=listen.udp_receive_buffer,
                            udp_workers=listen.udp_workers if listen.udp else 0)
    outbound = Outbound(transports)

    async def in_store(job, *args):
        return await asyncio.get_running_loop().run_in_executor(executor.store_thread, job, *args)

    publisher = None
    if reginfo.publish_reginfo and hop is None:
        log.warning("publish_reginfo is on but [reginfo] outbound_proxy is not set: "
                    "nothing is published")
    elif reginfo.publish_reginfo:
        outbox = PublicationsInStore(service.publisher.view, service.publisher.node, in_store,
                                     clock)
        publisher = PublisherClient(outbox, outbound, proxy=reginfo.outbound_proxy,
                                    proxy_hop=hop, clock=clock)
    keeper = None
    if reginfo.server_address:
        keeper = SubscriptionKeeper(SubscriptionsInStore(service, executor.submit, in_store),
                                    outbound, subscriber=reginfo.server_address,
                                    proxy=reginfo.outbound_proxy, proxy_hop=hop, clock=clock)
    notifier = feed = watches = None
    if settings.notifier.enabled:
        feed = NotifierFeed(service.app, AorPictures(watched_history(service.app)))
        policy_of_aors = settings.aor_policy
        notifier = Notifier(WatchersInStore(service, feed, executor.submit, in_store),
                            WatcherNotifier(outbound),
                            lambda aor: str(normalize_aor(aor, policy_of_aors).id),
                            partial(build_reginfo, kamailio_attributes=reginfo.kamailio_compat),
                            clock)
        watches = WatchesOnExecutor(executor, notifier)
    policy = gateway_policy(settings)
    port: RegistrationPort = ExecutorPort(
        executor, policy.notify_mode, max_bindings=settings.registrar.max_contacts or None,
        default_expires=settings.registrar.default_expires,
        subscribe_on_register=reginfo.subscribe_on_register and keeper is not None)
    workers = guard = nonces = None
    if credentials is not None:
        secret = new_secret()
        guard = digest_guard(settings, secret, credentials)
        nonces = LocalNonces(settings.auth.nonce_lifetime)
    if transports.udp_workers:
        port = AppliedOnce(port)  # a retransmission may reach another process
    notifies = ClaimingApplier(port, keeper)
    if transports.udp_workers:
        workers = UdpWorkers(transports.udp_workers, settings, port, notifies, nonces,
                             guard.mint.secret if guard is not None else None)
    lag, max_lag = ViewLag(), settings.metrics.ready_max_lag
    handler = RequestHandler(port, policy, clock, keeper, notifies, watches, not_ready=lambda:
                             not_ready(False, executor.unavailable,
                                       lag.seconds(time.monotonic()), max_lag),
                             guard=guard, nonces=nonces)
    core = SipCore(handler, ServerTransactionLayer(), time.monotonic, client=outbound,
                   tallies=handler.tallies, limits=source_limits(settings))
    return Gateway(service, executor, transports, core, outbound, publisher, keeper, workers,
                   notifier, feed, lag=lag, credentials=credentials)


def proxy_hop(proxy: str | None, listen) -> Hop | None:
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


def _reason(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
