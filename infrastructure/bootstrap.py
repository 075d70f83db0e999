"""The composition root: settings in, a wired Service out.

Opening a service creates the tables it needs (once per store, see infrastructure.schema)
and catches every projection up, so any command, run after a crash between an event
commit and a view update, first repairs the view.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from uuid import UUID

from eventsourcing.persistence import PersistenceError

from infrastructure.application import Registrations
from infrastructure.clock import Clock, SystemClock
from infrastructure.schema import ensure_schema
from infrastructure.settings import Settings
from infrastructure.store import StoreError, StoreUrl, probe
from infrastructure.store_locks import REBUILD, store_lock
from projections import LocationView, UsrlocProjection, catch_up, rebuild_usrloc
from projections.publisher import Composer, PublisherProjection, PublisherView, stored_history


@dataclass
class Service:
    settings: Settings
    app: Registrations
    usrloc: UsrlocProjection
    publisher: PublisherProjection
    clock: Clock = field(default_factory=SystemClock)

    @property
    def view(self) -> LocationView:
        return self.usrloc.view

    def catch_up(self, progress: Callable[[int], None] | None = None) -> int:
        return catch_up(self.app, self.usrloc, progress=progress)

    def catch_up_publisher(self) -> int:
        """Compose the documents of this node's local changes into the PUBLISH outbox."""
        return self.publisher.catch_up(self.app)

    def rebuild(self, progress: Callable[[int], None] | None = None) -> int:
        """Build the usrloc view again from the whole event store, beside the live one,
        and swap it in; safe while any number of nodes keep the live view moving."""
        lock = store_lock(StoreUrl.parse(self.settings.store.url), REBUILD)
        if not lock.try_acquire():
            raise StoreError("another rebuild of the usrloc view is running on this store")
        try:
            return rebuild_usrloc(self.app, self.view, progress)
        finally:
            lock.release()

    def expire_due(self) -> int:
        """Record `expired` for every binding whose lifetime has ended."""
        now = self.clock.now()
        self.catch_up()
        total = self.app.expire([UUID(c) for c in self.view.due_aor_ids(now)], now)
        self.catch_up()
        return total

    def close(self) -> None:
        self.app.close()


def open_service(settings: Settings, clock: Clock | None = None, catch_up_views: bool = True) -> Service:
    store = StoreUrl.parse(settings.store.url)
    probe(store)
    try:
        app = Registrations({**store.env, "CREATE_TABLE": "false"}, settings.aor_policy,
                            settings.node.id)
        view = LocationView(app.factory.datastore)
        outbox = PublisherView(app.factory.datastore)
        recorders = [app.recorder, *([app.snapshots.recorder] if app.snapshots else []),
                     view, outbox]
        ensure_schema(store, app.factory.datastore, recorders)
        composer = Composer(settings.reginfo.default_domain, stored_history(app),
                            kamailio_compat=settings.reginfo.kamailio_compat)
        publisher = PublisherProjection(outbox, settings.node.id, app.name, composer)
        service = Service(settings, app, UsrlocProjection(view), publisher,
                          clock or SystemClock())
        if catch_up_views:
            service.catch_up()
    except PersistenceError as error:
        raise StoreError(f"cannot open store {store.display}: {_reason(error)}") from None
    return service


def _reason(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
