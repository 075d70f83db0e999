"""Our standing subscription to one resource's reg state (RFC 6665 4.1, RFC 3680 3).

Theory of operation. An operator (CLI `subscribe`, a `[[subscribe]]` entry, or a local
REGISTER with `subscribe_on_register`) records `SubscriptionRequested`; the service's
subscription keeper then keeps a SUBSCRIBE dialog alive for it and records what a restart
needs to carry on in the same dialog: `SubscriptionEstablished` after every accepted
SUBSCRIBE (dialog identifiers, remote target, route set, CSeq, expiry), `SubscriptionFailed`
when an attempt failed or the dialog was lost (a new one follows after back-off),
`SubscriptionWithdrawn` for `unsubscribe`, and `SubscriptionClosed` when nothing more will
be sent (the notifier refused the package or the resource, or the withdrawal completed).
The reginfo versions of each dialog are kept by the `Subscription` aggregate of that
dialog (domain/subscription.py); `dialog_id` links the two.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import AggregateCreated, AggregateEvent, BaseAggregate
from eventsourcing.utils import register_topic

from domain.address_of_record import at
from domain.errors import InvalidRequest
from domain.resource_subscription_machine import (
    ACTIVE,
    CLOSED,
    REQUESTED,
    RESOURCE_SUBSCRIPTION_MACHINE,
    WAITING,
    WITHDRAWN,
    is_wanted,
)
from domain.subscription import dialog_id

__all__ = ["ACTIVE", "CLOSED", "REQUESTED", "WAITING", "WITHDRAWN", "is_wanted"]
MACHINE = RESOURCE_SUBSCRIPTION_MACHINE
REQUEST_ORIGINS = ("cli", "config", "register")


def resource_subscription_id(resource: str) -> UUID:
    return uuid5(NAMESPACE_URL, "reg-resource-subscription:" + resource)


@dataclass(frozen=True)
class DialogState:
    """What a subscriber needs to refresh its dialog after a restart (RFC 3261 12.2.1.1)."""

    call_id: str
    local_tag: str
    remote_tag: str
    remote_target: str | None
    route_set: tuple[str, ...]
    cseq: int
    expires_at: float

    @property
    def dialog_id(self) -> str:
        return dialog_id(self.call_id, self.local_tag, self.remote_tag)


class SubscriptionRequested(AggregateCreated):
    TOPIC = "pua_reginfo:SubscriptionRequested"
    resource: str
    expires: int
    origin: str
    node: str


class SubscriptionRenewed(AggregateEvent):
    """Requested again (after a withdrawal or close, or with another lifetime)."""

    TOPIC = "pua_reginfo:SubscriptionRenewed"
    expires: int
    origin: str
    node: str

    def apply(self, aggregate: ResourceSubscription) -> None:
        aggregate.expires = self.expires
        if not aggregate.wanted:
            aggregate.dialog, aggregate.failures, aggregate.last_error = None, 0, None
        aggregate.state = MACHINE.next_state(aggregate.state, "renewed")


class SubscriptionEstablished(AggregateEvent):
    """A SUBSCRIBE was accepted: the dialog as it now stands."""

    TOPIC = "pua_reginfo:SubscriptionEstablished"
    call_id: str
    local_tag: str
    remote_tag: str
    remote_target: str | None
    route_set: list[str]
    cseq: int
    expires_at: float
    node: str

    def apply(self, aggregate: ResourceSubscription) -> None:
        aggregate.state = MACHINE.next_state(aggregate.state, "established")
        aggregate.failures, aggregate.last_error = 0, None
        aggregate.dialog = DialogState(self.call_id, self.local_tag, self.remote_tag,
                                       self.remote_target, tuple(self.route_set), self.cseq,
                                       self.expires_at)


class SubscriptionFailed(AggregateEvent):
    """An attempt failed or the dialog was lost; another attempt follows."""

    TOPIC = "pua_reginfo:SubscriptionFailed"
    reason: str
    dialog_lost: bool
    node: str

    def apply(self, aggregate: ResourceSubscription) -> None:
        aggregate.failures += 1
        aggregate.last_error = self.reason
        if self.dialog_lost:
            aggregate.dialog = None
        event = "lost" if aggregate.dialog is None else "failed"
        aggregate.state = MACHINE.next_state(aggregate.state, event)


class SubscriptionWithdrawn(AggregateEvent):
    TOPIC = "pua_reginfo:SubscriptionWithdrawn"
    origin: str
    node: str

    def apply(self, aggregate: ResourceSubscription) -> None:
        aggregate.state = MACHINE.next_state(aggregate.state, "withdrawn")


class SubscriptionClosed(AggregateEvent):
    """Nothing more will be sent for this request."""

    TOPIC = "pua_reginfo:SubscriptionClosed"
    reason: str
    node: str

    def apply(self, aggregate: ResourceSubscription) -> None:
        aggregate.state, aggregate.dialog = MACHINE.next_state(aggregate.state, "closed"), None
        aggregate.last_error = self.reason


RESOURCE_SUBSCRIPTION_TOPICS = tuple(cls.TOPIC for cls in (
    SubscriptionRequested, SubscriptionRenewed, SubscriptionEstablished, SubscriptionFailed,
    SubscriptionWithdrawn, SubscriptionClosed))
REQUEST_TOPICS = (SubscriptionRequested.TOPIC, SubscriptionRenewed.TOPIC,
                  SubscriptionWithdrawn.TOPIC)

for _cls in (SubscriptionRequested, SubscriptionRenewed, SubscriptionEstablished,
             SubscriptionFailed, SubscriptionWithdrawn, SubscriptionClosed):
    register_topic(_cls.TOPIC, _cls)


class ResourceSubscription(BaseAggregate[UUID]):
    """One resource we keep subscribed to (RFC 6665 4.1): wish, dialog and failures."""

    TOPIC = "pua_reginfo:ResourceSubscription"

    def __init__(self, resource: str, expires: int, origin: str, node: str):
        self.resource = resource
        self.expires = expires
        self.state = REQUESTED
        self.dialog: DialogState | None = None
        self.failures = 0
        self.last_error: str | None = None

    @property
    def wanted(self) -> bool:
        """The keeper should keep a dialog for it."""
        return is_wanted(self.state)

    @classmethod
    def request(cls, resource: str, expires: int, origin: str, node: str,
                now: float) -> ResourceSubscription:
        _check_request(expires, origin)
        return cls._create(SubscriptionRequested, id=resource_subscription_id(resource),
                           resource=resource, expires=expires, origin=origin, node=node,
                           timestamp=at(now))

    def renew(self, expires: int, origin: str, node: str, now: float) -> bool:
        """Request it again; False (nothing recorded) when it is already wanted as asked."""
        _check_request(expires, origin)
        if self.wanted and expires == self.expires:
            return False
        self.trigger_event(SubscriptionRenewed, expires=expires, origin=origin, node=node,
                           timestamp=at(now))
        return True

    # Each command records its event only where the machine has that transition.

    def establish(self, dialog: DialogState, node: str, now: float) -> None:
        if MACHINE.allows(self.state, "established"):
            self.trigger_event(SubscriptionEstablished, call_id=dialog.call_id,
                               local_tag=dialog.local_tag, remote_tag=dialog.remote_tag,
                               remote_target=dialog.remote_target,
                               route_set=list(dialog.route_set), cseq=dialog.cseq,
                               expires_at=dialog.expires_at, node=node, timestamp=at(now))

    def fail(self, reason: str, dialog_lost: bool, node: str, now: float) -> None:
        if MACHINE.allows(self.state, "failed"):
            self.trigger_event(SubscriptionFailed, reason=reason, dialog_lost=dialog_lost,
                               node=node, timestamp=at(now))

    def withdraw(self, origin: str, node: str, now: float) -> bool:
        if not MACHINE.allows(self.state, "withdrawn"):
            return False
        self.trigger_event(SubscriptionWithdrawn, origin=origin, node=node, timestamp=at(now))
        return True

    def close(self, reason: str, node: str, now: float) -> None:
        if MACHINE.allows(self.state, "closed"):
            self.trigger_event(SubscriptionClosed, reason=reason, node=node, timestamp=at(now))


def _check_request(expires: int, origin: str) -> None:
    if not isinstance(expires, int) or isinstance(expires, bool) or not 0 < expires < 2**32:
        raise InvalidRequest(f"subscription expires must be 1..{2**32 - 1} s, not {expires!r}")
    if origin not in REQUEST_ORIGINS:
        raise InvalidRequest(f"unknown subscription origin {origin!r}")
