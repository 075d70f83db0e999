"""Domain events of an AddressOfRecord, named after RFC 3680 section 5.1 transitions.

Every event carries the AoR, its origin (`register`, `notify`, `expiry`, `admin`,
`import`), the node that decided it and the cause (the REGISTER's Call-ID/CSeq, the
NOTIFY's subscription and version, the timer, the admin command, or the row of another
registrar's location table it was imported from). Each class has an explicit,
stable TOPIC so that renaming Python code never orphans stored events.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar

from eventsourcing.domain import AggregateCreated, AggregateEvent, Snapshot
from eventsourcing.utils import register_topic

from domain.binding import Binding
from domain.binding_refresh import BindingRefresh, binding_after

if TYPE_CHECKING:
    from domain.address_of_record import AddressOfRecord

ORIGINS = ("register", "notify", "expiry", "admin", "import")


class RegistrationInitialized(AggregateCreated):
    """A registration record exists for the AoR (registration state `init`)."""

    TOPIC = "pua_reginfo:RegistrationInitialized"
    aor: str
    key: str
    origin: str
    node: str
    cause: str


class RegistrationEvent(AggregateEvent):
    aor: str
    origin: str
    node: str
    cause: str
    STATE: ClassVar[str] = ""

    def apply(self, aggregate: AddressOfRecord) -> None:
        aggregate.state = self.STATE


class RegistrationActivated(RegistrationEvent):
    """init -> active: the first binding became active."""

    TOPIC = "pua_reginfo:RegistrationActivated"
    STATE = "active"


class RegistrationTerminated(RegistrationEvent):
    """active -> terminated: the last binding ended."""

    TOPIC = "pua_reginfo:RegistrationTerminated"
    STATE = "terminated"


class ContactEvent(AggregateEvent):
    """A binding's transition; `binding` is the binding it leaves, or for a refresh of a
    local binding only what changed (BindingRefresh), resolved against the binding held."""

    aor: str
    binding: Binding | BindingRefresh
    origin: str
    node: str
    cause: str
    EVENT: ClassVar[str] = ""
    TERMINATES: ClassVar[bool] = False

    def apply(self, aggregate: AddressOfRecord) -> None:
        key = self.binding.key
        if self.TERMINATES:
            aggregate.bindings.pop(key, None)
        else:
            aggregate.bindings[key] = binding_after(self.binding, aggregate.bindings.get(key))


class ContactRegistered(ContactEvent):
    TOPIC = "pua_reginfo:ContactRegistered"
    EVENT = "registered"


class ContactCreated(ContactEvent):
    TOPIC = "pua_reginfo:ContactCreated"
    EVENT = "created"


class ContactRefreshed(ContactEvent):
    TOPIC = "pua_reginfo:ContactRefreshed"
    EVENT = "refreshed"


class ContactShortened(ContactEvent):
    TOPIC = "pua_reginfo:ContactShortened"
    EVENT = "shortened"


class ContactExpired(ContactEvent):
    TOPIC = "pua_reginfo:ContactExpired"
    EVENT = "expired"
    TERMINATES = True


class ContactDeactivated(ContactEvent):
    TOPIC = "pua_reginfo:ContactDeactivated"
    EVENT = "deactivated"
    TERMINATES = True


class ContactProbation(ContactEvent):
    TOPIC = "pua_reginfo:ContactProbation"
    EVENT = "probation"
    TERMINATES = True
    retry_after: int


class ContactUnregistered(ContactEvent):
    TOPIC = "pua_reginfo:ContactUnregistered"
    EVENT = "unregistered"
    TERMINATES = True


class ContactRejected(ContactEvent):
    TOPIC = "pua_reginfo:ContactRejected"
    EVENT = "rejected"
    TERMINATES = True


def replayed(aggregate: Any, events: Iterable[Any]) -> Any:
    """The aggregate (None: not yet created) after `events`, each applied in turn: what
    eventsourcing's project_aggregate does, without its runtime Protocol check of every
    event (a third of a prune's time, and of each aggregate load)."""
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


def with_bindings(events: Iterable[Any], bindings: dict[str, Binding] | None = None,
                  ) -> Iterator[tuple[Any, Binding | None]]:
    """One AoR's events in order, each with the binding it leaves or ends (contact
    events; refreshes resolved against the binding held) or None (other events);
    `bindings` are those held before the first (a prune's horizon)."""
    held = dict(bindings or {})
    for event in events:
        if not isinstance(event, ContactEvent):
            yield event, None
            continue
        key = event.binding.key
        binding = binding_after(event.binding, held.get(key))
        if event.TERMINATES:
            held.pop(key, None)
        else:
            held[key] = binding
        yield event, binding


class AddressOfRecordSnapshot(Snapshot):
    TOPIC = "pua_reginfo:AddressOfRecordSnapshot"


class AddressOfRecordHorizon(AddressOfRecordSnapshot):
    """The AoR as it stood at the version a prune kept, its older events deleted.

    `timestamp` is the time before which the AoR's history is gone; `changes` gives, for
    each binding of `state`, the contact event that last changed it (binding key ->
    [event name, origin, Unix time]), which the usrloc view and PUBLISH documents show
    but the aggregate does not keep. Loading the aggregate uses `state` only.
    """

    TOPIC = "pua_reginfo:AddressOfRecordHorizon"
    changes: dict[str, Any]


CONTACT_EVENTS: dict[str, type[ContactEvent]] = {
    cls.EVENT: cls
    for cls in (
        ContactRegistered,
        ContactCreated,
        ContactRefreshed,
        ContactShortened,
        ContactExpired,
        ContactDeactivated,
        ContactProbation,
        ContactUnregistered,
        ContactRejected,
    )
}

for _cls in (
    RegistrationInitialized,
    RegistrationActivated,
    RegistrationTerminated,
    AddressOfRecordSnapshot,
    AddressOfRecordHorizon,
    *CONTACT_EVENTS.values(),
):
    register_topic(_cls.TOPIC, _cls)
