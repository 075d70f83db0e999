"""The composition root: settings in, a wired Service out.

Opening a service creates the tables it needs and catches every projection up, so any
command, run after a crash between an event commit and a view update, first repairs the
view.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from uuid import UUID

from eventsourcing.persistence import PersistenceError

from infrastructure.application import Registrations
from infrastructure.clock import Clock, SystemClock
from infrastructure.settings import Settings
from infrastructure.store import StoreError, StoreUrl, probe
from projections import LocationView, UsrlocProjection, catch_up
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
        """Drop the usrloc view and build it again from the whole event store."""
        self.view.clear(self.app.name)
        return self.catch_up(progress)

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
        app = Registrations(store.env, settings.aor_policy, settings.node.id)
        view = LocationView(app.factory.datastore)
        view.create_table()
        outbox = PublisherView(app.factory.datastore)
        outbox.create_table()
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
